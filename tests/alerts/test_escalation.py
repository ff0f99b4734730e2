"""Escalation with frozen time: enterprise -> park -> county -> city, each step recorded and notified once."""

from datetime import UTC, datetime, timedelta

import time_machine
from django.core.management import call_command

from alerts import services
from alerts.models import Alert, AlertEscalation
from alerts.sms import LoggingSmsBackend
from regulator.models import Notification
from tests.alerts.conftest import reading

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def raise_gas(gas, value=30.0):
    from devices.hooks import publish_readings

    publish_readings([reading(gas.channel, value, T0)])
    return Alert.objects.get(channel=gas.channel, kind="high")


def tiers(alert):
    return list(AlertEscalation.objects.filter(alert=alert).values_list("tier", flat=True))


def test_unacknowledged_alert_escalates_one_tier_per_deadline_up_to_the_city(
    rt, world, gas, django_capture_on_commit_callbacks, mailoutbox
):
    world.park_manager.phone = "13800000001"
    world.park_manager.email = "park@example.cn"
    world.park_manager.save()
    LoggingSmsBackend.outbox.clear()
    with time_machine.travel(T0, tick=False) as clock:
        alert = raise_gas(gas)  # level 2: acknowledge within 10 min
        clock.move_to(T0 + timedelta(minutes=9, seconds=59))
        assert services.alerts_escalate() == 0
        clock.move_to(T0 + timedelta(minutes=10))
        with django_capture_on_commit_callbacks(execute=True):
            assert services.alerts_escalate() == 1
        alert.refresh_from_db()
        assert alert.tier == 1 and tiers(alert) == [1]
        assert [m.to for m in mailoutbox] == [["park@example.cn"]]
        assert Notification.objects.filter(user=world.park_manager, dedupe_key=f"alert-{alert.pk}-tier-1").count() == 1
        assert any(phone == "13800000001" for phone, _ in LoggingSmsBackend.outbox)
        # Running again at once does nothing: each tier gets its own time to act.
        assert services.alerts_escalate() == 0
        clock.move_to(T0 + timedelta(minutes=20))
        call_command("escalate_alerts")
        alert.refresh_from_db()
        assert alert.tier == 2 and tiers(alert) == [1, 2]
        assert Notification.objects.filter(user=world.inspector, dedupe_key=f"alert-{alert.pk}-tier-2").exists()
        assert not Notification.objects.filter(user=world.other_inspector).exists()
        clock.move_to(T0 + timedelta(minutes=30))
        assert services.alerts_escalate() == 1
        alert.refresh_from_db()
        assert alert.tier == 3
        assert Notification.objects.filter(user=world.city_admin, dedupe_key=f"alert-{alert.pk}-tier-3").count() == 1
        # The city is the top: nothing more, ever.
        clock.move_to(T0 + timedelta(hours=5))
        assert services.alerts_escalate() == 0
        assert tiers(alert) == [1, 2, 3]
        alert.refresh_from_db()
        assert alert.escalation_due_at is None


def test_enterprise_without_park_skips_the_park_tier(rt, world):
    from alerts.models import AlertRule
    from devices.models import Channel, Device

    device = Device.objects.create(enterprise=world.here_no_park, name="机加工车间", host="127.0.0.1", port=15030)
    channel = Channel.objects.create(device=device, tag="TT-1", name="温度", address=1, quantity="temperature")
    AlertRule.objects.create(name="温度", quantity="temperature", high=80, level_high=3)
    from devices.hooks import publish_readings

    with time_machine.travel(T0, tick=False) as clock:
        publish_readings([reading(channel, 95, T0)])
        alert = Alert.objects.get()
        clock.move_to(T0 + timedelta(minutes=30))  # level 3: 30 min to acknowledge
        services.alerts_escalate()
        alert.refresh_from_db()
        assert alert.tier == 2 and tiers(alert) == [2]


def test_acknowledged_and_answered_in_time_does_not_escalate(rt, world, gas):
    with time_machine.travel(T0, tick=False) as clock:
        alert = raise_gas(gas)
        clock.move_to(T0 + timedelta(minutes=4))
        services.alert_acknowledge(alert=alert, user=world.enterprise_user)
        clock.move_to(T0 + timedelta(minutes=12))
        services.alert_record_response(alert=alert, user=world.enterprise_user, kind="plan_started")
        for minutes in (10, 30, 60, 240):
            clock.move_to(T0 + timedelta(minutes=minutes))
            assert services.alerts_escalate() == 0
    assert tiers(alert) == []


def test_acknowledged_but_no_emergency_plan_within_30_minutes_escalates(rt, world, gas):
    with time_machine.travel(T0, tick=False) as clock:
        alert = raise_gas(gas)
        clock.move_to(T0 + timedelta(minutes=2))
        services.alert_acknowledge(alert=alert, user=world.enterprise_user)
        clock.move_to(T0 + timedelta(minutes=29, seconds=59))
        assert services.alerts_escalate() == 0
        clock.move_to(T0 + timedelta(minutes=30))
        assert services.alerts_escalate() == 1
        step = AlertEscalation.objects.get(alert=alert)
        assert step.tier == 1 and "启动应急预案" in step.reason
        # The plan is started late: escalation stops there.
        services.alert_record_response(alert=alert, user=world.enterprise_user, kind="plan_started")
        clock.move_to(T0 + timedelta(hours=2))
        assert services.alerts_escalate() == 0


def test_shelved_or_normal_alerts_do_not_escalate(rt, world, gas):
    from regulator.choices import Role
    from tests import factories as f

    head = f.user("head", Role.SECTION_HEAD, jurisdiction=world.regions["county"])
    with time_machine.travel(T0, tick=False) as clock:
        alert = raise_gas(gas)
        services.alert_shelve(alert=alert, user=head, reason="检修", until=T0 + timedelta(hours=4))
        clock.move_to(T0 + timedelta(hours=1))
        assert services.alerts_escalate() == 0
        # Shelf expiry annunciates it afresh: ten new minutes to acknowledge, then it escalates.
        clock.move_to(T0 + timedelta(hours=4, minutes=1))
        assert services.alerts_escalate() == 0
        alert.refresh_from_db()
        assert alert.state == "active_unack" and alert.ack_due_at == T0 + timedelta(hours=4, minutes=11)
        clock.move_to(T0 + timedelta(hours=4, minutes=11))
        assert services.alerts_escalate() == 1
        alert.refresh_from_db()
        assert alert.tier == 1


def test_celery_task_calls_the_service(rt, world, gas):
    from alerts.tasks import escalate_alerts

    with time_machine.travel(T0, tick=False) as clock:
        raise_gas(gas)
        clock.move_to(T0 + timedelta(minutes=11))
        assert escalate_alerts.apply().get() == 1
