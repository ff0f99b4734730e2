"""Password rules of MLPS level 3: character classes, no username inside, no reuse of the last N.

``PasswordHistoryValidator.password_changed`` is also where a new password is recorded: Django
calls it from ``User.save()`` after ``set_password`` (but not for hash upgrades at login).
"""

from __future__ import annotations

import string

from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _


def character_classes(password: str) -> int:
    classes = [
        any(c in string.ascii_lowercase for c in password),
        any(c in string.ascii_uppercase for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() or not c.isascii() for c in password),
    ]
    return sum(classes)


class CharacterClassesValidator:
    """At least ``min_classes`` of: lower case, upper case, digits, other characters."""

    def __init__(self, min_classes: int = 3):
        self.min_classes = min_classes

    def validate(self, password, user=None):
        if character_classes(password) < self.min_classes:
            raise ValidationError(
                _("密码须包含大写字母、小写字母、数字、特殊字符中的至少%(n)d类") % {"n": self.min_classes},
                code="password_too_simple",
            )

    def get_help_text(self):
        return _("密码须包含大写字母、小写字母、数字、特殊字符中的至少%(n)d类") % {"n": self.min_classes}


class UsernameNotContainedValidator:
    def validate(self, password, user=None):
        username = (getattr(user, "username", "") or "").strip().lower()
        if len(username) >= 3 and username in password.lower():
            raise ValidationError(_("密码不得包含用户名"), code="password_contains_username")

    def get_help_text(self):
        return _("密码不得包含用户名")


class PasswordHistoryValidator:
    """Refuse the current password and the previous ``history - 1`` ones; record each new one."""

    def __init__(self, history: int = 5):
        self.history = history

    def _recent_hashes(self, user_pk) -> list[str]:
        from regulator.models import PasswordHistory, User

        current = User.objects.filter(pk=user_pk).values_list("password", flat=True).first() or ""
        hashes = list(PasswordHistory.objects.filter(user_id=user_pk).values_list("password", flat=True))
        if current and current not in hashes[:1]:
            hashes.insert(0, current)
        return hashes[: self.history]

    def validate(self, password, user=None):
        if user is None or not getattr(user, "pk", None):
            return
        for encoded in self._recent_hashes(user.pk):
            if encoded and check_password(password, encoded):
                raise ValidationError(
                    _("不得使用最近%(n)d次使用过的密码") % {"n": self.history}, code="password_reused"
                )

    def password_changed(self, password, user=None):
        if user is None or not getattr(user, "pk", None):
            return
        from regulator.models import PasswordHistory, User
        from regulator.requestlocal import current_request

        now = timezone.now()
        PasswordHistory.objects.create(user=user, password=user.password)
        keep = PasswordHistory.objects.filter(user=user).values_list("pk", flat=True)[: self.history]
        PasswordHistory.objects.filter(user=user).exclude(pk__in=list(keep)).delete()
        changes = {"password_changed_at": now}
        # Set by someone else (an administrator creating or resetting an account): the owner must
        # choose their own at the next login. Set by the owner: that obligation is met.
        request = current_request()
        actor = getattr(request, "user", None) if request is not None else None
        if actor is not None and actor.is_authenticated:
            changes["must_change_password"] = actor.pk != user.pk
        User.objects.filter(pk=user.pk).update(**changes)
        for name, value in changes.items():
            setattr(user, name, value)
        from regulator.audit import record_event

        by_self = None if actor is None or not actor.is_authenticated else actor.pk == user.pk
        record_event(
            event="password.changed",
            user=actor if by_self is not None else None,
            obj=user,
            request=request,
            detail={"by_self": by_self, "must_change": changes.get("must_change_password", user.must_change_password)},
        )

    def get_help_text(self):
        return _("不得使用最近%(n)d次使用过的密码") % {"n": self.history}
