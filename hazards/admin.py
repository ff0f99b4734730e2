"""Admin for administrators: hazards are read-only here (their workflow goes through the services);
checklist templates and their items are maintained here by regulator administrators."""

from django.contrib import admin

from hazards.models import (
    ChecklistItem,
    ChecklistRun,
    ChecklistTemplate,
    ExtensionRequest,
    Hazard,
    HazardEscalation,
    HazardTransition,
)
from regulator.admin_scoping import ScopedAdminMixin


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TransitionInline(ReadOnlyInline):
    model = HazardTransition
    fields = ["at", "action", "from_status", "to_status", "user", "comment"]
    readonly_fields = fields


class ExtensionInline(ReadOnlyInline):
    model = ExtensionRequest
    fields = ["requested_at", "requested_by", "old_deadline", "new_deadline", "status", "decided_by", "decided_at"]
    readonly_fields = fields


class EscalationInline(ReadOnlyInline):
    model = HazardEscalation
    fields = ["at", "tier", "due_date", "days_overdue", "recipients"]
    readonly_fields = fields


@admin.register(Hazard)
class HazardAdmin(ScopedAdminMixin, admin.ModelAdmin):
    scope_prefix = "enterprise__"
    list_display = ["id", "enterprise", "grade", "source", "status", "due_date", "is_overdue", "listed", "reported_at"]
    list_filter = ["status", "grade", "source", "listed", "is_overdue"]
    search_fields = ["description", "enterprise__name", "location"]
    date_hierarchy = "reported_at"
    list_select_related = ["enterprise"]
    inlines = [TransitionInline, ExtensionInline, EscalationInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Hazard._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ChecklistItemInline(admin.TabularInline):
    model = ChecklistItem
    extra = 3
    fields = ["order", "text", "basis", "category"]


@admin.register(ChecklistTemplate)
class ChecklistTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "industry", "cycle_days", "active", "created_at"]
    list_filter = ["active"]
    search_fields = ["name"]
    raw_id_fields = ["industry"]
    inlines = [ChecklistItemInline]
    exclude = ["created_by"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(ChecklistRun)
class ChecklistRunAdmin(ScopedAdminMixin, admin.ModelAdmin):
    scope_prefix = "enterprise__"
    list_display = ["template", "enterprise", "run_by", "status", "started_at", "completed_at", "next_due"]
    list_filter = ["status"]
    list_select_related = ["template", "enterprise", "run_by"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in ChecklistRun._meta.fields]

    def has_add_permission(self, request):
        return False
