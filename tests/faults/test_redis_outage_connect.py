"""A screen that opens while Redis is away: it opens (degraded, catch-up from the database), and is
re-joined and told to resync when a real redis-server comes up."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from alerts import services
from tests.alerts.test_consumer import connect
from tests.faultkit import PrivateRedis, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@sync_to_async
def raise_alert(world, device, channel, kind):
    return services.alert_raise(
        enterprise=world.here, device=device, channel=channel, kind=kind, level=2, message=f"GT-101 {kind}", value=30
    ).pk


@sync_to_async
def gas_channel(world):
    from devices.models import Channel, Device

    device = Device.objects.create(enterprise=world.here, name="可燃气体报警控制器", host="127.0.0.1", port=free_port())
    channel = Channel.objects.create(
        device=device, tag="GT-101", name="罐区可燃气体", address=1, quantity="combustible_gas", unit="%LEL"
    )
    return device, channel


async def next_of(comm, kind: str, timeout: float = 15) -> dict:
    while True:
        msg = await comm.receive_json_from(timeout=timeout)
        if msg["type"] == kind:
            return msg


async def test_a_screen_opened_while_redis_is_away_is_served_and_resynced_when_it_returns(world, settings):
    redis = PrivateRedis()  # not started yet: its port refuses connections
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "regulator.layerwatch.RedisPubSubLayer", "CONFIG": {"hosts": [redis.url]}}
    }
    settings.REALTIME_LAYER_PROBE_MS = 200
    device, channel = await gas_channel(world)
    comm, connected, _ = await connect(world.inspector)
    assert connected
    try:
        welcome = await comm.receive_json_from(timeout=10)
        assert welcome["type"] == "welcome" and welcome["degraded"] is True
        missed = await raise_alert(world, device, channel, "high")
        await comm.send_json_to({"type": "hello", "last_id": 0})  # the client polls meanwhile
        snapshot = await next_of(comm, "snapshot")
        assert [a["id"] for a in snapshot["missed"]] == [missed]

        await sync_to_async(redis.start)()
        await next_of(comm, "resync")
        pk = await raise_alert(world, device, channel, "low")
        pushed = await next_of(comm, "alert")
        assert pushed["alert"]["id"] == pk
        await comm.disconnect()
    finally:
        await sync_to_async(redis.stop)()
