"""Scoped reads: every alert a person sees starts here (out of scope = not found = 404)."""

from __future__ import annotations

from alerts.choices import ANNUNCIATED_STATES, UNACKED_STATES
from alerts.models import Alert
from regulator.scoping import scope


def alerts_visible_to(user):
    qs = Alert.objects.select_related("enterprise", "device", "channel", "flood_group", "acknowledged_by")
    return scope(qs, user, prefix="enterprise__")


def open_alerts_for_board(user):
    """What the duty officer's board shows: alerts that annunciate, worst first."""
    return alerts_visible_to(user).filter(state__in=ANNUNCIATED_STATES).order_by("level", "-raised_at")


def unacked_alerts(user, limit: int = 100):
    return list(alerts_visible_to(user).filter(state__in=UNACKED_STATES).order_by("level", "-raised_at")[:limit])


def alerts_after(user, last_id: int, limit: int = 200):
    """Catch-up after a reconnect: alerts created after the last id the client saw."""
    return list(alerts_visible_to(user).filter(pk__gt=last_id).order_by("pk")[:limit])
