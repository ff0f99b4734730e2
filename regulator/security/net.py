"""Kept for imports written before ``regulator.client_ip``: the one client-IP function lives there."""

from regulator.client_ip import client_ip

__all__ = ["client_ip"]
