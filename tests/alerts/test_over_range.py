"""A reading above the range of a fail-safe-high channel (gas, or a channel marked so) is the highest
alarm at once: every high limit is raised with no on-delay, besides the sensor fault. Below the
range, and above it on other channels, it is a sensor fault only. The alert says 超量程, and the
lifecycle (shelving, maintenance suppression, linkage) is the one every other alert follows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from alerts import services
from alerts.choices import AlertState
from alerts.engine import HIGH, HIGH_HIGH, OVER_RANGE_DETAIL, SENSOR_FAULT, Engine, Limits, RuleConfig
from alerts.models import Alert, AlertRule
from alerts.runtime import rule_config
from devices.choices import OverRange, Quantity, over_range_is_alarm
from devices.models import Channel, Device, Reading, ReadingAggregate
from devices.services import ingest_readings
from regulator.choices import Role
from tests import factories as f
from tests.alerts.conftest import reading

T0 = datetime(2026, 6, 1, 3, 0, tzinfo=UTC).timestamp()
GAS = RuleConfig(limits=Limits(high_high=50, high=20), deadband=2, on_delay=2.0, over_range_high=100.0)


def kinds(changes):
    return [(c.kind, c.active) for c in changes]


def over(engine, value, t, key=1):
    """A reading above (or below) the range, as the decoders give it: its value, bad, out_of_range."""
    return engine.evaluate(key, value, False, t, "out_of_range")


# --- the engine ------------------------------------------------------------------------------------
def test_120_on_a_0_100_lel_channel_raises_high_high_at_once_despite_a_2s_on_delay():
    engine = Engine()
    engine.configure(1, GAS)
    changes = over(engine, 120.0, T0)
    assert kinds(changes) == [(HIGH_HIGH, True), (HIGH, True)]  # the most severe first
    assert [(c.value, c.limit, c.detail) for c in changes] == [
        (120.0, 50, OVER_RANGE_DETAIL),
        (120.0, 20, OVER_RANGE_DETAIL),
    ]
    # The sensor fault comes as well, after its own on-delay, and the limits stay raised meanwhile.
    assert kinds(over(engine, 120.0, T0 + 1)) == []
    assert kinds(over(engine, 120.0, T0 + 2)) == [(SENSOR_FAULT, True)]
    assert engine.active_conditions(1) == {HIGH_HIGH, HIGH, SENSOR_FAULT}


def test_a_leak_that_crosses_high_high_then_runs_past_the_range_within_the_on_delay_trips():
    engine = Engine()
    engine.configure(1, GAS)
    assert engine.evaluate(1, 60.0, True, T0) == []  # HH and H pending (2 s on-delay)
    assert kinds(over(engine, 150.0, T0 + 1.0)) == [(HIGH_HIGH, True), (HIGH, True)]


def test_back_in_range_the_limits_clear_as_usual_and_the_fault_goes():
    engine = Engine()
    engine.configure(1, GAS)
    over(engine, 120.0, T0)
    over(engine, 120.0, T0 + 2)
    # Still above HH: HH stays, the fault goes with the first good reading.
    assert kinds(engine.evaluate(1, 80.0, True, T0 + 3)) == [(SENSOR_FAULT, False)]
    assert kinds(engine.evaluate(1, 30.0, True, T0 + 4)) == [(HIGH_HIGH, False)]
    assert kinds(engine.evaluate(1, 5.0, True, T0 + 5)) == [(HIGH, False)]
    # A new excursion above the range raises at once again.
    assert kinds(over(engine, 101.0, T0 + 6)) == [(HIGH_HIGH, True), (HIGH, True)]


def test_below_the_range_is_a_sensor_fault_only():
    engine = Engine()
    engine.configure(1, GAS)
    assert over(engine, -5.0, T0) == []
    assert kinds(over(engine, -5.0, T0 + 2)) == [(SENSOR_FAULT, True)]
    assert engine.active_conditions(1) == {SENSOR_FAULT}
    # The same channel above its range: the highest alarm.
    assert kinds(over(engine, 120.0, T0 + 3)) == [(HIGH_HIGH, True), (HIGH, True)]


def test_a_channel_that_is_not_fail_safe_high_gets_a_sensor_fault_only():
    engine = Engine()
    engine.configure(1, GAS)
    engine.configure(2, RuleConfig(limits=Limits(high_high=50, high=20), on_delay=2.0))  # no over_range_high
    for i in range(5):
        over(engine, 120.0, T0 + i, key=1)
        over(engine, 120.0, T0 + i, key=2)
    assert engine.active_conditions(1) == {HIGH_HIGH, HIGH, SENSOR_FAULT}
    assert engine.active_conditions(2) == {SENSOR_FAULT}


def test_only_the_high_limits_the_rule_has():
    engine = Engine()
    engine.configure(1, RuleConfig(limits=Limits(high_high=50, low=5), over_range_high=100.0, fault_enabled=False))
    assert kinds(over(engine, 120.0, T0)) == [(HIGH_HIGH, True)]


def test_the_message_says_over_range():
    message = services.format_message(
        HIGH_HIGH, tag="GT-1", name="罐区", value=120.0, limit=50.0, unit="%LEL", detail=OVER_RANGE_DETAIL
    )
    assert "超量程" in message and "120%LEL" in message and "50%LEL" in message
    assert "超量程" not in services.format_message(HIGH_HIGH, tag="GT-1", value=60.0, limit=50.0, detail="-")


# --- the rule, per quantity and per channel -------------------------------------------------------
def test_the_rule_is_resolved_in_one_place_with_gas_as_the_default():
    assert over_range_is_alarm(Quantity.COMBUSTIBLE_GAS, OverRange.BY_QUANTITY)
    assert over_range_is_alarm(Quantity.TOXIC_GAS, OverRange.BY_QUANTITY)
    assert not over_range_is_alarm(Quantity.PRESSURE, OverRange.BY_QUANTITY)
    assert over_range_is_alarm(Quantity.PRESSURE, OverRange.ALARM)
    assert not over_range_is_alarm(Quantity.COMBUSTIBLE_GAS, OverRange.FAULT)


@pytest.fixture
def plant(world):
    device = Device.objects.create(enterprise=world.here, name="罐区控制器", host="127.0.0.1", port=15020)

    def channel(tag, quantity, **kw):
        return Channel.objects.create(
            device=device, tag=tag, name=tag, address=len(tag), quantity=quantity, range_low=0, range_high=100, **kw
        )

    gas = channel("GT-1", "combustible_gas", unit="%LEL")
    pressure = channel("PT-1", "pressure", unit="MPa")
    marked = channel("PT-2", "pressure", unit="MPa", over_range=OverRange.ALARM)
    for quantity in ("combustible_gas", "pressure"):
        AlertRule.objects.create(
            name=quantity,
            quantity=quantity,
            high=20,
            high_high=50,
            deadband=2,
            on_delay_s=2,
            level_high=2,
            level_high_high=1,
            linkage_device=device,
            linkage_unit_id=1,
            linkage_address=0,
        )
    return type("Plant", (), {"device": device, "gas": gas, "pressure": pressure, "marked": marked})


def test_rule_config_carries_the_channels_rule(plant):
    rule = AlertRule.objects.get(quantity="pressure")
    assert rule_config(rule, plant.pressure).over_range_high is None
    assert rule_config(rule, plant.marked).over_range_high == 100
    assert rule_config(AlertRule.objects.get(quantity="combustible_gas"), plant.gas).over_range_high == 100


def _over_range(channel, value=120.0, at=None):
    return reading(channel, value, at=at, good=False, quality="out_of_range")


def test_over_range_on_gas_raises_the_level_one_alert_with_linkage_and_says_so(rt, plant):
    rt.on_readings([_over_range(plant.gas)])
    hh = Alert.objects.get(channel=plant.gas, kind="high_high")
    assert hh.level == 1 and hh.state == AlertState.ACTIVE_UNACK and hh.value == 120
    assert hh.linkage_status == "requested" and hh.linkage_command is not None
    assert "超量程" in hh.message
    assert Alert.objects.filter(channel=plant.gas, kind="high").exists()


def test_a_pressure_channel_over_range_is_a_sensor_fault_unless_marked(rt, plant):
    t = timezone.now()
    for i in range(4):  # past the 2 s on-delay
        rt.on_readings([_over_range(plant.pressure, at=t + timedelta(seconds=i))])
    assert set(Alert.objects.filter(channel=plant.pressure).values_list("kind", flat=True)) == {"sensor_fault"}
    rt.on_readings([_over_range(plant.marked, at=t)])
    hh = Alert.objects.get(channel=plant.marked, kind="high_high")
    assert hh.level == 1 and hh.linkage_status == "requested" and "超量程" in hh.message


def test_changing_the_channels_rule_is_picked_up_on_reload(rt, plant):
    rt.on_readings([reading(plant.pressure, 10.0)])  # loads the rules
    plant.pressure.over_range = OverRange.ALARM
    plant.pressure.save()
    rt.on_readings([_over_range(plant.pressure)])
    assert Alert.objects.filter(channel=plant.pressure, kind="high_high", level=1).exists()


def test_over_range_in_maintenance_is_suppressed_like_any_alert(rt, plant):
    """No new bypass: maintenance suppresses an over-range alarm as it does any (no linkage)."""
    Device.objects.filter(pk=plant.device.pk).update(maintenance=True)
    rt.on_readings([_over_range(plant.gas)])
    hh = Alert.objects.get(channel=plant.gas, kind="high_high")
    assert hh.state == AlertState.SUPPRESSED and not hh.linkage_status


def test_over_range_on_a_shelved_high_alert_follows_the_lifecycle(rt, world, plant):
    """The shelved level-2 high alert stays shelved (a new occurrence); the level-1 high-high, which
    cannot be shelved, is raised with its linkage."""
    t = timezone.now()
    rt.on_readings([reading(plant.gas, 30.0, at=t), reading(plant.gas, 30.0, at=t + timedelta(seconds=3))])
    high = Alert.objects.get(channel=plant.gas, kind="high")
    head = f.user("head", Role.SECTION_HEAD, jurisdiction=world.regions["county"])
    services.alert_shelve(alert=high, user=head, reason="探头标定", until=timezone.now() + timedelta(hours=1))
    rt.on_readings([reading(plant.gas, 10.0, at=t + timedelta(seconds=4))])  # high returns (shelved, cleared)
    rt.on_readings([_over_range(plant.gas, at=t + timedelta(seconds=5))])
    high.refresh_from_db()
    assert high.state == AlertState.SHELVED and high.condition_active and high.occurrences == 2
    assert Alert.objects.filter(channel=plant.gas, kind="high").count() == 1
    hh = Alert.objects.get(channel=plant.gas, kind="high_high")
    assert hh.state == AlertState.ACTIVE_UNACK and hh.linkage_status == "requested"


# --- HTTP ingest ---------------------------------------------------------------------------------
def test_http_ingest_keeps_the_over_range_value_and_raises_the_highest_alarm(
    rt, world, plant, django_capture_on_commit_callbacks
):
    dcs = Device.objects.create(enterprise=world.here, name="DCS", protocol="http")
    gas = Channel.objects.create(
        device=dcs, tag="GT-9", name="gas", address=0, quantity="combustible_gas", range_low=0, range_high=100
    )
    pressure = Channel.objects.create(
        device=dcs, tag="PT-9", name="pressure", address=1, quantity="pressure", range_low=0, range_high=100
    )
    at = timezone.now().replace(microsecond=0)
    items = [
        {"channel": gas.pk, "time": at.isoformat(), "value": 120},
        {"channel": pressure.pk, "time": at.isoformat(), "value": -3},
        {"channel": pressure.pk, "time": (at + timedelta(seconds=1)).isoformat(), "value": 140},
    ]
    with django_capture_on_commit_callbacks(execute=True):
        result = ingest_readings(enterprise=world.here, items=items)
    assert [r["quality"] for r in result["results"]] == ["out_of_range"] * 3
    assert Reading.objects.get(channel=gas).value == 120  # stored with its value, as the poller stores it
    minute = ReadingAggregate.objects.get(channel=gas)  # and the trend shows it (not in the mean)
    assert (minute.max, minute.count, minute.bad_count) == (120, 0, 1)
    assert sorted(Reading.objects.filter(channel=pressure).values_list("value", flat=True)) == [-3, 140]
    hh = Alert.objects.get(channel=gas, kind="high_high")
    assert hh.level == 1 and hh.linkage_status == "requested" and "超量程" in hh.message
    assert not Alert.objects.filter(channel=pressure).exclude(kind="sensor_fault").exists()


def test_the_rule_page_says_what_over_range_does(plant, admin_client):
    gas_rule = AlertRule.objects.get(quantity="combustible_gas")
    page = admin_client.get(f"/admin/alerts/alertrule/{gas_rule.pk}/change/").content.decode()
    assert "超量程处理" in page and "超量程按最高级报警" in page
    pressure_rule = AlertRule.objects.get(quantity="pressure")
    page = admin_client.get(f"/admin/alerts/alertrule/{pressure_rule.pk}/change/").content.decode()
    assert "超量程仅报传感器故障" in page
    marked_rule = AlertRule.objects.create(name="PT-2", channel=plant.marked, high_high=50)
    page = admin_client.get(f"/admin/alerts/alertrule/{marked_rule.pk}/change/").content.decode()
    assert "超量程按最高级报警" in page
    listing = admin_client.get("/admin/alerts/alertrule/").content.decode()
    assert "超量程处理" in listing
