"""The one place that pushes real-time events, always after the surrounding transaction commits."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def group_for_region(region_id: int) -> str:
    return f"region.{region_id}"


def group_for_park(park_id: int) -> str:
    return f"park.{park_id}"


def group_for_enterprise(enterprise_id: int) -> str:
    return f"enterprise.{enterprise_id}"


def groups_for_enterprise(enterprise) -> list[str]:
    """Every group that may see events of this enterprise: its region and all ancestors, its park, itself."""
    from regulator.models import Region

    codes = [c for c in enterprise.region.path.strip("/").split("/") if c]
    region_ids = Region.objects.filter(code__in=codes).values_list("id", flat=True)
    groups = [group_for_region(rid) for rid in region_ids]
    if enterprise.park_id:
        groups.append(group_for_park(enterprise.park_id))
    groups.append(group_for_enterprise(enterprise.pk))
    return groups


async def _send_all(layer, groups: list[str], message: dict) -> None:
    for group in groups:
        try:
            await layer.group_send(group, message)
        except Exception:  # a broken layer must never fail the write; clients catch up by id
            logger.exception("push to %s failed", group)


def _send(groups: list[str], message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        # One event loop (and one Redis connection) for all groups: per-group async_to_sync
        # cost ~40 ms per alert with six groups.
        async_to_sync(_send_all)(layer, groups, message)
    except Exception:
        logger.exception("push to %s failed", groups)


def push_on_commit(groups: list[str], event_type: str, payload: dict) -> None:
    """Queue an event for after commit; a rolled-back write never reaches a screen."""
    message = {"type": event_type.replace(".", "_"), "event": event_type, "payload": payload}
    transaction.on_commit(lambda: _send(groups, message))
