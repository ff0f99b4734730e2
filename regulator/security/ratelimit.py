"""Fixed-window rate limits in the Django cache (DatabaseCache, or Redis when REDIS_URL is set).

Login attempts are limited per source IP and per (username, IP), so one client hammering does not
stop anybody else from logging in (the per-account lockout is what protects an account).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

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


def hit(bucket: str, rate: str, *, now: float | None = None) -> Verdict:
    """Count one hit in ``bucket``; refuse when the window already holds ``rate``'s count."""
    limit, period = parse_rate(rate)
    now = time.time() if now is None else now
    window = int(now // period)
    key = f"rl:{bucket}:{window}"
    cache.add(key, 0, timeout=period + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=period + 5)
        count = 1
    if count > limit:
        return Verdict(False, max(1, int((window + 1) * period - now) + 1))
    return Verdict(True)


def login_rate() -> str:
    from django.conf import settings

    return settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get("login") or "20/min"


def check_login(ip: str | None, username: str) -> Verdict:
    rate = login_rate()
    ip = ip or "unknown"
    per_ip = hit(f"login:ip:{ip}", _scaled(rate, 5))
    if not per_ip.allowed:
        return per_ip
    return hit(f"login:user-ip:{(username or '').strip().lower()[:150]}:{ip}", rate)


def _scaled(rate: str, factor: int) -> str:
    """An office behind one NAT address shares the per-IP budget: allow it ``factor`` times more."""
    count, period = parse_rate(rate)
    return f"{count * factor}/{_unit(period)}"


def _unit(period: int) -> str:
    return {1: "s", 60: "min", 3600: "hour", 86400: "day"}[period]
