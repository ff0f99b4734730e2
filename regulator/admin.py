from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from regulator.models import AuditEntry, Notification, Park, Region, User


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "level", "parent"]
    list_filter = ["level"]
    search_fields = ["code", "name"]
    raw_id_fields = ["parent"]


@admin.register(Park)
class ParkAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "region"]
    list_filter = ["kind"]
    search_fields = ["code", "name"]
    raw_id_fields = ["region"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "full_name", "role", "enterprise_role", "jurisdiction", "park", "is_active"]
    list_filter = ["role", "enterprise_role", "is_active", "is_staff"]
    search_fields = ["username", "full_name", "email"]
    raw_id_fields = ["jurisdiction", "park"]
    fieldsets = [
        *BaseUserAdmin.fieldsets,
        (_("监管平台"), {"fields": ["full_name", "role", "enterprise_role", "jurisdiction", "park"]}),
    ]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "title", "level", "read_at"]
    list_filter = ["level"]
    search_fields = ["title", "user__username"]
    raw_id_fields = ["user"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the audit log is append-only."""

    list_display = ["created_at", "username", "source_ip", "event", "object_repr", "outcome"]
    list_filter = ["event", "outcome"]
    search_fields = ["username", "event", "object_repr"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
