"""Readings become alerts (database first); every ISA-18.2 transition and the forbidden ones."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from alerts import services
from alerts.choices import AlertState, ResponseKind, Tier
from alerts.models import Alert, AlertRule, AlertTransition, FloodGroup, ThresholdSchedule
from devices.hooks import DeviceStatusEvent, publish_readings, publish_status
from devices.models import Channel, CoilWriteCommand
from regulator.choices import EnterpriseRole, Role
from regulator.errors import InvalidInput, TransitionNotAllowed
from regulator.models import AuditEntry, Notification
from tests import factories as f
from tests.alerts.conftest import reading


def now():
    return datetime.now(UTC)


def raise_high(gas, value=30.0, at=None):
    publish_readings([reading(gas.channel, value, at)])
    return Alert.objects.get(channel=gas.channel, kind="high")


def test_reading_over_limit_is_stored_with_level_deadlines_and_enterprise_notified(
    rt, world, gas, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        alert = raise_high(gas, 25.5)
    # The push to the screens is queued before the enterprise's notification.
    assert len(callbacks) >= 2
    assert alert.state == AlertState.ACTIVE_UNACK
    assert alert.level == 2 and alert.colour == "orange"
    assert alert.enterprise == world.here and alert.device == gas.device
    assert alert.value == 25.5 and alert.limit == 20 and alert.unit == "%LEL"
    assert "GT-101" in alert.message
    assert alert.ack_due_at - alert.raised_at == timedelta(minutes=10)
    assert alert.response_due_at - alert.raised_at == timedelta(minutes=30)
    assert alert.required_response == ResponseKind.PLAN_STARTED
    assert Notification.objects.filter(user=world.enterprise_user, dedupe_key=f"alert-{alert.pk}-raised").exists()
    assert not Notification.objects.filter(user=world.inspector).exists()  # level 2 is not a direct report
    assert list(AlertTransition.objects.filter(alert=alert).values_list("action", "to_state")) == [
        ("raise", "active_unack")
    ]


def test_below_limit_does_nothing_and_unknown_channel_is_ignored(rt, world, gas):
    publish_readings([reading(gas.channel, 19.9)])
    other = Channel.objects.create(device=gas.device, tag="PT-1", name="压力", address=9, quantity="pressure")
    publish_readings([reading(other, 1e6)])  # no rule for pressure
    assert Alert.objects.count() == 0


def test_clear_before_ack_goes_to_rtn_unack_then_normal_on_ack(rt, world, gas):
    alert = raise_high(gas)
    publish_readings([reading(gas.channel, 10)])
    alert.refresh_from_db()
    assert alert.state == AlertState.CLEARED_UNACK and not alert.condition_active and alert.cleared_at
    services.alert_acknowledge(alert=alert, user=world.enterprise_user, comment="现场已确认")
    alert.refresh_from_db()
    assert alert.state == AlertState.NORMAL and alert.closed_at and alert.acknowledged_by == world.enterprise_user
    t = alert.transitions.last()
    assert (t.action, t.from_state, t.to_state, t.user, t.comment) == (
        "acknowledge",
        "cleared_unack",
        "normal",
        world.enterprise_user,
        "现场已确认",
    )
    assert AuditEntry.objects.filter(event="alert.acknowledge", object_id=str(alert.pk)).exists()


def test_ack_while_active_then_clear_goes_to_normal(rt, world, gas):
    alert = raise_high(gas)
    services.alert_acknowledge(alert=alert, user=world.inspector)
    alert.refresh_from_db()
    assert alert.state == AlertState.ACTIVE_ACK
    publish_readings([reading(gas.channel, 17.9)])  # below limit minus deadband
    alert.refresh_from_db()
    assert alert.state == AlertState.NORMAL


def test_deadband_keeps_alert_active_when_value_hovers_under_limit(rt, world, gas):
    alert = raise_high(gas, 21)
    publish_readings([reading(gas.channel, 19)])  # 19 > 20 - 2
    alert.refresh_from_db()
    assert alert.state == AlertState.ACTIVE_UNACK and alert.condition_active


def test_realarm_from_cleared_unack_reuses_the_alert(rt, world, gas):
    alert = raise_high(gas)
    publish_readings([reading(gas.channel, 5)])
    publish_readings([reading(gas.channel, 30)])
    alert.refresh_from_db()
    assert alert.state == AlertState.ACTIVE_UNACK and alert.occurrences == 2
    assert Alert.objects.filter(channel=gas.channel, kind="high").count() == 1
    assert "realarm" in alert.transitions.values_list("action", flat=True)


def test_a_new_occurrence_after_normal_is_a_new_alert(rt, world, gas):
    first = raise_high(gas)
    services.alert_acknowledge(alert=first, user=world.inspector)
    publish_readings([reading(gas.channel, 5)])
    publish_readings([reading(gas.channel, 30)])
    assert Alert.objects.filter(channel=gas.channel, kind="high").count() == 2
    assert Alert.objects.filter(channel=gas.channel, kind="high", state="active_unack").exclude(pk=first.pk).exists()


@pytest.mark.parametrize(
    "state,action",
    [
        ("normal", "acknowledge"),
        ("active_ack", "acknowledge"),
        ("normal", "shelve"),
        ("active_unack", "unshelve"),
        ("active_unack", "return_to_service"),
    ],
)
def test_forbidden_transitions_name_current_state_and_allowed_actions(rt, world, gas, state, action):
    alert = raise_high(gas)
    Alert.objects.filter(pk=alert.pk).update(state=state)
    alert.refresh_from_db()
    head = f.user("head", Role.SECTION_HEAD, jurisdiction=world.regions["county"])
    calls = {
        "acknowledge": lambda: services.alert_acknowledge(alert=alert, user=head),
        "shelve": lambda: services.alert_shelve(
            alert=alert, user=head, reason="检修", until=timezone.now() + timedelta(hours=1)
        ),
        "unshelve": lambda: services.alert_unshelve(alert=alert, user=head),
        "return_to_service": lambda: services.alert_return_to_service(alert=alert, user=head),
    }
    with pytest.raises(TransitionNotAllowed) as exc:
        calls[action]()
    assert exc.value.details["current_status"] == state
    assert action not in exc.value.details["allowed_actions"]


def test_shelve_needs_authorised_role_reason_and_expiry_then_expires(rt, world, gas):
    alert = raise_high(gas)
    until = timezone.now() + timedelta(hours=2)
    with pytest.raises(PermissionDenied):
        services.alert_shelve(alert=alert, user=world.inspector, reason="误报", until=until)
    with pytest.raises(PermissionDenied):
        services.alert_shelve(alert=alert, user=world.enterprise_user, reason="误报", until=until)
    manager = f.enterprise_user("safetymgr", world.here, EnterpriseRole.SAFETY_MANAGER)
    with pytest.raises(InvalidInput):
        services.alert_shelve(alert=alert, user=manager, reason="", until=until)
    with pytest.raises(InvalidInput):
        services.alert_shelve(alert=alert, user=manager, reason="探头标定", until=timezone.now() + timedelta(days=30))
    services.alert_shelve(alert=alert, user=manager, reason="探头标定", until=until)
    alert.refresh_from_db()
    assert alert.state == AlertState.SHELVED and alert.shelve_reason == "探头标定" and alert.escalation_due_at is None
    # While shelved a new occurrence does not annunciate.
    publish_readings([reading(gas.channel, 5)])
    publish_readings([reading(gas.channel, 40)])
    alert.refresh_from_db()
    assert alert.state == AlertState.SHELVED and alert.condition_active
    # Expiry returns it to what the process says: still active -> annunciates again.
    assert services.alerts_unshelve_expired(until + timedelta(seconds=1)) == 1
    alert.refresh_from_db()
    assert alert.state == AlertState.ACTIVE_UNACK and alert.shelved_until is None


def test_unshelve_of_a_cleared_condition_returns_to_normal(rt, world, gas):
    alert = raise_high(gas)
    head = f.user("head", Role.SECTION_HEAD, jurisdiction=world.regions["county"])
    services.alert_shelve(alert=alert, user=head, reason="检修", until=timezone.now() + timedelta(hours=1))
    publish_readings([reading(gas.channel, 1)])
    alert.refresh_from_db()
    assert alert.state == AlertState.SHELVED and not alert.condition_active
    services.alert_unshelve(alert=alert, user=head)
    alert.refresh_from_db()
    assert alert.state == AlertState.NORMAL


def test_level_one_cannot_be_shelved(rt, world, gas):
    publish_readings([reading(gas.channel, 60)])
    alert = Alert.objects.get(kind="high_high")
    head = f.user("head", Role.SECTION_HEAD, jurisdiction=world.regions["county"])
    with pytest.raises(InvalidInput):
        services.alert_shelve(alert=alert, user=head, reason="x", until=timezone.now() + timedelta(hours=1))


def test_out_of_service_and_back(rt, world, gas):
    alert = raise_high(gas)
    head = f.user("head", Role.SECTION_HEAD, jurisdiction=world.regions["county"])
    with pytest.raises(PermissionDenied):
        services.alert_remove_from_service(alert=alert, user=world.inspector, reason="拆除")
    services.alert_remove_from_service(alert=alert, user=head, reason="探头拆除更换")
    alert.refresh_from_db()
    assert alert.state == AlertState.OUT_OF_SERVICE
    services.alert_return_to_service(alert=alert, user=head)
    alert.refresh_from_db()
    assert alert.state == AlertState.ACTIVE_UNACK  # the condition is still there


def test_device_in_maintenance_suppresses_by_design(rt, world, gas, django_capture_on_commit_callbacks):
    gas.device.maintenance = True
    gas.device.save()
    with django_capture_on_commit_callbacks(execute=True):
        publish_readings([reading(gas.channel, 30)])
    alert = Alert.objects.get(kind="high")
    assert alert.state == AlertState.SUPPRESSED
    assert not Notification.objects.filter(dedupe_key=f"alert-{alert.pk}-raised").exists()
    gas.device.maintenance = False
    gas.device.save()
    assert services.alerts_apply_maintenance() == 1
    alert.refresh_from_db()
    assert alert.state == AlertState.ACTIVE_UNACK
    gas.device.maintenance = True
    gas.device.save()
    services.alerts_apply_maintenance()
    alert.refresh_from_db()
    assert alert.state == AlertState.SUPPRESSED


def test_level_one_reports_to_county_and_requests_linkage_then_records_valve_closed(rt, world, gas):
    gas.rule.linkage_device = gas.device
    gas.rule.linkage_unit_id = 1
    gas.rule.linkage_address = 5
    gas.rule.save()
    t0 = now()
    publish_readings([reading(gas.channel, 65, t0)])
    alert = Alert.objects.get(kind="high_high")
    assert alert.level == 1 and alert.colour == "red"
    assert Notification.objects.filter(user=world.inspector, dedupe_key=f"alert-{alert.pk}-direct-report").exists()
    assert not Notification.objects.filter(user=world.other_inspector).exists()
    assert alert.responses.filter(kind=ResponseKind.COUNTY_REPORTED).exists()
    command = CoilWriteCommand.objects.get()
    assert (command.device, command.unit_id, command.address, command.value) == (gas.device, 1, 5, True)
    assert alert.linkage_command == command and alert.linkage_status == "requested"
    assert AuditEntry.objects.filter(event="alert.linkage_requested").exists()
    # The poller confirms the write by read-back: the response time is the write's own time.
    CoilWriteCommand.objects.filter(pk=command.pk).update(
        status="done", finished_at=t0 + timedelta(seconds=2), readback=True
    )
    assert services.alerts_sync_linkage() == 1
    alert.refresh_from_db()
    assert alert.linkage_status == "confirmed"
    valve = alert.responses.get(kind=ResponseKind.VALVE_CLOSED)
    assert valve.seconds_after_alert == pytest.approx(2, abs=0.01)


def test_flood_of_more_than_ten_alerts_from_one_device_is_grouped(rt, world, gas, django_capture_on_commit_callbacks):
    channels = [
        Channel.objects.create(
            device=gas.device, tag=f"GT-{i}", name=f"点{i}", address=10 + i, quantity="combustible_gas"
        )
        for i in range(12)
    ]
    t0 = now()
    with django_capture_on_commit_callbacks(execute=True):
        for i, ch in enumerate(channels):
            publish_readings([reading(ch, 30, t0 + timedelta(seconds=i))])
    assert Alert.objects.filter(device=gas.device).count() == 12
    group = FloodGroup.objects.get()
    assert group.count == 12 and Alert.objects.filter(flood_group=group).count() == 12
    # The enterprise got one flood notice, not one per grouped alert.
    notes = Notification.objects.filter(user=world.enterprise_user)
    assert notes.filter(dedupe_key__contains="flood").count() == 1
    assert notes.count() == 10 + 1


def test_stale_data_and_sensor_fault_raise_level_three(rt, world, gas):
    t0 = now()
    publish_readings([reading(gas.channel, 1, t0)])
    assert rt.tick(t0.timestamp() + 31) == 1
    stale = Alert.objects.get(kind="stale")
    assert stale.level == 3 and stale.required_response == ResponseKind.RECTIFICATION_PLAN
    publish_readings([reading(gas.channel, None, t0 + timedelta(seconds=40), good=False, quality="sentinel")])
    assert Alert.objects.filter(kind="sensor_fault", state="active_unack").exists()
    publish_readings([reading(gas.channel, 1, t0 + timedelta(seconds=41))])
    assert set(Alert.objects.values_list("kind", "state")) == {
        ("stale", "cleared_unack"),
        ("sensor_fault", "cleared_unack"),
    }


def test_device_offline_from_the_status_sink(rt, world, gas):
    publish_readings([reading(gas.channel, 1)])  # loads the rules
    publish_status(DeviceStatusEvent(device_id=gas.device.pk, online=False, reason="连接超时", at=now()))
    alert = Alert.objects.get(kind="device_offline")
    assert alert.channel is None and alert.device == gas.device and "连接超时" in alert.message
    publish_status(DeviceStatusEvent(device_id=gas.device.pk, online=True, reason="", at=now()))
    alert.refresh_from_db()
    assert alert.state == AlertState.CLEARED_UNACK


def test_channel_rule_overrides_default_and_summer_schedule_applies(rt, world, gas):
    special = AlertRule.objects.create(name="GT-101 专用", channel=gas.channel, high=40, level_high=2)
    ThresholdSchedule.objects.create(rule=special, name="夏季", month_from=6, month_to=9, high=10)
    winter = datetime(2026, 1, 10, 4, tzinfo=UTC)
    summer = datetime(2026, 7, 10, 4, tzinfo=UTC)
    publish_readings([reading(gas.channel, 30, winter)])
    assert not Alert.objects.exists()  # 30 < 40 (the default's 20 does not apply)
    publish_readings([reading(gas.channel, 12, summer)])
    assert Alert.objects.get().limit == 10


def test_response_records_measure_minutes_after_the_alert(rt, world, gas):
    alert = raise_high(gas, at=now() - timedelta(minutes=10))
    services.alert_record_response(
        alert=alert, user=world.enterprise_user, kind="plan_started", at=alert.raised_at + timedelta(minutes=3)
    )
    services.alert_record_response(
        alert=alert, user=world.inspector, kind="fire_brigade", at=alert.raised_at + timedelta(minutes=5)
    )
    alert.refresh_from_db()
    assert alert.responded_at == alert.raised_at + timedelta(minutes=3)
    assert [round(r.seconds_after_alert) for r in alert.responses.all()] == [180, 300]
    with pytest.raises(InvalidInput):
        services.alert_record_response(
            alert=alert, user=world.inspector, kind="other", at=alert.raised_at - timedelta(minutes=1)
        )


def test_review_marks_false_alarm_only_by_regulator(rt, world, gas):
    alert = raise_high(gas)
    with pytest.raises(PermissionDenied):
        services.alert_review(alert=alert, user=world.enterprise_user, false_alarm=True)
    services.alert_review(alert=alert, user=world.inspector, false_alarm=True, note="标定漂移")
    alert.refresh_from_db()
    assert alert.false_alarm is True and alert.reviewed_by == world.inspector


def test_tier_recipients(world):
    assert services.tier_recipients(world.here, Tier.ENTERPRISE) == [world.enterprise_user]
    assert services.tier_recipients(world.here, Tier.PARK) == [world.park_manager]
    assert services.tier_recipients(world.here, Tier.COUNTY) == [world.inspector]
    assert services.tier_recipients(world.here, Tier.CITY) == [world.city_admin]
    assert services.tier_recipients(world.there, Tier.COUNTY) == [world.other_inspector]


def test_http_ingest_in_another_worker_clears_what_the_first_raised(world, gas):
    from alerts.runtime import AlertRuntime

    worker_a, worker_b = AlertRuntime(), AlertRuntime()
    t0 = now()
    worker_a.on_readings([reading(gas.channel, 30, t0)])
    alert = Alert.objects.get(kind="high")
    worker_b.on_readings([reading(gas.channel, 5, t0 + timedelta(seconds=1))])
    alert.refresh_from_db()
    assert alert.state == AlertState.CLEARED_UNACK
