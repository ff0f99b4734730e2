"""The client's IP address: REMOTE_ADDR, or the X-Forwarded-For hop just before our own proxies."""

from __future__ import annotations

import ipaddress

from django.conf import settings


def _valid(ip: str) -> str | None:
    try:
        return str(ipaddress.ip_address(ip.strip()))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """Trust X-Forwarded-For only as far as the proxies listed in SECURITY_TRUSTED_PROXIES."""
    if request is None:
        return None
    remote = _valid(request.META.get("REMOTE_ADDR", "") or "")
    trusted = set(getattr(settings, "SECURITY_TRUSTED_PROXIES", []) or [])
    if remote is None or remote not in trusted:
        return remote
    hops = [h for h in (request.META.get("HTTP_X_FORWARDED_FOR", "") or "").split(",") if h.strip()]
    for hop in reversed(hops):
        ip = _valid(hop)
        if ip is None:
            return remote
        if ip not in trusted:
            return ip
    return remote
