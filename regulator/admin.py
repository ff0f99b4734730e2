"""Admin for the core models, with the separation of duties (三权分立) built in.

The audit log is deliberately absent: only the auditor reads it, in its own page
(``security:audit``). Login goes through the platform's own flow (second factor included).
"""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.views import redirect_to_login
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from regulator.choices import Role
from regulator.models import ClassificationOverride, LoginLock, Notification, Park, Region, User


def _platform_login(request, extra_context=None):
    """The admin has no login of its own: a second door would skip the second factor.

    A user who is logged in but may not use the admin gets a 403 page: sending them to the login
    page, which sends a logged-in user on to ``next`` (the admin), would loop between the two.
    """
    if request.user.is_authenticated:
        from django.shortcuts import render

        return render(request, "security/admin_forbidden.html", status=403)
    return redirect_to_login(request.GET.get("next") or reverse("admin:index"), reverse("login"))


admin.site.login = _platform_login


def _is_security_admin(user) -> bool:
    return user.is_active and (user.is_superuser or user.role == Role.SECURITY_ADMIN)


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
    list_display = [
        "username",
        "full_name",
        "role",
        "enterprise_role",
        "jurisdiction",
        "park",
        "is_active",
        "must_change_password",
        "has_totp",
    ]
    list_filter = ["role", "enterprise_role", "is_active", "is_staff", "must_change_password"]
    search_fields = ["username", "full_name", "email"]
    raw_id_fields = ["jurisdiction", "park"]
    readonly_fields = ["password_changed_at", "last_login", "date_joined"]
    fieldsets = [
        *BaseUserAdmin.fieldsets,
        (_("监管平台"), {"fields": ["full_name", "role", "enterprise_role", "jurisdiction", "park"]}),
        (_("账户安全"), {"fields": ["must_change_password", "password_changed_at"]}),
    ]
    actions = ["reset_totp", "require_password_change"]

    @admin.display(boolean=True, description=_("动态口令"))
    def has_totp(self, obj):
        return hasattr(obj, "totp_device") and obj.totp_device.confirmed_at is not None

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("jurisdiction", "park", "totp_device")

    @admin.action(description=_("重置动态口令设备（用户下次登录时重新绑定）"))
    def reset_totp(self, request, queryset):
        from regulator.security.totp import reset_device

        if not _is_security_admin(request.user):
            self.message_user(request, _("只有安全管理员可以重置动态口令"), messages.ERROR)
            return
        for user in queryset:
            reset_device(user, by=request.user, request=request)
        self.message_user(request, _("已重置 %(n)d 个用户的动态口令") % {"n": queryset.count()})

    @admin.action(description=_("要求下次登录修改密码"))
    def require_password_change(self, request, queryset):
        from regulator.audit import record_event

        for user in queryset:
            User.objects.filter(pk=user.pk).update(must_change_password=True)
            record_event(event="password.change_required", obj=user, request=request)
        self.message_user(request, _("已设置"))


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "user", "title", "level", "read_at"]
    list_filter = ["level"]
    search_fields = ["title", "user__username"]
    raw_id_fields = ["user"]


@admin.register(LoginLock)
class LoginLockAdmin(admin.ModelAdmin):
    """Failed-login counters; the security admin lifts locks here (or on the 登录锁定 page)."""

    list_display = ["scope", "key", "failures", "locked_until", "is_locked", "updated_at"]
    list_filter = ["scope"]
    search_fields = ["key"]
    readonly_fields = ["scope", "key", "failures", "window_started_at", "locked_until", "updated_at"]
    actions = ["unlock"]

    @admin.display(boolean=True, description=_("锁定中"))
    def is_locked(self, obj):
        return bool(obj.locked_until and obj.locked_until > timezone.now())

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return _is_security_admin(request.user) or request.user.has_perm("regulator.unlock_account")

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("解除锁定"))
    def unlock(self, request, queryset):
        from regulator.security.lockout import unlock

        if not self.has_view_permission(request):
            self.message_user(request, _("没有解除锁定的权限"), messages.ERROR)
            return
        for lock in queryset:
            unlock(lock, by=request.user, request=request)
        self.message_user(request, _("已解除 %(n)d 项锁定") % {"n": queryset.count()})

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(ClassificationOverride)
class ClassificationOverrideAdmin(admin.ModelAdmin):
    """Explicit field classifications; the "全部字段" page lists every field's effective result."""

    list_display = ["field_path", "category", "level", "reason", "updated_at"]
    list_filter = ["category", "level"]
    search_fields = ["field_path", "reason"]
    change_list_template = "security/admin_classification_change_list.html"

    def get_urls(self):
        from django.urls import path

        custom = [
            path(
                "registry/",
                self.admin_site.admin_view(self.registry_view),
                name="regulator_classificationoverride_registry",
            )
        ]
        return custom + super().get_urls()

    def registry_view(self, request):
        from django.core.exceptions import PermissionDenied
        from django.template.response import TemplateResponse

        from regulator.security.classification import registry, unencrypted_core_fields

        if not self.has_view_permission(request):
            raise PermissionDenied
        level = request.GET.get("level", "")
        rows = [r for r in registry() if not level or r["classification"].level == level]
        context = {
            **self.admin_site.each_context(request),
            "title": _("全部字段的数据分类分级"),
            "opts": self.model._meta,
            "rows": rows,
            "level": level,
            "unencrypted_core": unencrypted_core_fields(),
        }
        return TemplateResponse(request, "security/admin_classification_registry.html", context)
