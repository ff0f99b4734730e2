"""/ws/alerts/ push path: the frame is serialised once by regulator.realtime and sent as-is to every
socket, without a database hop per socket; other apps' events on the shared groups are ignored
instead of closing the socket."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from alerts.payloads import alert_payload
from regulator import realtime
from regulator.realtime import group_for_region
from tests.alerts.test_consumer import connect, hello, raise_alert

pytestmark = pytest.mark.django_db(transaction=True)


async def test_alert_frame_is_prepared_once_with_sent_at(world, gas):
    comm, ok, _ = await connect(world.inspector)
    assert ok
    await hello(comm)
    pk = await raise_alert(world.here, gas.device, gas.channel)
    frame = await comm.receive_json_from(timeout=5)
    assert frame["type"] == "alert" and frame["event"] == "alert.raised" and frame["alert"]["id"] == pk
    assert frame["alert"]["state"] == "active_unack" and frame["alert"]["channel"]["tag"] == "GT-101"
    assert frame["sent_at"] >= frame["alert"]["raised_at"][:19]
    from alerts.models import Alert

    alert = await sync_to_async(lambda: Alert.objects.select_related("enterprise", "device", "channel").get(pk=pk))()
    expected = await sync_to_async(alert_payload)(alert)
    assert frame["alert"] == expected
    await comm.disconnect()


async def test_the_prepared_text_is_sent_verbatim_and_a_bare_payload_still_works(world):
    comm, ok, _ = await connect(world.inspector)
    assert ok
    await hello(comm)
    layer = get_channel_layer()
    group = group_for_region(world.inspector.jurisdiction_id)
    text = '{"type": "alert", "event": "alert.updated", "alert": {"id": 7}, "sent_at": "x"}'
    await layer.group_send(group, {"type": "alert_updated", "event": "alert.updated", "payload": {}, "text": text})
    assert await comm.receive_from(timeout=5) == text
    # A sender that did not prepare the text (e.g. an older process during a rolling restart).
    await layer.group_send(group, {"type": "alert_raised", "event": "alert.raised", "payload": {"id": 8}})
    assert json.loads(await comm.receive_from(timeout=5)) == {
        "type": "alert",
        "event": "alert.raised",
        "alert": {"id": 8},
    }
    await comm.disconnect()


async def test_pushes_do_not_touch_the_database_per_socket(world, gas, monkeypatch):
    import channels.consumer

    calls = []
    original = channels.consumer.aclose_old_connections

    async def counting():
        calls.append(1)
        return await original()

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counting)
    comm, ok, _ = await connect(world.inspector)
    assert ok
    await hello(comm)  # the hello is a database read: it keeps channels' connection hygiene
    before = len(calls)
    assert before >= 1
    for _ in range(3):
        await raise_alert(world.here, gas.device, gas.channel)
        await comm.receive_json_from(timeout=5)
    assert len(calls) == before
    await comm.disconnect()


async def test_other_apps_events_on_the_region_group_do_not_close_the_socket(world, gas):
    comm, ok, _ = await connect(world.inspector)
    assert ok
    await hello(comm)
    layer = get_channel_layer()
    group = group_for_region(world.inspector.jurisdiction_id)
    for event in ("hazard.updated", "enforcement.drawn"):
        await layer.group_send(group, {"type": event.replace(".", "_"), "event": event, "payload": {"x": 1}})
    assert await comm.receive_nothing(timeout=0.3)
    pk = await raise_alert(world.here, gas.device, gas.channel)
    frame = await comm.receive_json_from(timeout=5)
    assert frame["alert"]["id"] == pk
    await comm.disconnect()


def test_client_frame_shapes():
    assert realtime.client_frame("alert.raised", {"id": 1}) == {
        "type": "alert",
        "event": "alert.raised",
        "alert": {"id": 1},
    }
    assert realtime.client_frame("notification.created", {"id": 2}) == {
        "type": "notification",
        "notification": {"id": 2},
    }
    assert realtime.client_frame("hazard.updated", {}) is None
