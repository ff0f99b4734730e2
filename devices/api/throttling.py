"""Per-token throttle of the HTTP readings ingest: one fixed-window counter per ingest token.

The counter is atomic: Redis ``SET NX`` + ``INCR`` when the cache is Redis (every production
instance, shared by all processes), and a process lock around ``add`` + ``incr`` otherwise (the
local database cache, one process). Over the rate, the answer is 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext as _
from rest_framework.exceptions import Throttled
from rest_framework.throttling import BaseThrottle

_local_lock = threading.Lock()


def parse_rate(rate: str) -> tuple[int, int]:
    """``"300/min"`` -> (300, 60); raises ValueError on anything else (settings parse it strictly)."""
    periods = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}
    count, sep, period = rate.partition("/")
    if not sep or period.strip().lower() not in periods or not count.strip().isdigit() or int(count) < 1:
        raise ValueError(f"rate must look like 300/min, not {rate!r}")
    return int(count), periods[period.strip().lower()]


def presented_token(request) -> str:
    """The raw token as the ingest view reads it (Bearer header, or X-Ingest-Token)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.META.get("HTTP_X_INGEST_TOKEN", "")


def _count(key: str, period: int) -> int:
    if _atomic_cache():
        cache.add(key, 0, timeout=period + 5)
        try:
            return cache.incr(key)
        except ValueError:  # expired between add and incr: this hit opens the window
            cache.add(key, 1, timeout=period + 5)
            return 1
    with _local_lock:
        cache.add(key, 0, timeout=period + 5)
        try:
            return cache.incr(key)
        except ValueError:
            cache.set(key, 1, timeout=period + 5)
            return 1


def _atomic_cache() -> bool:
    from django.core.cache.backends.redis import RedisCache

    return isinstance(cache, RedisCache) or isinstance(getattr(cache, "_wrapped", None), RedisCache)


class IngestTokenRateThrottle(BaseThrottle):
    """``DEVICES_INGEST_RATE`` requests per token per window; a token's bucket is the SHA-256 of the
    token (no database lookup before the limit, and the bucket name reveals nothing)."""

    def allow_request(self, request, view):
        raw = presented_token(request)
        if not raw:
            return True  # the view answers 401 without touching anything
        limit, period = parse_rate(settings.DEVICES_INGEST_RATE)
        now = time.time()
        window = int(now // period)
        bucket = hashlib.sha256(raw.encode()).hexdigest()[:32]
        if _count(f"ingest-rate:{bucket}:{window}", period) <= limit:
            return True
        wait = max(1, int((window + 1) * period - now) + 1)
        raise Throttled(wait=wait, detail=_("该接入令牌的请求过于频繁，请稍后重试"))
