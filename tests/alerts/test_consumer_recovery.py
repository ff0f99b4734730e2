"""/ws/alerts/ through faults: a database error in a heartbeat, a channel layer that fails and comes back.

The layer here is an in-memory layer that can be broken (sends and joins refused, group memberships
forgotten, as a Redis restarted without persistence forgets them); tests/faults/test_redis_outage_ws.py
does the same with a real Redis and a real Daphne.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import OperationalError

from alerts import consumers, services
from tests.alerts.test_consumer import connect, hello

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def raise_alert(enterprise, device, channel, kind="high"):
    """A new alert (one per channel and kind: the same kind again is an occurrence of the open one)."""
    return services.alert_raise(
        enterprise=enterprise, device=device, channel=channel, kind=kind, level=2, message=f"GT-101 {kind}", value=30
    ).pk


class FlakyLayer(InMemoryChannelLayer):
    """An in-memory channel layer that can be taken away and given back (new channels are named
    locally, as the core Redis layer names them, so a socket can still open while it is away)."""

    broken = False

    def take_away(self):
        self.broken = True
        self.groups.clear()  # a Redis restarted without persistence has no memberships

    def give_back(self):
        self.broken = False

    def _check(self):
        if self.broken:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    async def send(self, channel, message):
        self._check()
        await super().send(channel, message)

    async def group_add(self, group, channel):
        self._check()
        await super().group_add(group, channel)

    async def group_send(self, group, message):
        self._check()
        await super().group_send(group, message)


async def next_of(comm, kind: str, timeout: float = 10) -> tuple[dict, list[dict]]:
    """The next message of type ``kind``, and the messages before it (heartbeats aside)."""
    before = []
    while True:
        msg = await comm.receive_json_from(timeout=timeout)
        if msg["type"] == kind:
            return msg, before
        if msg["type"] != "heartbeat":
            before.append(msg)


async def test_a_client_connected_through_a_layer_outage_is_told_to_resync_and_gets_what_it_missed(
    world, gas, settings
):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "tests.alerts.test_consumer_recovery.FlakyLayer"}}
    settings.REALTIME_LAYER_PROBE_MS = 100
    comm, ok, _ = await connect(world.inspector)
    assert ok
    snapshot = await hello(comm)
    layer = get_channel_layer()

    layer.take_away()
    await next_of(comm, "degraded")
    missed = [await raise_alert(world.here, gas.device, gas.channel, kind) for kind in ("high", "low")]
    layer.give_back()

    resync, before = await next_of(comm, "resync")
    assert before == []  # the pushes of the outage were lost: only the resync says so
    await comm.send_json_to({"type": "hello", "last_id": snapshot["last_id"]})
    caught_up, _ = await next_of(comm, "snapshot")
    assert [a["id"] for a in caught_up["missed"]] == missed

    # The groups were joined again (the layer had forgotten them): the next alert is pushed.
    pk = await raise_alert(world.here, gas.device, gas.channel, "stale")
    pushed, _ = await next_of(comm, "alert")
    assert pushed["alert"]["id"] == pk
    await comm.disconnect()


async def test_a_socket_that_connects_while_the_layer_is_away_joins_and_resyncs_when_it_returns(world, gas, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "tests.alerts.test_consumer_recovery.FlakyLayer"}}
    settings.REALTIME_LAYER_PROBE_MS = 100
    get_channel_layer().take_away()
    comm, ok, _ = await connect(world.inspector)
    welcome = await comm.receive_json_from(timeout=5)
    assert welcome["type"] == "welcome" and welcome["degraded"] is True
    get_channel_layer().give_back()
    await next_of(comm, "resync")
    pk = await raise_alert(world.here, gas.device, gas.channel)
    pushed, _ = await next_of(comm, "alert")
    assert pushed["alert"]["id"] == pk
    await comm.disconnect()


def _failing_after_connect(monkeypatch, failures: int | None):
    """``_session_alive`` that answers at connect, then raises ``failures`` times (None: always)."""
    real = consumers._session_alive
    calls = []

    def check(scope):
        calls.append(1)
        if len(calls) > 1 and (failures is None or len(calls) <= 1 + failures):
            raise OperationalError("server closed the connection unexpectedly")
        return real(scope)

    monkeypatch.setattr(consumers, "_session_alive", check)
    return calls


async def test_a_database_error_in_one_heartbeat_does_not_end_heartbeats_or_session_checks(
    world, settings, monkeypatch
):
    from django.contrib.sessions.models import Session

    settings.ALERT_WS_HEARTBEAT_SECONDS = 0.2
    calls = _failing_after_connect(monkeypatch, failures=1)
    comm, ok, _ = await connect(world.inspector)
    await hello(comm)
    for _ in range(2):  # beats after the failed check
        await next_of(comm, "heartbeat", timeout=5)
    assert len(calls) >= 3
    # ... and the session is still checked: a logout closes the socket.
    await sync_to_async(Session.objects.all().delete)()
    await next_of(comm, "session_expired", timeout=5)
    closed = await comm.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 4401}


async def test_while_the_session_cannot_be_checked_alarms_flow_until_the_grace_period_ends(
    world, gas, settings, monkeypatch
):
    settings.ALERT_WS_HEARTBEAT_SECONDS = 0.2
    settings.ALERT_WS_SESSION_GRACE_SECONDS = 1.5
    _failing_after_connect(monkeypatch, failures=None)
    comm, ok, _ = await connect(world.inspector)
    await hello(comm)
    await next_of(comm, "heartbeat", timeout=5)
    await next_of(comm, "heartbeat", timeout=5)
    pk = await raise_alert(world.here, gas.device, gas.channel)
    pushed, _ = await next_of(comm, "alert")
    assert pushed["alert"]["id"] == pk
    while True:  # then closed to reconnect: 4503, not the logout code
        out = await comm.receive_output(timeout=5)
        if out["type"] == "websocket.close":
            assert out["code"] == consumers.CLOSE_RECONNECT
            break


async def test_hello_while_the_database_is_away_keeps_the_socket_and_asks_to_retry(world, settings, monkeypatch):
    comm, ok, _ = await connect(world.inspector)
    await hello(comm)

    def away(user, last_id):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(consumers, "_catch_up", away)
    await comm.send_json_to({"type": "hello", "last_id": 0})
    msg = await comm.receive_json_from(timeout=5)
    assert msg["type"] == "error" and msg["retry_after"] > 0
    await comm.send_json_to({"type": "ping"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "pong"
    await comm.disconnect()
