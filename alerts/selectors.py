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


CATCH_UP_LIMIT = 200


def alerts_after(user, last_id: int, limit: int | None = None) -> tuple[list, bool]:
    """Catch-up after a reconnect: alerts created after the last id the client saw, oldest first.
    When more than ``limit`` were missed, the newest ``limit`` and True (truncated)."""
    limit = limit or CATCH_UP_LIMIT
    rows = list(alerts_visible_to(user).filter(pk__gt=last_id).order_by("-pk")[: limit + 1])
    truncated = len(rows) > limit
    return list(reversed(rows[:limit])), truncated
