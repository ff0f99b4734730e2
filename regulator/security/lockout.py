"""Account and source-IP lockout: N failures within the window lock for a period (audited).

The counters live in the database (``LoginLock``) so every web process agrees and the security
admin can see and lift them. Each increment happens under a row lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from regulator.audit import record_event


def max_failures() -> int:
    return getattr(settings, "LOGIN_MAX_FAILURES", 5)


def lock_duration() -> timedelta:
    return timedelta(seconds=getattr(settings, "LOGIN_LOCK_SECONDS", 30 * 60))


@dataclass
class LockState:
    scope: str
    key: str
    locked_until: datetime


def _norm_username(username: str) -> str:
    return (username or "").strip().lower()[:150]


def _keys(username: str, ip: str | None):
    from regulator.models import LoginLock

    keys = []
    if username:
        keys.append((LoginLock.Scope.ACCOUNT, _norm_username(username)))
    if ip:
        keys.append((LoginLock.Scope.IP, ip))
    return keys


def active_lock(username: str, ip: str | None) -> LockState | None:
    """The lock (account first, then IP) that currently refuses this attempt, if any."""
    from regulator.models import LoginLock

    now = timezone.now()
    for scope, key in _keys(username, ip):
        lock = LoginLock.objects.filter(scope=scope, key=key, locked_until__gt=now).first()
        if lock:
            return LockState(scope, key, lock.locked_until)
    return None


def _bump(scope: str, key: str, now) -> tuple[int, bool]:
    """Count one failure; returns (failures, newly_locked)."""
    from regulator.models import LoginLock

    window = lock_duration()
    with transaction.atomic():
        try:
            with transaction.atomic():
                lock, _ = LoginLock.objects.select_for_update().get_or_create(scope=scope, key=key)
        except IntegrityError:
            lock = LoginLock.objects.select_for_update().get(scope=scope, key=key)
        if (
            lock.window_started_at is None
            or now - lock.window_started_at > window
            or (lock.locked_until is not None and lock.locked_until <= now)
        ):
            lock.failures = 0
            lock.window_started_at = now
            lock.locked_until = None
        lock.failures += 1  # the row is locked (select_for_update / SQLite's write lock)
        newly_locked = lock.failures >= max_failures() and lock.locked_until is None
        if newly_locked:
            lock.locked_until = now + lock_duration()
        lock.save(update_fields=["failures", "window_started_at", "locked_until", "updated_at"])
    return lock.failures, newly_locked


def register_failure(username: str, ip: str | None, *, request=None, reason: str = "password") -> list[LockState]:
    """Count a failed attempt against the account and the IP; returns the locks it caused."""
    now = timezone.now()
    caused = []
    for scope, key in _keys(username, ip):
        failures, newly_locked = _bump(scope, key, now)
        if newly_locked:
            state = LockState(scope, key, now + lock_duration())
            caused.append(state)
            record_event(
                event="auth.lockout",
                outcome="failure",
                request=request,
                detail={
                    "username": _norm_username(username),
                    "scope": scope,
                    "key": key,
                    "failures": failures,
                    "locked_until": state.locked_until.isoformat(),
                    "reason": reason,
                },
            )
    return caused


def clear_account(username: str) -> None:
    """A successful login forgets the account's failures (not the IP's: a valid account must not
    become a way to reset an attacker's IP counter)."""
    from regulator.models import LoginLock

    LoginLock.objects.filter(scope=LoginLock.Scope.ACCOUNT, key=_norm_username(username)).update(
        failures=0, window_started_at=None, locked_until=None
    )


def unlock(lock, *, by, request=None) -> None:
    """The security admin lifts a lock (audited)."""
    from regulator.models import LoginLock

    LoginLock.objects.filter(pk=lock.pk).update(failures=0, window_started_at=None, locked_until=None)
    record_event(
        event="auth.unlock",
        user=by,
        obj=lock,
        request=request,
        detail={"scope": lock.scope, "key": lock.key, "was_locked_until": str(lock.locked_until)},
    )
