"""/ws/alerts/: authenticate (session), authorise (join exactly the groups the user may see), forward.

Messages are documented in docs/alerts-websocket.md. The database is the source of truth: on
``hello`` the client gets a snapshot of unacknowledged alerts and everything after its last id,
so a dropped push (Redis down, channel layer full) is repaired on the next (re)connect, and, for a
socket that stays connected through a Redis outage, when the layer comes back (``resync``,
regulator.layerwatch).
"""

from __future__ import annotations

import json
import logging

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from regulator.consumers import CLOSE_RECONNECT, CLOSE_UNAUTHENTICATED, SessionCheckedConsumer
from regulator.notifications import group_for_user
from regulator.realtime import client_frame, group_for_enterprise, group_for_park, group_for_region

logger = logging.getLogger(__name__)

__all__ = ["CLOSE_RECONNECT", "CLOSE_UNAUTHENTICATED", "AlertConsumer", "groups_for_user"]
HELLO_RETRY_SECONDS = 5
SCHEMA_VERSION = 1


def groups_for_user(user) -> list[str]:
    """The push groups a user may join; enterprise groups include every ancestor region's group."""
    from regulator.models import Region
    from regulator.scoping import enterprise_ids_granted

    if user.is_superuser:
        groups = [
            group_for_region(pk) for pk in Region.objects.filter(parent__isnull=True).values_list("pk", flat=True)
        ]
    elif user.is_regulator:
        groups = [group_for_region(user.jurisdiction_id)] if user.jurisdiction_id else []
    elif user.is_park_manager:
        groups = [group_for_park(user.park_id)] if user.park_id else []
    elif user.is_enterprise_user:
        from enterprises.models import Enterprise

        ids = Enterprise.objects.filter(pk__in=enterprise_ids_granted(user)).values_list("pk", flat=True)
        groups = [group_for_enterprise(pk) for pk in ids]
    else:
        groups = []
    return groups


def _session_alive(scope) -> bool:
    from regulator.consumers import session_alive

    return session_alive(scope)


def _catch_up(user, last_id: int | None) -> dict:
    """``last_id`` None: a fresh client (no history wanted); a number: everything after it."""
    from alerts.payloads import alert_payload
    from alerts.selectors import alerts_after, alerts_visible_to, unacked_alerts

    missed, truncated = alerts_after(user, last_id) if last_id is not None else ([], False)
    unacked = unacked_alerts(user)
    newest = alerts_visible_to(user).order_by("-pk").values_list("pk", flat=True).first() or 0
    return {
        "type": "snapshot",
        "version": SCHEMA_VERSION,
        "unacked": [alert_payload(a) for a in unacked],
        "missed": [alert_payload(a) for a in missed],
        "truncated": truncated,
        "last_id": newest,
        "server_time": timezone.now().isoformat(),
    }


class AlertConsumer(SessionCheckedConsumer):
    """Session checks, heartbeats and layer recovery come from SessionCheckedConsumer."""

    def check_session(self) -> bool:
        return _session_alive(self.scope)  # (looked up here so that tests can replace it)

    async def connect(self):
        if not await self.authenticate():
            return
        user = self.scope["user"]
        groups = await database_sync_to_async(groups_for_user)(user)
        groups.append(group_for_user(user.pk))
        # Redis down: still serve catch-up from the database; the client polls with hello until
        # the layer is back and it is told to resync.
        degraded = not await self.join_groups(groups)
        await self.accept()
        await self.send_json(
            {
                "type": "welcome",
                "version": SCHEMA_VERSION,
                "degraded": degraded,
                "heartbeat": settings.ALERT_WS_HEARTBEAT_SECONDS,
            }
        )
        self.watch_layer()
        self.start_session_checks()

    # --- the channel layer failed / came back (regulator.layerwatch) --------------------------------
    async def layer_lost(self):
        await self.send_json({"type": "degraded"})

    async def layer_resynced(self):
        # After the groups are joined again: what is committed from now on is pushed, what was
        # committed before is in the snapshot the client's hello gets.
        await self.send_json({"type": "resync", "server_time": timezone.now().isoformat()})

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "hello":
            raw = content.get("last_id")
            try:
                last_id = None if raw is None else max(int(raw), 0)
            except (TypeError, ValueError):
                last_id = None
            try:
                snapshot = await database_sync_to_async(_catch_up)(self.scope["user"], last_id)
            except Exception:  # database away: keep the socket (pushes still come), ask again later
                logger.warning("catch-up failed; the client will retry", exc_info=True)
                await self.send_json(
                    {"type": "error", "detail": "catch-up unavailable", "retry_after": HELLO_RETRY_SECONDS}
                )
                return
            await self.send_json(snapshot)
        elif kind == "ping":
            await self.send_json({"type": "pong", "server_time": timezone.now().isoformat()})
        else:
            await self.send_json({"type": "error", "detail": "unknown message type"})

    # --- group events (regulator.realtime.push_on_commit) -------------------------------------------
    async def dispatch(self, message):
        kind = message["type"]
        if kind in _FORWARDED:
            # The hot path of an alert: one prepared text frame, the same for every socket. No
            # database here, so channels' per-message close_old_connections (a hop through the one
            # sync thread, serialised over every client of this process) is skipped.
            await self._forward(message)
        elif kind.startswith("websocket.") or hasattr(self, get_handler_name(message)):
            await super().dispatch(message)
        else:
            # Other apps push to the same region/park/enterprise groups (hazard.updated,
            # enforcement.drawn, ...): not for this socket, and never a reason to drop it.
            logger.debug("ignoring %s on /ws/alerts/", kind)

    async def _forward(self, event):
        text = event.get("text")
        if text is None:  # a sender that did not prepare the frame (regulator.realtime does)
            text = json.dumps(client_frame(event["event"], event["payload"]))
        await self.send(text_data=text)

    async def alert_raised(self, event):
        await self._forward(event)

    async def alert_updated(self, event):
        await self._forward(event)

    async def notification_created(self, event):
        await self._forward(event)


_FORWARDED = frozenset({"alert_raised", "alert_updated", "notification_created"})
