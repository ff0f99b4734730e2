"""The live values socket through a channel layer outage: it opens while the layer is away, and
its device group is joined again when the layer comes back (a Redis restarted without persistence
has forgotten the membership)."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from devices.models import Channel, Device
from devices.poller.daemon import live_group
from regulator.layerwatch import layer_watch
from tests.devices.helpers import login_scope

pytestmark = pytest.mark.django_db(transaction=True)


async def _value_arrives(comm, device, channel) -> dict:
    """Push live values until one reaches the socket (the re-join happens on the watch's schedule)."""
    for _ in range(100):
        await get_channel_layer().group_send(
            live_group(device.pk), {"type": "device.live", "values": {str(channel.pk): [3.5, "good", 1.0]}}
        )
        if not await comm.receive_nothing(timeout=0.1):  # (a receive timeout would end the app)
            return await comm.receive_json_from(timeout=1)
    raise AssertionError("no live value reached the socket")


async def test_live_socket_opens_while_the_layer_is_away_and_rejoins_its_group_when_it_returns(world, settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "tests.alerts.test_consumer_recovery.FlakyLayer"}}
    settings.REALTIME_LAYER_PROBE_MS = 100
    device = await sync_to_async(Device.objects.create)(enterprise=world.here, name="gw", host="127.0.0.1", port=16101)
    channel = await sync_to_async(Channel.objects.create)(device=device, tag="GT-1", name="gas", address=0)
    from devices.consumers import ChannelLiveConsumer

    layer = get_channel_layer()
    layer.take_away()
    comm = WebsocketCommunicator(ChannelLiveConsumer.as_asgi(), f"/ws/devices/channels/{channel.pk}/")
    await sync_to_async(login_scope)(comm.scope, world.inspector)
    comm.scope["url_route"] = {"kwargs": {"channel_id": channel.pk}}
    connected, _ = await comm.connect()
    assert connected
    layer.give_back()
    assert (await _value_arrives(comm, device, channel))["value"] == 3.5

    layer.take_away()  # and once more while connected: the membership is forgotten again
    watch = layer_watch(layer)
    while watch.healthy is not False:  # until the probe has seen the outage
        await asyncio.sleep(0.05)
    layer.give_back()
    assert (await _value_arrives(comm, device, channel))["value"] == 3.5
    await comm.disconnect()
