"""Live values of one channel: authenticate, check scope, join the device's group, forward.

The session is checked at connect and at every heartbeat (regulator.consumers): a logout or an idle
or expired session closes the socket with 4401, as on /ws/alerts/.

The group is re-joined when the channel layer comes back after an outage (regulator.layerwatch);
live values need no catch-up (the next one arrives within a poll period)."""

from __future__ import annotations

from channels.db import database_sync_to_async

from devices.poller.daemon import live_group
from regulator.consumers import SessionCheckedConsumer


@database_sync_to_async
def _visible_channel(user, channel_id: int):
    from devices.selectors import channels_visible_to

    return channels_visible_to(user).filter(pk=channel_id).values_list("pk", "device_id").first()


class ChannelLiveConsumer(SessionCheckedConsumer):
    group: str | None = None

    async def connect(self):
        if not await self.authenticate():
            return
        user = self.scope["user"]
        found = await _visible_channel(user, int(self.scope["url_route"]["kwargs"]["channel_id"]))
        if found is None:  # out of scope and missing look the same
            await self.close(code=4404)
            return
        self.channel_id, device_id = found
        self.group = live_group(device_id)
        # Redis down: accept anyway; the group is joined when the layer is back.
        await self.join_groups([self.group])
        await self.accept()
        self.watch_layer()
        self.start_session_checks()

    async def device_live(self, message):
        item = message.get("values", {}).get(str(self.channel_id))
        if item is not None:
            value, quality, t = item
            await self.send_json({"type": "value", "value": value, "quality": quality, "time": t})

    async def device_status(self, message):
        payload = message.get("payload", {})
        await self.send_json({"type": "status", "status": payload.get("status"), "reason": payload.get("reason", "")})

    async def receive_json(self, content, **kwargs):
        pass  # read-only stream
