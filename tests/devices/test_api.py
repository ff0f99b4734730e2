"""Devices API and pages: scoping (404 outside), HTTP ingest tokens, idempotence, per-item errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from devices.choices import Protocol
from devices.hooks import register_reading_sink
from devices.models import Device, Reading, ReadingAggregate
from devices.services import ingest_token_create, ingest_token_revoke
from tests.factories import PASSWORD


def client_for(user):
    c = APIClient()
    assert c.login(username=user.username, password=PASSWORD)
    return c


@pytest.mark.parametrize(
    ("persona", "sees_here", "sees_there"),
    [
        ("inspector", True, False),
        ("other_inspector", False, True),
        ("city_admin", True, True),
        ("park_manager", True, False),
        ("enterprise_user", True, False),
        ("auditor", False, False),
    ],
)
def test_device_and_channel_lists_are_scoped(world, devices, persona, sees_here, sees_there):
    c = client_for(getattr(world, persona))
    ids = {d["id"] for d in c.get("/api/v1/devices/").json()["results"]}
    assert (devices["here"].pk in ids, devices["there"].pk in ids) == (sees_here, sees_there)
    expected = 200 if sees_there else 404
    assert c.get(f"/api/v1/channels/{devices['gas_there'].pk}/").status_code == expected


def test_anonymous_gets_nothing(devices):
    assert APIClient().get("/api/v1/devices/").status_code in (401, 403)


def test_inspector_cannot_attach_a_device_to_an_enterprise_outside_the_county(world, devices):
    c = client_for(world.inspector)
    body = {"enterprise": world.there.pk, "name": "x", "protocol": "tcp", "host": "127.0.0.1", "port": 15903}
    assert c.post("/api/v1/devices/", body, format="json").status_code == 400
    body["enterprise"] = world.here.pk
    r = c.post("/api/v1/devices/", body, format="json")
    assert r.status_code == 201, r.content
    assert c.post("/api/v1/devices/", {**body, "host": ""}, format="json").status_code == 400


def test_enterprise_user_reads_but_cannot_write(world, devices):
    c = client_for(world.enterprise_user)
    assert c.get(f"/api/v1/devices/{devices['here'].pk}/").status_code == 200
    assert c.patch(f"/api/v1/devices/{devices['here'].pk}/", {"name": "x"}, format="json").status_code == 403


def test_channel_validation_rejects_bool_holding_register(world, devices):
    c = client_for(world.inspector)
    body = {"device": devices["here"].pk, "tag": "X-1", "name": "x", "address": 5, "data_type": "bool"}
    r = c.post("/api/v1/channels/", body, format="json")
    assert r.status_code == 400
    assert "data_type" in r.content.decode()


def test_trend_from_aggregates(world, devices):
    ch = devices["gas_here"]
    now = timezone.now().replace(second=0, microsecond=0)
    for m in range(3):
        ReadingAggregate.objects.create(
            channel=ch, minute=now - timedelta(minutes=m), min=1, max=3, sum=20, count=10, bad_count=m
        )
    c = client_for(world.inspector)
    data = c.get(f"/api/v1/channels/{ch.pk}/trend/?range=hour").json()
    assert len(data["points"]) == 3 and data["points"][0][2] == 2.0
    month = c.get(f"/api/v1/channels/{ch.pk}/trend/?range=month").json()
    assert sum(p[4] for p in month["points"]) == 30
    assert c.get(f"/api/v1/channels/{ch.pk}/trend/?range=year").status_code == 400
    assert client_for(world.other_inspector).get(f"/api/v1/channels/{ch.pk}/trend/").status_code == 404


def ingest(token, items):
    return APIClient().post(
        "/api/v1/readings/", {"readings": items}, format="json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def test_ingest_is_idempotent_scoped_and_reports_per_item(world, devices, django_capture_on_commit_callbacks):
    # A token writes HTTP-push channels only (tests/devices/test_ingest_scope.py): make GT-101's device one.
    Device.objects.filter(pk=devices["here"].pk).update(protocol=Protocol.HTTP, host="")
    _t, raw = ingest_token_create(enterprise=world.here, name="DCS")
    got = []
    register_reading_sink(got.extend)
    t = timezone.now().replace(microsecond=0)
    items = [
        {"tag": "GT-101", "time": t.isoformat(), "value": 3.5},
        {"channel": devices["gas_here"].pk, "time": (t + timedelta(seconds=1)).isoformat(), "value": 4.0},
        {"channel": devices["gas_there"].pk, "time": t.isoformat(), "value": 1.0},  # another enterprise's
        {"tag": "GT-101", "time": "2026-01-01T08:00:00", "value": 1.0},  # no time zone
        {"tag": "GT-101", "time": (t + timedelta(seconds=2)).isoformat(), "value": 250.0},  # above range
        {"tag": "GT-101", "time": (t + timedelta(seconds=3)).isoformat(), "value": "NaN"},
        {"tag": "GT-101", "time": (t + timedelta(seconds=4)).isoformat(), "quality": "sentinel"},
    ]
    with django_capture_on_commit_callbacks(execute=True):
        r = ingest(raw, items)
    assert r.status_code == 200, r.content
    statuses = [x["status"] for x in r.json()["results"]]
    assert statuses == ["created", "created", "error", "error", "created", "error", "created"]
    assert r.json()["results"][4]["quality"] == "out_of_range"
    # Kept with its value (0-100 %LEL range): the alert engine and the trend see 250, not a gap.
    assert Reading.objects.get(channel=devices["gas_here"], quality="out_of_range").value == 250.0
    assert [e.value for e in got if e.quality == "out_of_range"] == [250.0]
    assert Reading.objects.filter(channel=devices["gas_there"]).count() == 0
    assert Reading.objects.filter(channel=devices["gas_here"]).count() == 4
    assert len([e for e in got if e.channel_id == devices["gas_here"].pk]) == 4
    agg = ReadingAggregate.objects.get(channel=devices["gas_here"], minute=t.replace(second=0))
    before = (agg.count, agg.bad_count, agg.sum)
    again = ingest(raw, items)
    assert [x["status"] for x in again.json()["results"]] == [
        "duplicate",
        "duplicate",
        "error",
        "error",
        "duplicate",
        "error",
        "duplicate",
    ]
    assert Reading.objects.filter(channel=devices["gas_here"]).count() == 4
    agg.refresh_from_db()
    assert (agg.count, agg.bad_count, agg.sum) == before  # re-posting never double counts


def test_ingest_rejects_bad_and_revoked_tokens(world, devices):
    token, raw = ingest_token_create(enterprise=world.here, name="DCS")
    t = timezone.now().isoformat()
    assert ingest("nope", [{"tag": "GT-101", "time": t, "value": 1}]).status_code == 401
    ingest_token_revoke(token=token)
    assert ingest(raw, [{"tag": "GT-101", "time": t, "value": 1}]).status_code == 401


def test_ingest_batch_limits(world, devices, settings):
    settings.DEVICES_INGEST_MAX_ITEMS = 2
    _t, raw = ingest_token_create(enterprise=world.here, name="DCS")
    assert ingest(raw, [{}] * 3).status_code == 400
    r = APIClient().post("/api/v1/readings/", {"readings": "x"}, format="json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert r.status_code == 400


def test_pages_are_scoped(world, devices, client):
    client.login(username=world.inspector.username, password=PASSWORD)
    r = client.get("/devices/")
    assert r.status_code == 200
    assert "罐区网关" in r.content.decode() and "外县网关" not in r.content.decode()
    assert client.get(f"/devices/{devices['here'].pk}/").status_code == 200
    assert client.get(f"/devices/{devices['there'].pk}/").status_code == 404
    page = client.get(f"/devices/channels/{devices['gas_here'].pk}/?range=day")
    assert page.status_code == 200 and b"echarts-global.js" in page.content
    assert client.get(f"/devices/channels/{devices['gas_there'].pk}/").status_code == 404
    assert client.get(f"/devices/?enterprise={world.there.pk}").status_code == 404


def test_dossier_section_lists_the_devices(world, devices):
    from devices.dossier import devices_summary

    data = devices_summary(world.here, world.inspector)
    assert data["device_count"] == 1 and data["channel_count"] == 1
    assert data["devices"][0]["name"] == "罐区网关"
