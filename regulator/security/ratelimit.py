"""Fixed-window rate limits in the Django cache (AtomicDatabaseCache, or Redis when REDIS_URL is set).

Login attempts are limited per (client IP, username) and, with a higher threshold, per client IP.
A limit only slows the client down (429 + Retry-After until its window ends); it never locks
anybody out: the per-account lockout (``lockout``) is what protects an account. Counters are
atomic (``cache.incr``: Redis INCR, or a locked row in the database cache).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

_PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'20/min' -> (20, 60)."""
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip().lower()]


@dataclass
class Verdict:
    allowed: bool
    retry_after: int = 0
    scope: str = ""


def _count(key: str, timeout: int) -> int:
    """Atomically add one to ``key`` (created at 0 if missing)."""
    for _attempt in range(3):
        cache.add(key, 0, timeout=timeout)
        try:
            return cache.incr(key)
        except ValueError:  # expired or evicted between add and incr: add it again
            continue
    cache.set(key, 1, timeout=timeout)
    return 1


def hit(bucket: str, rate: str, *, now: float | None = None) -> Verdict:
    """Count one hit in ``bucket``; refuse when the window already holds ``rate``'s count."""
    limit, period = parse_rate(rate)
    now = time.time() if now is None else now
    window = int(now // period)
    count = _count(f"rl:{bucket}:{window}", period + 5)
    if count > limit:
        return Verdict(False, max(1, int((window + 1) * period - now) + 1), bucket.split(":", 2)[1])
    return Verdict(True)


def _username(username: str) -> str:
    # Hashed: a username is attacker-chosen text (spaces, control characters, any length) in a cache key.
    return hashlib.sha256(((username or "").strip().lower()[:150]).encode()).hexdigest()[:32]


def check_login(ip: str | None, username: str) -> Verdict:
    """One login attempt (password or second factor) from ``ip`` for ``username``."""
    ip = ip or "unknown"
    per_ip = hit(f"login:ip:{ip}", settings.SECURITY_LOGIN_RATE_IP)
    if not per_ip.allowed:
        return per_ip
    return hit(f"login:ip-user:{ip}:{_username(username)}", settings.SECURITY_LOGIN_RATE_IP_USERNAME)
