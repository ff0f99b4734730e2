"""Audit of logouts, object permissions and admin configuration changes (role and permission
changes are audited by ``regulator.grants``, which also checks them).

Connected from ``regulator/models.py`` (imported once the models exist). Every receiver
records through ``regulator.audit.record_event``, the one door to the audit log.
"""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from regulator.audit import record_event


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
