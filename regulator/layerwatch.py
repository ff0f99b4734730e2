"""Notice when the channel layer (Redis) fails and comes back, and make every socket catch up.

A push published while Redis is away is lost, and after a Redis restart without persistence the
core layer has also forgotten every group membership. The database holds every alert, so a client
that is told "you may have missed something" repairs itself with ``hello`` and its last id. This
module tells it: one watch per event loop (per Daphne process) probes the layer with a round trip
through it and, when a probe succeeds again after a failure, each registered consumer re-joins its
groups and sends ``resync`` to its client (docs/alerts-websocket.md).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref

from channels.layers import InMemoryChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings

logger = logging.getLogger(__name__)

PROBE_TYPE = "layer.probe"


class LayerWatch:
    """Probes one channel layer from one event loop; tells its listeners on failure and recovery.

    ``healthy`` is None until the first probe, then True/False. A listener (a consumer) implements
    ``async layer_lost()`` and ``async layer_recovered()``; it may also call ``report_failure()``
    when one of its own layer calls failed, so that the next good probe counts as a recovery.
    """

    def __init__(self, layer, *, interval: float, timeout: float):
        self.layer = layer
        self.interval = interval
        self.timeout = timeout
        self.healthy: bool | None = None
        self.listeners: weakref.WeakSet = weakref.WeakSet()
        self.task: asyncio.Task | None = None
        self.channel: str | None = None
        self._token = 0
        self._reconnects: int | None = None  # the layer's subscriber reconnects, when it counts them

    def register(self, listener) -> None:
        self.listeners.add(listener)
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run())

    def unregister(self, listener) -> None:
        self.listeners.discard(listener)

    def report_failure(self) -> None:
        if self.healthy is not False:
            self.healthy = False
            self._notify("layer_lost")

    async def probe(self) -> bool:
        """A message sent to the watch's own channel comes back within ``timeout``."""
        try:
            async with asyncio.timeout(self.timeout):
                if self.channel is None:
                    self.channel = await self.layer.new_channel("layer-probe.")
                self._token += 1
                token = self._token
                await self.layer.send(self.channel, {"type": PROBE_TYPE, "token": token})
                while (await self.layer.receive(self.channel)).get("token") != token:
                    pass  # the late echo of an earlier probe
            return True
        except Exception:  # refused, reset, timed out: all the same here
            logger.debug("channel layer probe failed", exc_info=True)
            # A fresh channel next time: a channel created while Redis was away may never have been
            # subscribed, and a cancelled receive may have dropped it.
            self.channel = None
            return False

    async def _run(self) -> None:
        try:
            while len(self.listeners):
                ok = await self.probe()
                # An outage shorter than the probe interval (a quick Redis restart, a reset
                # connection) shows only as a reconnect of this process's subscriber connection.
                count = self.layer.reconnect_count() if hasattr(self.layer, "reconnect_count") else None
                blipped = ok and count is not None and self._reconnects is not None and count != self._reconnects
                if ok:
                    self._reconnects = count
                if ok and (self.healthy is False or blipped):
                    logger.warning("channel layer is back: %d socket(s) re-join and resync", len(self.listeners))
                    self._notify("layer_recovered")
                elif not ok and self.healthy is not False:
                    logger.warning("channel layer unreachable: %d socket(s) degraded", len(self.listeners))
                    self._notify("layer_lost")
                self.healthy = ok
                await asyncio.sleep(self.interval)
        except asyncio.CancelledError:
            pass

    def _notify(self, method: str) -> None:
        for listener in list(self.listeners):
            asyncio.ensure_future(_call(listener, method))


async def _call(listener, method: str) -> None:
    try:
        await getattr(listener, method)()
    except Exception:  # one broken socket must not stop the others from catching up
        logger.exception("%s failed for %r", method, listener)


_watches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def layer_watch(layer) -> LayerWatch | None:
    """The watch of ``layer`` for the running event loop; None when there is nothing to watch (no
    layer, the plain in-memory layer that cannot fail, or probing switched off)."""
    interval = settings.REALTIME_LAYER_PROBE_MS / 1000
    if layer is None or type(layer) is InMemoryChannelLayer or interval <= 0:
        return None
    loop = asyncio.get_running_loop()
    watch = _watches.get(loop)
    if watch is None or watch.layer is not layer:
        watch = LayerWatch(layer, interval=interval, timeout=max(1.0, interval))
        _watches[loop] = watch
    return watch


