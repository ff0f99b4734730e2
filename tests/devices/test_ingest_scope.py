"""HTTP ingest writes only its own enterprise's HTTP-push channels, and a device with a wrong clock is
flagged (stored at the receive time, never as good) while its value still raises the alarm."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from alerts import runtime as runtime_module
from alerts.models import Alert, AlertRule
from devices import hooks
from devices.choices import Protocol, Quality
from devices.models import Channel, Device, Reading, ReadingAggregate
from devices.services import ingest_readings, ingest_token_create


@pytest.fixture
def feed(world, devices):
    """The enterprise's DCS feed (an HTTP-push device) next to its Modbus gateway (devices['here'])."""
    dcs = Device.objects.create(enterprise=world.here, name="DCS数据推送", protocol=Protocol.HTTP)
    gas = Channel.objects.create(
        device=dcs,
        tag="DCS-GT-01",
        name="DCS 可燃气体",
        address=0,
        quantity="combustible_gas",
        unit="%LEL",
        range_low=0,
        range_high=100,
    )
    _token, raw = ingest_token_create(enterprise=world.here, name="DCS")
    return type("Feed", (), {"device": dcs, "gas": gas, "raw": raw})


@pytest.fixture
def alarms(settings, db):
    """The real alert runtime behind the readings hook (tests/devices isolates the hooks)."""
    settings.ALERT_RUNTIME_BACKGROUND = False
    settings.ALERT_RULE_REFRESH_SECONDS = 0
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    AlertRule.objects.create(
        name="可燃气体默认", quantity="combustible_gas", high=20, high_high=50, level_high=2, level_high_high=1
    )
    fresh, old = runtime_module.AlertRuntime(), runtime_module.runtime
    runtime_module.runtime = fresh
    hooks.register_reading_sink(runtime_module.reading_sink)
    yield fresh
    fresh.stop()
    runtime_module.runtime = old


