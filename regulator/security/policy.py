"""When a user must change their password, and which users need a second factor."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from regulator.choices import Role

MFA_ROLES = frozenset({Role.REGULATOR_ADMIN, Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDITOR})

REASON_INITIAL = "initial"
REASON_EXPIRED = "expired"


def password_max_age() -> timedelta:
    return timedelta(days=getattr(settings, "PASSWORD_MAX_AGE_DAYS", 90))


def password_change_reason(user) -> str | None:
    """``initial`` (set by an administrator), ``expired`` (older than the maximum age) or None."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    if getattr(user, "must_change_password", False):
        return REASON_INITIAL
    changed = getattr(user, "password_changed_at", None)
    if changed is not None and timezone.now() - changed > password_max_age():
        return REASON_EXPIRED
    return None


def requires_mfa(user) -> bool:
    """Admin roles, superusers and every account that can open the Django admin (``is_staff``)."""
    return bool(user is not None and (user.is_superuser or getattr(user, "is_staff", False) or user.role in MFA_ROLES))
