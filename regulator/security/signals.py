"""Audit of logouts, role and permission changes, and admin configuration changes.

Connected from ``regulator/models.py`` (imported once the models exist). Every receiver
records through ``regulator.audit.record_event``, the one door to the audit log.
"""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver

from regulator.audit import record_event

WATCHED_USER_FIELDS = ("role", "is_superuser", "is_staff", "is_active", "jurisdiction_id", "park_id")


@receiver(user_logged_in, dispatch_uid="security_session_started")
def start_session_clock(sender, request, user, **kwargs):
    """Every login restarts the absolute session lifetime (SESSION_ABSOLUTE_SECONDS)."""
    import time

    from regulator.middleware import SESSION_STARTED_KEY

    session = getattr(request, "session", None)
    if session is not None:
        session[SESSION_STARTED_KEY] = int(time.time())


@receiver(user_logged_out, dispatch_uid="security_audit_logout")
def audit_logout(sender, request, user, **kwargs):
    if user is not None:
        record_event(event="auth.logout", user=user, obj=user, request=request)


@receiver(pre_save, sender="regulator.User", dispatch_uid="security_user_before")
def remember_user_roles(sender, instance, raw=False, **kwargs):
    if raw or not instance.pk:
        instance._security_before = None
        return
    instance._security_before = sender.objects.filter(pk=instance.pk).values(*WATCHED_USER_FIELDS).first()


@receiver(post_save, sender="regulator.User", dispatch_uid="security_user_after")
def audit_user_roles(sender, instance, created, raw=False, **kwargs):
    if raw:
        return
    if created:
        record_event(
            event="user.created",
            obj=instance,
            detail={f: getattr(instance, f) for f in WATCHED_USER_FIELDS},
        )
        return
    before = getattr(instance, "_security_before", None)
    if not before:
        return
    changes = {
        f: {"from": before[f], "to": getattr(instance, f)}
        for f in WATCHED_USER_FIELDS
        if before[f] != getattr(instance, f)
    }
    if changes:
        record_event(event="user.roles_changed", obj=instance, detail={"changes": changes})
    instance._security_before = None


def _permission_labels(model, pk_set):
    if not pk_set:
        return []
    return [str(obj) for obj in model.objects.filter(pk__in=pk_set)]


def _m2m_audit(event):
    def handler(sender, instance, action, reverse, model, pk_set, **kwargs):
        if action not in ("post_add", "post_remove", "post_clear"):
            return
        record_event(
            event=event,
            obj=instance,
            detail={"action": action.removeprefix("post_"), "items": _permission_labels(model, pk_set)},
        )

    return handler


def connect_m2m(user_model):
    from django.contrib.auth.models import Group

    m2m_changed.connect(
        _m2m_audit("permission.user_permissions_changed"),
        sender=user_model.user_permissions.through,
        dispatch_uid="security_user_perms",
        weak=False,
    )
    m2m_changed.connect(
        _m2m_audit("permission.user_groups_changed"),
        sender=user_model.groups.through,
        dispatch_uid="security_user_groups",
        weak=False,
    )
    m2m_changed.connect(
        _m2m_audit("permission.group_permissions_changed"),
        sender=Group.permissions.through,
        dispatch_uid="security_group_perms",
        weak=False,
    )


@receiver(post_save, sender="guardian.UserObjectPermission", dispatch_uid="security_obj_perm_add")
def audit_object_permission_granted(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        record_event(
            event="permission.object_granted",
            obj=instance.user,
            detail={
                "permission": instance.permission.codename,
                "content_type": instance.content_type.model,
                "object_pk": instance.object_pk,
            },
        )


@receiver(post_delete, sender="guardian.UserObjectPermission", dispatch_uid="security_obj_perm_del")
def audit_object_permission_revoked(sender, instance, **kwargs):
    record_event(
        event="permission.object_revoked",
        detail={
            "user_id": instance.user_id,
            "permission": instance.permission.codename,
            "content_type": instance.content_type.model,
            "object_pk": instance.object_pk,
        },
    )


@receiver(post_save, sender="admin.LogEntry", dispatch_uid="security_admin_changes")
def audit_admin_change(sender, instance, created, raw=False, **kwargs):
    """Every add/change/delete made in the admin (where configuration lives) is audited."""
    if not created or raw:
        return
    action = {1: "add", 2: "change", 3: "delete"}.get(instance.action_flag, str(instance.action_flag))
    record_event(
        event=f"config.{action}",
        user=instance.user,
        detail={
            "model": f"{instance.content_type.app_label}.{instance.content_type.model}"
            if instance.content_type
            else "",
            "object_id": instance.object_id,
            "object": instance.object_repr,
            "message": instance.get_change_message(),
        },
    )
