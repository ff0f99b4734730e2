"""The one place that pushes real-time events, always after the surrounding transaction commits."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import threading
from datetime import UTC, datetime

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
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


def client_frame(event_type: str, payload: dict) -> dict | None:
    """The WebSocket frame /ws/alerts/ sends for an event (docs/alerts-websocket.md), or None for
    events that this socket does not forward."""
    if event_type.startswith("alert."):
        return {"type": "alert", "event": event_type, "alert": payload}
    if event_type == "notification.created":
        return {"type": "notification", "notification": payload}
    return None


def _with_text(message: dict) -> dict:
    """Serialise the client frame once, here, with the moment it leaves (``sent_at``), so that the
    consumers of every socket send the same prepared text instead of each encoding the payload.
    The payload is not sent a second time beside it: every socket would decode it for nothing."""
    frame = client_frame(message["event"], message["payload"])
    if frame is None:
        return message
    frame["sent_at"] = datetime.now(UTC).isoformat()
    return {"type": message["type"], "event": message["event"], "text": json.dumps(frame)}


async def _send_all(layer, groups: list[str], message: dict) -> None:
    for group in groups:
        try:
            await layer.group_send(group, message)
        except Exception:  # a broken layer must never fail the write; clients catch up by id
            logger.exception("push to %s failed", group)


class _PushLoop:
    """One long-lived event loop thread per process for pushes from synchronous code.

    ``async_to_sync`` from a plain thread (the poller's alert writer, Celery, a WSGI worker) runs
    each push in a new event loop, and the Redis channel layers keep their connections per loop:
    every alert paid for a new Redis connection (5-10 ms, 100+ ms at worst under load). Here the
    loop, and so the layer's connection, lives as long as the process.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            # A forked child (Celery prefork) inherits the loop object but not its thread.
            if self._loop is None or self._loop.is_closed() or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="realtime-push", daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coro, timeout: float) -> None:
        future = asyncio.run_coroutine_threadsafe(coro, self._ensure())
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise


_push_loop = _PushLoop()
PUSH_TIMEOUT_SECONDS = 5.0


def _uses_push_loop(layer) -> bool:
    # The in-memory layer (tests, the single-process demo) keeps asyncio queues bound to the loop
    # of its consumers: it must stay on async_to_sync, which finds that loop.
    if isinstance(layer, InMemoryChannelLayer):
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return True
    return False


def _send(groups: list[str], message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = _with_text(message)
    try:
        if _uses_push_loop(layer):
            _push_loop.run(_send_all(layer, groups, message), PUSH_TIMEOUT_SECONDS)
        else:
            # One event loop (and one Redis connection) for all groups: per-group async_to_sync
            # cost ~40 ms per alert with six groups.
            async_to_sync(_send_all)(layer, groups, message)
    except Exception:
        logger.exception("push to %s failed", groups)


def push_on_commit(groups: list[str], event_type: str, payload: dict) -> None:
    """Queue an event for after commit; a rolled-back write never reaches a screen."""
    message = {"type": event_type.replace(".", "_"), "event": event_type, "payload": payload}
    transaction.on_commit(lambda: _send(groups, message))
