"""The one function that says which address a request came from (audit, lockout, throttles).

Behind a reverse proxy every connection comes from the proxy, so the proxy's headers are the only
source of the client's address; but anybody can send those headers. They are believed only when
the direct peer (REMOTE_ADDR) is one of ``SECURITY_TRUSTED_PROXIES`` (IPs or CIDRs), and then
X-Forwarded-For is read from the right (each proxy appends the address it saw) up to the first
address that is not a trusted proxy: everything left of that was written by the client.
X-Real-IP (one address, set by the nearest proxy) is used only when there is no X-Forwarded-For.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries) -> tuple[Network, ...]:
    """``["10.0.0.1", "192.168.0.0/16"]`` -> networks; raises ValueError naming a bad entry."""
    networks = []
    for entry in entries or ():
        entry = str(entry).strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"not an IP address or CIDR network: {entry!r}") from exc
    return tuple(networks)


@lru_cache(maxsize=8)
def _trusted(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_networks(entries)


def _address(value: str | None):
    """An address object, IPv4-mapped IPv6 (``::ffff:1.2.3.4``) as IPv4, or None if not an address."""
    if not value:
        return None
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:51234"
        value = value.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _is_trusted(ip, trusted: tuple[Network, ...]) -> bool:
    return any(ip.version == net.version and ip in net for net in trusted)


def client_ip(request) -> str | None:
    """The client's address as a normalised string, or None without a request.

    Without trusted proxies (the default) it is the direct peer, whatever headers say.
    """
    if request is None:
        return None
    meta = getattr(request, "META", {}) or {}
    peer = _address(meta.get("REMOTE_ADDR"))
    if peer is None:
        return None
    trusted = _trusted(tuple(getattr(settings, "SECURITY_TRUSTED_PROXIES", ()) or ()))
    if not trusted or not _is_trusted(peer, trusted):
        return str(peer)
    forwarded = [hop for hop in (meta.get("HTTP_X_FORWARDED_FOR") or "").split(",") if hop.strip()]
    candidate = peer
    for hop in reversed(forwarded):
        ip = _address(hop)
        if ip is None:
            # Garbage in the chain: the hop to its right (a trusted proxy, or the peer) is all we know.
            return str(candidate)
        candidate = ip
        if not _is_trusted(ip, trusted):
            return str(ip)
    if forwarded:
        return str(candidate)  # every hop is one of our proxies: the left-most is the nearest to the client
    real = _address(meta.get("HTTP_X_REAL_IP"))
    return str(real) if real is not None else str(peer)