class LayerRecoveryMixin:
    """For Channels consumers that join groups: join them even when the layer is away (the socket
    still serves catch-up from the database), and re-join them when the layer comes back.

    In ``connect``: ``join_groups(groups)``, then, once the socket is accepted (the watch may send to
    it from then on), ``watch_layer()``; in ``disconnect``: ``leave_groups()``. Override
    ``layer_lost``/``layer_resynced`` to tell the client.
    """

    layer_groups: list[str]
    _watch: LayerWatch | None = None
    _joined_all = False

    async def join_groups(self, groups: list[str]) -> bool:
        """Join every group; False when the layer refused one (re-joined when it is back)."""
        self.layer_groups = list(groups)
        self._joined_all = await self._join_all()
        return self._joined_all

    def watch_layer(self) -> None:
        """Be told when the layer fails and comes back; a socket whose joins failed is re-joined then."""
        self._watch = layer_watch(self.channel_layer)
        if self._watch is not None:
            self._watch.register(self)
            if not self._joined_all:
                self._watch.report_failure()

    async def _join_all(self) -> bool:
        for group in self.layer_groups:
            try:
                await self.channel_layer.group_add(group, self.channel_name)
            except Exception:
                logger.warning("cannot join %s; will re-join when the channel layer is back", group, exc_info=True)
                return False
        return True

    async def leave_groups(self) -> None:
        if self._watch is not None:
            self._watch.unregister(self)
        for group in getattr(self, "layer_groups", []):
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:
                logger.warning("cannot leave %s", group, exc_info=True)

    async def layer_lost(self) -> None:
        """The layer failed: pushes may not arrive until ``layer_resynced``."""

    async def layer_recovered(self) -> None:
        # Every group again, not only those that failed: a Redis restarted without persistence has
        # forgotten the core layer's memberships (group_add is idempotent on both layers).
        self._joined_all = await self._join_all()
        if self._joined_all:
            await self.layer_resynced()
        elif self._watch is not None:
            self._watch.report_failure()  # down again: the next good probe tries once more

    async def layer_resynced(self) -> None:
        """Groups re-joined after an outage: tell the client to catch up."""


class RedisPubSubLayer(RedisPubSubChannelLayer):
    """channels_redis's pub/sub layer, except that a socket can open while Redis is away.

    Its ``new_channel`` subscribes the consumer's own channel in Redis and fails when Redis is
    down, so the socket could not even open: a screen reloaded (or a Daphne restarted) during an
    outage showed nothing. Group messages reach a consumer through the process's local queue, not
    through that subscription, so here the channel is created locally whatever happens; the socket
    opens ``degraded``, its client polls with ``hello``, and the watch re-joins its groups and
    resyncs it when Redis is back. (Only direct sends to a consumer's channel, which this project
    does not use, would wait for a new channel.) It relies on channels_redis 4.x internals
    (``prefix``, ``channels``, ``_get_shard`` of the per-loop layer); the fault tests fail if they move.
    """

    _reconnects = 0

    def reconnect_count(self) -> int:
        """How often the subscriber connections of this event loop's layer have connected again:
        each time, messages published while it was away were lost. Counted from the first call
        that finds a connection."""
        for shard in self._get_layer()._shards:
            connection = getattr(shard._pubsub, "connection", None)
            if connection is not None:  # (redis-py registers a callback once however often asked)
                connection.register_connect_callback(self._connected_again)
        return self._reconnects

    def _connected_again(self, connection) -> None:
        self._reconnects += 1

    async def new_channel(self, prefix="specific."):
        layer = self._get_layer()
        channel = f"{layer.prefix}{prefix}{uuid.uuid4().hex}"
        layer.channels[channel] = asyncio.Queue()
        try:
            await layer._get_shard(channel).subscribe(channel)
        except Exception:
            logger.warning("cannot subscribe %s (Redis away); groups still reach it", channel, exc_info=True)
        return channel
