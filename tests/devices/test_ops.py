"""Operations: shards, retention, maintenance mode, the live-value WebSocket and its scoping."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from devices.management.commands.poll_devices import parse_shard
from devices.models import Channel, Device, Reading, ReadingAggregate
from devices.poller.daemon import live_group, load_device_specs
from devices.services import prune_readings
from regulator.models import AuditEntry
from tests.devices.helpers import login_scope
from tests.factories import PASSWORD


def test_shards_split_the_devices_without_overlap(world):
    ids = {
        Device.objects.create(enterprise=world.here, name=f"d{i}", host="127.0.0.1", port=16000 + i).pk
        for i in range(7)
    }
    Device.objects.create(enterprise=world.here, name="push", protocol="http")  # never polled
    shards = [set(load_device_specs(k, 3)) for k in range(3)]
    assert set().union(*shards) == ids
    assert sum(len(s) for s in shards) == len(ids)
    assert set(load_device_specs(0, 1)) == ids


def test_shard_option_is_validated():
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "x", "1/0", "-1/2"):
        with pytest.raises(CommandError):
            parse_shard(bad)


def test_prune_keeps_what_is_inside_the_retention(world, devices):
    ch = devices["gas_here"]
    now = timezone.now()
    Reading.objects.create(channel=ch, time=now - timedelta(days=31), value=1)
    Reading.objects.create(channel=ch, time=now - timedelta(days=29), value=2)
    ReadingAggregate.objects.create(channel=ch, minute=now - timedelta(days=400), count=1, sum=1)
    ReadingAggregate.objects.create(channel=ch, minute=now - timedelta(days=300), count=1, sum=1)
    assert prune_readings(raw_days=30, aggregate_days=365) == {"readings": 1, "aggregates": 1}
    assert list(Reading.objects.values_list("value", flat=True)) == [2]
    assert ReadingAggregate.objects.count() == 1


def test_maintenance_mode_is_a_regulator_action_and_audited(world, devices):
    url = f"/api/v1/devices/{devices['here'].pk}/maintenance/"
    ent = APIClient()
    ent.login(username=world.enterprise_user.username, password=PASSWORD)
    assert ent.post(url, {"maintenance": True}, format="json").status_code == 403
    c = APIClient()
    c.login(username=world.inspector.username, password=PASSWORD)
    r = c.post(url, {"maintenance": True, "reason": "探头标定"}, format="json")
    assert r.status_code == 200 and r.json()["maintenance"] is True
    assert AuditEntry.objects.filter(event="devices.maintenance_on", object_id=str(devices["here"].pk)).exists()
    assert c.post(url, {"maintenance": "yes"}, format="json").status_code == 400
    other = APIClient()
    other.login(username=world.other_inspector.username, password=PASSWORD)
    assert other.post(url, {"maintenance": False}, format="json").status_code == 404


@pytest.mark.django_db(transaction=True)
async def test_live_values_reach_only_users_who_may_see_the_channel(world):
    device = await sync_to_async(Device.objects.create)(enterprise=world.here, name="gw", host="127.0.0.1", port=16100)
    channel = await sync_to_async(Channel.objects.create)(device=device, tag="GT-1", name="gas", address=0)
    from devices.consumers import ChannelLiveConsumer

    app = ChannelLiveConsumer.as_asgi()
    path = f"/ws/devices/channels/{channel.pk}/"
    route = {"kwargs": {"channel_id": channel.pk}}

    from django.contrib.auth.models import AnonymousUser

    anonymous = WebsocketCommunicator(app, path)
    anonymous.scope["user"] = AnonymousUser()
    anonymous.scope["url_route"] = route
    connected, code = await anonymous.connect()
    assert not connected and code == 4401

    outsider = WebsocketCommunicator(app, path)
    await sync_to_async(login_scope)(outsider.scope, world.other_inspector)
    outsider.scope["url_route"] = route
    connected, code = await outsider.connect()
    assert not connected and code == 4404

    inspector = WebsocketCommunicator(app, path)
    await sync_to_async(login_scope)(inspector.scope, world.inspector)
    inspector.scope["url_route"] = route
    connected, _ = await inspector.connect()
    assert connected
    await get_channel_layer().group_send(
        live_group(device.pk),
        {"type": "device.live", "values": {str(channel.pk): [3.5, "good", 1.0], "999": [1, "good", 1.0]}},
    )
    assert await inspector.receive_json_from(timeout=2) == {
        "type": "value",
        "value": 3.5,
        "quality": "good",
        "time": 1.0,
    }
    await inspector.disconnect()


def test_http_push_device_goes_offline_when_the_data_stops(world):
    from devices.choices import DeviceStatus
    from devices.models import DeviceStatusChange
    from devices.services import http_devices_mark_stale

    now = timezone.now()
    quiet = Device.objects.create(
        enterprise=world.here, name="DCS", protocol="http", status="online", last_seen=now - timedelta(minutes=5)
    )
    fresh = Device.objects.create(
        enterprise=world.here, name="MES", protocol="http", status="online", last_seen=now - timedelta(seconds=5)
    )
    stale = http_devices_mark_stale(shard=(0, 1), poller="t", now=now)
    assert [d.pk for d in stale] == [quiet.pk]
    quiet.refresh_from_db()
    fresh.refresh_from_db()
    assert quiet.status == DeviceStatus.OFFLINE and "推送" in quiet.status_reason
    assert fresh.status == DeviceStatus.ONLINE
    assert DeviceStatusChange.objects.filter(device=quiet, new=DeviceStatus.OFFLINE).exists()
