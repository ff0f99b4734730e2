"""Admin for the core models, with the separation of duties (三权分立) built in.

The audit log is deliberately absent: only the auditor reads it, in its own page
(``security:audit``). Login goes through the platform's own flow (second factor included).
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.contrib.auth.models import Group
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from regulator import grants
from regulator.choices import MLPS_ROLES, Role
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


def _m2m_delta(form, name, current):
    """(added, removed) for an m2m field of the form, or ((), ()) when the form does not edit it."""
    if name not in form.fields or name not in form.cleaned_data:
        return (), ()
    chosen = list(form.cleaned_data[name])
    chosen_ids = {obj.pk for obj in chosen}
    current = list(current)
    current_ids = {obj.pk for obj in current}
    return [o for o in chosen if o.pk not in current_ids], [o for o in current if o.pk not in chosen_ids]


class _GrantCheckedUserForm(forms.ModelForm):
    """Refuses, on the form, any role/flag/permission/group change the separation of duties forbids."""

    actor = None  # set per request by UserAdmin.get_form

    def clean(self):
        cleaned = super().clean()
        target = self.instance  # ModelForm copies cleaned data onto it only after clean()
        saved = target.pk is not None
        add_perms, remove_perms = _m2m_delta(self, "user_permissions", target.user_permissions.all() if saved else [])
        add_groups, remove_groups = _m2m_delta(self, "groups", target.groups.all() if saved else [])
        try:
            grants.check_user_change(
                actor=self.actor,
                target=target,
                role=cleaned.get("role"),
                is_superuser=cleaned.get("is_superuser"),
                is_staff=cleaned.get("is_staff"),
                add_perms=add_perms,
                remove_perms=remove_perms,
                add_groups=add_groups,
                remove_groups=remove_groups,
            )
        except grants.GrantRefused as refused:
            grants.audit_refusal(actor=self.actor, obj=target if saved else None, what="admin", refused=refused)
            raise ValidationError(refused.messages) from None
        target._grants_checked = True
        return cleaned


class CheckedUserChangeForm(_GrantCheckedUserForm, UserChangeForm):
    pass


class CheckedUserCreationForm(_GrantCheckedUserForm, UserCreationForm):
    pass


def _privileged(user) -> bool:
    return bool(user.is_superuser or user.role in MLPS_ROLES)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    """Users; every privilege change is checked by ``regulator.grants`` (form, save and model)."""

    form = CheckedUserChangeForm
    add_form = CheckedUserCreationForm
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

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields.append("is_superuser")  # break-glass only
        return fields

    def has_change_permission(self, request, obj=None):
        # A superuser's or an MLPS admin's account (password included) is a superuser's to change:
        # a system admin resetting the security admin's password would become the security admin.
        if obj is not None and _privileged(obj) and not request.user.is_superuser and obj.pk != request.user.pk:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and _privileged(obj) and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        # The permissions are saved after the user: the form checked the final state, and
        # save_related checks it again once everything is written.
        obj._grants_deferred = True
        try:
            with grants.acting_as(request.user):
                super().save_model(request, obj, form, change)
        finally:
            obj._grants_deferred = False

    def save_related(self, request, form, formsets, change):
        with grants.acting_as(request.user):
            super().save_related(request, form, formsets, change)
        grants.check_user_change(actor=None, target=form.instance)

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


class CheckedGroupForm(forms.ModelForm):
    actor = None  # set per request by GroupAdmin.get_form

    class Meta:
        model = Group
        fields = ["name", "permissions"]

    def clean(self):
        cleaned = super().clean()
        group = self.instance
        add, remove = _m2m_delta(self, "permissions", group.permissions.all() if group.pk else [])
        try:
            grants.check_group_change(actor=self.actor, group=group, add_perms=add, remove_perms=remove)
        except grants.GrantRefused as refused:
            grants.audit_refusal(actor=self.actor, obj=group if group.pk else None, what="admin", refused=refused)
            raise ValidationError(refused.messages) from None
        return cleaned


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin):
    """Groups; a permission added to a group is granted to every member, so it is checked as such."""

    form = CheckedGroupForm

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def save_model(self, request, obj, form, change):
        with grants.acting_as(request.user):
            super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        with grants.acting_as(request.user):
            super().save_related(request, form, formsets, change)


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
