"""The over-range rule of a channel is explicit: set per channel in the API and the admin, resolved
from the quantity by default (gas: highest alarm), and shown on the device and channel pages."""

from __future__ import annotations

from rest_framework.test import APIClient

from devices.models import Channel
from tests.factories import PASSWORD


def client_for(user):
    c = APIClient()
    assert c.login(username=user.username, password=PASSWORD)
    return c


def test_the_api_shows_the_resolved_rule_and_edits_it(world, devices):
    c = client_for(world.inspector)
    gas = c.get(f"/api/v1/channels/{devices['gas_here'].pk}/").json()
    assert (gas["over_range"], gas["over_range_alarms"]) == ("quantity", True)  # combustible gas by default
    body = {"device": devices["here"].pk, "tag": "PT-1", "name": "压力", "address": 7, "quantity": "pressure"}
    created = c.post("/api/v1/channels/", body, format="json")
    assert created.status_code == 201, created.content
    assert (created.json()["over_range"], created.json()["over_range_alarms"]) == ("quantity", False)
    pk = created.json()["id"]
    marked = c.patch(f"/api/v1/channels/{pk}/", {"over_range": "alarm"}, format="json")
    assert marked.status_code == 200 and marked.json()["over_range_alarms"] is True
    assert Channel.objects.get(pk=pk).over_range_alarms
    assert c.patch(f"/api/v1/channels/{pk}/", {"over_range_alarms": False}, format="json").json()["over_range_alarms"]
    assert c.patch(f"/api/v1/channels/{pk}/", {"over_range": "maybe"}, format="json").status_code == 400
    off = c.patch(f"/api/v1/channels/{devices['gas_here'].pk}/", {"over_range": "fault"}, format="json")
    assert off.status_code == 200 and off.json()["over_range_alarms"] is False


def test_the_device_and_channel_pages_say_over_range_is_the_highest_alarm(world, devices, client):
    client.login(username=world.inspector.username, password=PASSWORD)
    device_page = client.get(f"/devices/{devices['here'].pk}/").content.decode()
    assert "超量程按最高级报警" in device_page
    channel_page = client.get(f"/devices/channels/{devices['gas_here'].pk}/").content.decode()
    assert "超量程处理" in channel_page and "超量程按最高级报警" in channel_page
    Channel.objects.filter(pk=devices["gas_here"].pk).update(over_range="fault")
    channel_page = client.get(f"/devices/channels/{devices['gas_here'].pk}/").content.decode()
    assert "超量程仅报传感器故障" in channel_page
    assert "超量程按最高级报警" not in client.get(f"/devices/{devices['here'].pk}/").content.decode()
