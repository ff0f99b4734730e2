"""The JSON shape of one alert: the WebSocket push, the catch-up and the API (docs/alerts-websocket.md)."""

from __future__ import annotations

from django.urls import reverse

from alerts.choices import LEVEL_COLOURS, Tier


def _iso(dt):
    return dt.isoformat() if dt else None


def alert_payload(alert) -> dict:
    deadline = alert.deadline
    return {
        "id": alert.pk,
        "enterprise": {"id": alert.enterprise_id, "name": alert.enterprise.name},
        "device": {"id": alert.device_id, "name": alert.device.name} if alert.device_id else None,
        "channel": (
            {"id": alert.channel_id, "tag": alert.channel.tag, "name": alert.channel.name} if alert.channel_id else None
        ),
        "kind": alert.kind,
        "kind_display": str(alert.get_kind_display()),
        "level": alert.level,
        "colour": LEVEL_COLOURS.get(alert.level, "blue"),
        "level_display": str(alert.get_level_display()),
        "state": alert.state,
        "state_display": str(alert.get_state_display()),
        "condition_active": alert.condition_active,
        "message": alert.message,
        "value": alert.value,
        "limit": alert.limit,
        "unit": alert.unit,
        "occurrences": alert.occurrences,
        "raised_at": _iso(alert.raised_at),
        "cleared_at": _iso(alert.cleared_at),
        "acknowledged_at": _iso(alert.acknowledged_at),
        "ack_due_at": _iso(alert.ack_due_at),
        "response_due_at": _iso(alert.response_due_at),
        "responded_at": _iso(alert.responded_at),
        "deadline": _iso(deadline),
        "tier": alert.tier,
        "tier_display": str(Tier(alert.tier).label),
        "flood_group": (
            {"id": alert.flood_group_id, "count": alert.flood_group.count} if alert.flood_group_id else None
        ),
        "linkage_status": alert.linkage_status,
        "allowed_actions": alert.allowed_actions,
        "url": reverse("alerts:detail", args=[alert.pk]),
    }
