"""Account lockout: N failures within the window lock an existing account for a period (audited).

Only accounts are locked, never a source address: behind a proxy or a NAT everybody shares one
address, and an IP lock would let one attacker lock the whole bureau out (source addresses are
slowed down instead, ``ratelimit``). A username that is no account locks nobody; its failures
are only counted in the cache so that, after N of them, the login page answers exactly as it
does for a locked account and does not tell which usernames exist.

The counters live in the database (``LoginLock``) so every web process agrees and the security
admin can see and lift them. Each increment happens under a row lock. Rows of scope ``ip``
written before this change are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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


def _account_exists(username: str) -> bool:
    from django.contrib.auth import get_user_model

    name = (username or "").strip()
    return bool(name) and get_user_model().objects.filter(username__iexact=name).exists()


def _ghost_key(username: str) -> str:
    import hashlib

    return "lockout:ghost:" + hashlib.sha256(_norm_username(username).encode()).hexdigest()[:32]


def active_lock(username: str, ip: str | None = None) -> LockState | None:
    """The lock that currently refuses an attempt on this account, if any (``ip`` is not a key)."""
    from django.core.cache import cache

    from regulator.models import LoginLock

    key = _norm_username(username)
    if not key:
        return None
    now = timezone.now()
    lock = LoginLock.objects.filter(scope=LoginLock.Scope.ACCOUNT, key=key, locked_until__gt=now).first()
    if lock:
        return LockState(LoginLock.Scope.ACCOUNT, key, lock.locked_until)
    ghost = cache.get(_ghost_key(username))
    if (
        isinstance(ghost, dict)
        and ghost.get("until", 0) > now.timestamp()
        and not _account_exists(username)  # created since: only its own failures count
    ):
        return LockState(LoginLock.Scope.ACCOUNT, key, datetime.fromtimestamp(ghost["until"], UTC))
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


def _count_ghost(username: str, now) -> bool:
    """Count a failure on a username that is no account; True when it now "looks locked"."""
    from django.core.cache import cache

    key = _ghost_key(username)
    ghost = cache.get(key)
    if not isinstance(ghost, dict) or 0 < ghost.get("until", 0) <= now.timestamp():
        ghost = {"failures": 0, "until": 0}
    ghost["failures"] += 1  # not atomic, and it need not be: it protects nothing but the page's wording
    newly = ghost["failures"] == max_failures()
    if newly:
        ghost["until"] = (now + lock_duration()).timestamp()
    cache.set(key, ghost, timeout=int(lock_duration().total_seconds()) + 60)
    return newly


def register_failure(
    username: str, ip: str | None = None, *, request=None, reason: str = "password"
) -> list[LockState]:
    """Count a failed attempt against the account (if it exists); returns the lock it caused."""
    from regulator.models import LoginLock

    now = timezone.now()
    key = _norm_username(username)
    if not key:
        return []
    if not _account_exists(username):
        return [LockState(LoginLock.Scope.ACCOUNT, key, now + lock_duration())] if _count_ghost(username, now) else []
    failures, newly_locked = _bump(LoginLock.Scope.ACCOUNT, key, now)
    if not newly_locked:
        return []
    state = LockState(LoginLock.Scope.ACCOUNT, key, now + lock_duration())
    record_event(
        event="auth.lockout",
        outcome="failure",
        request=request,
        detail={
            "username": key,
            "scope": LoginLock.Scope.ACCOUNT,
            "key": key,
            "failures": failures,
            "locked_until": state.locked_until.isoformat(),
            "reason": reason,
        },
    )
    return [state]


def clear_account(username: str) -> None:
    """A successful login forgets the account's failures (the per-IP throttle windows are kept: a
    valid account must not become a way to reset an attacker's counters)."""
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