def post(raw, items):
    return APIClient().post("/api/v1/readings/", {"readings": items}, format="json", HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_token_cannot_write_a_modbus_polled_channel_of_its_own_enterprise(world, devices, feed):
    t = timezone.now().isoformat()
    r = post(
        feed.raw,
        [
            {"channel": devices["gas_here"].pk, "time": t, "value": 99.0},  # the Modbus gateway's GT-101
            {"channel": feed.gas.pk, "time": t, "value": 3.0},
        ],
    )
    assert r.status_code == 200, r.content
    rejected, stored = r.json()["results"]
    assert rejected["status"] == "error" and rejected["code"] == "not_http_device"
    assert "Modbus" in rejected["error"]
    assert stored["status"] == "created" and stored["quality"] == "good"  # the rest of the batch is stored
    assert not Reading.objects.filter(channel=devices["gas_here"]).exists()
    assert Reading.objects.filter(channel=feed.gas).count() == 1


def test_token_cannot_write_by_tag_into_a_polled_channel_and_a_tag_prefers_the_feed(world, devices, feed):
    t = timezone.now()
    Channel.objects.create(device=feed.device, tag="GT-101", name="同名位号", address=1)
    r = post(
        feed.raw,
        [{"tag": "GT-101", "time": t.isoformat(), "value": 1.0}, {"tag": "GT-101", "time": t.isoformat(), "value": 1}],
    )
    assert [x["status"] for x in r.json()["results"]] == ["created", "duplicate"]
    assert not Reading.objects.filter(channel=devices["gas_here"]).exists()
    # Only the Modbus channel carries the tag: refused with the reason, not "unknown".
    Channel.objects.filter(device=feed.device, tag="GT-101").delete()
    r = post(feed.raw, [{"tag": "GT-101", "time": (t + timedelta(seconds=1)).isoformat(), "value": 1.0}])
    assert r.json()["results"][0]["code"] == "not_http_device"


def test_token_cannot_write_another_enterprises_or_a_disabled_channel(world, devices, feed):
    other = Device.objects.create(enterprise=world.there, name="外县DCS", protocol=Protocol.HTTP)
    theirs = Channel.objects.create(device=other, tag="DCS-X", name="外县", address=0)
    off = Channel.objects.create(device=feed.device, tag="DCS-OFF", name="停用", address=2, enabled=False)
    t = timezone.now().isoformat()
    r = ingest_readings(
        enterprise=world.here,
        items=[
            {"channel": theirs.pk, "time": t, "value": 1.0},
            {"channel": off.pk, "time": t, "value": 1.0},
            {"channel": feed.gas.pk, "time": t, "value": 1.0},
        ],
    )
    assert [(x["status"], x.get("code")) for x in r["results"]] == [
        ("error", "unknown_channel"),
        ("error", "channel_disabled"),
        ("created", None),
    ]
    assert r["summary"] == {"created": 1, "duplicate": 0, "error": 2}
    assert not Reading.objects.filter(channel__in=[theirs, off]).exists()
    Device.objects.filter(pk=feed.device.pk).update(enabled=False)
    r = ingest_readings(enterprise=world.here, items=[{"channel": feed.gas.pk, "time": t, "value": 2.0}])
    assert r["results"][0]["code"] == "device_disabled"


@pytest.mark.parametrize("skew", [timedelta(hours=-1), timedelta(hours=2)], ids=["behind", "ahead"])
def test_skewed_device_time_is_flagged_stored_at_receive_time_and_still_alarms(
    world, feed, alarms, skew, django_capture_on_commit_callbacks
):
    before = timezone.now()
    device_time = before + skew
    with django_capture_on_commit_callbacks(execute=True):
        r = post(feed.raw, [{"channel": feed.gas.pk, "time": device_time.isoformat(), "value": 80.0}])
    after = timezone.now()
    assert r.status_code == 200, r.content
    res = r.json()["results"][0]
    assert res["status"] == "created" and res["quality"] == "clock_skew" and res["clock_skew"] is True
    assert abs(res["skew_seconds"] - skew.total_seconds()) < 60
    row = Reading.objects.get(channel=feed.gas)
    assert row.quality == Quality.CLOCK_SKEW and not row.good  # never stored as good
    assert row.value == 80.0 and row.device_time == device_time
    assert before <= row.time <= after  # the receive time
    # Fail safe: the leak reported by a device with a wrong clock is a level-1 alarm, now.
    alert = Alert.objects.get(channel=feed.gas, kind="high_high")
    assert alert.level == 1 and alert.value == 80.0
    assert before <= alert.raised_at <= after
    agg = ReadingAggregate.objects.get(channel=feed.gas)
    assert (agg.count, agg.bad_count) == (0, 1)  # counted as flagged, not as a good sample


def test_skewed_reading_cannot_clear_an_active_alarm_in_the_past(
    world, feed, alarms, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        ingest_readings(
            enterprise=world.here, items=[{"channel": feed.gas.pk, "time": timezone.now().isoformat(), "value": 80.0}]
        )
    alert = Alert.objects.get(channel=feed.gas, kind="high_high")
    old = timezone.now() - timedelta(hours=1)
    with django_capture_on_commit_callbacks(execute=True):
        r = ingest_readings(
            enterprise=world.here, items=[{"channel": feed.gas.pk, "time": old.isoformat(), "value": 0}]
        )
    assert r["results"][0]["quality"] == "clock_skew"
    alert.refresh_from_db()
    # Whatever the engine makes of a normal value now, it is never a return to normal an hour ago.
    assert alert.cleared_at is None or alert.cleared_at >= alert.raised_at
    assert not alert.transitions.filter(at__lt=alert.raised_at).exists()


def test_reposting_a_skewed_batch_creates_nothing_and_keeps_every_reading(world, feed):
    old = timezone.now() - timedelta(hours=3)
    items = [{"channel": feed.gas.pk, "time": (old + timedelta(seconds=s)).isoformat(), "value": s} for s in range(5)]
    first = ingest_readings(enterprise=world.here, items=items)
    assert first["summary"]["created"] == 5  # all five arrive "now", none lost to (channel, time)
    again = ingest_readings(enterprise=world.here, items=items)
    assert again["summary"] == {"created": 0, "duplicate": 5, "error": 0}
    assert Reading.objects.filter(channel=feed.gas, quality=Quality.CLOCK_SKEW).count() == 5
    assert sorted(Reading.objects.values_list("value", flat=True)) == [0, 1, 2, 3, 4]


def test_a_device_time_within_the_allowed_skew_is_kept(world, feed, settings):
    settings.DEVICES_INGEST_MAX_CLOCK_SKEW_SECONDS = 600
    t = (timezone.now() - timedelta(seconds=500)).replace(microsecond=0)
    r = ingest_readings(enterprise=world.here, items=[{"channel": feed.gas.pk, "time": t.isoformat(), "value": 2}])
    assert r["results"][0]["quality"] == "good" and "clock_skew" not in r["results"][0]
    assert Reading.objects.get(channel=feed.gas).time == t


def test_a_batch_is_evaluated_in_time_order(world, feed, alarms, django_capture_on_commit_callbacks):
    t = timezone.now()
    items = [
        {"channel": feed.gas.pk, "time": t.isoformat(), "value": 80.0},  # the newest first
        {"channel": feed.gas.pk, "time": (t - timedelta(seconds=5)).isoformat(), "value": 1.0},
    ]
    with django_capture_on_commit_callbacks(execute=True):
        ingest_readings(enterprise=world.here, items=items)
    alert = Alert.objects.get(channel=feed.gas, kind="high_high")
    assert alert.condition_active and alert.cleared_at is None  # the leak is the latest value
