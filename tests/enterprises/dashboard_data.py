"""A small, hand-countable fixture for the dashboard tests (numbers in the tests are counted from it).

Period under test: October 2026 (previous: September 2026); jurisdiction: 常熟市 (world.inspector).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import time_machine
from django.utils import timezone

from alerts.models import Alert
from devices.models import Device
from enforcement.models import CreditScore, Inspection
from enterprises.models import Enterprise
from hazards import services as hazard_services
from hazards.models import Hazard
from regulator.choices import EnterpriseRole
from tests import factories as f

OCT = (date(2026, 10, 1), date(2026, 10, 31))
TODAY = date(2026, 10, 20)


def at(month: int, day: int, hour: int = 12, minute: int = 0, year: int = 2026) -> datetime:
    return timezone.make_aware(datetime(year, month, day, hour, minute), timezone.get_default_timezone())


def hazard(ent, reported, *, closed=None, on_time=None, status=None, grade="ordinary", **extra) -> Hazard:
    status = status or ("closed" if closed else "rectifying")
    return Hazard.objects.create(
        enterprise=ent,
        description="测试隐患",
        source="inspection",
        grade=grade,
        major_level=1 if grade == "major" else None,
        status=status,
        reported_at=reported,
        found_at=reported,
        closed_at=closed,
        closed_on_time=on_time,
        **extra,
    )


def alert(ent, raised, level, *, ack_after_min=None, false_alarm=None) -> Alert:
    return Alert.objects.create(
        enterprise=ent,
        kind="high",
        level=level,
        state="normal",
        message="测试报警",
        raised_at=raised,
        ack_due_at=raised + timedelta(minutes=5),
        acknowledged_at=raised + timedelta(minutes=ack_after_min) if ack_after_min is not None else None,
        false_alarm=false_alarm,
    )


def hazard_with_extension(world) -> Hazard:
    """Through the real services: deadline 10-10, extended to 10-25, submitted 10-18, closed 10-20 12:00
    (18 days after reporting on 10-02 12:00): on time only thanks to the extension."""
    manager = f.enterprise_user("dash_manager", world.here, EnterpriseRole.SAFETY_MANAGER)
    officer = world.enterprise_user
    with time_machine.travel(at(10, 2), tick=False):
        h = hazard_services.hazard_report(
            enterprise=world.here, user=manager, source="self_check", description="储罐区报警器失效"
        )
        h = hazard_services.hazard_confirm(hazard=h, user=manager)
        h = hazard_services.hazard_start_rectification(
            hazard=h,
            user=officer,
            measures="更换报警器",
            funds="5000",
            responsible_person="张三",
            deadline=date(2026, 10, 10),
            emergency_plan="加强巡检",
        )
    with time_machine.travel(at(10, 8), tick=False):
        hazard_services.hazard_request_extension(hazard=h, user=officer, new_deadline=date(2026, 10, 25), reason="备件")
        hazard_services.hazard_decide_extension(hazard=Hazard.objects.get(pk=h.pk), user=manager, approve=True)
    with time_machine.travel(at(10, 18), tick=False):
        h = hazard_services.hazard_submit_rectification(hazard=Hazard.objects.get(pk=h.pk), user=officer, note="已更换")
    with time_machine.travel(at(10, 20), tick=False):
        h = hazard_services.hazard_verify(hazard=Hazard.objects.get(pk=h.pk), user=manager)
    return h


def build(world) -> dict:
    here, direct, there = world.here, world.here_no_park, world.there
    Enterprise.objects.filter(pk__in=[here.pk, direct.pk, there.pk]).update(created_at=at(1, 1))
    Enterprise.objects.filter(pk=here.pk).update(risk_grade="red", is_key=True)
    Enterprise.objects.filter(pk=direct.pk).update(risk_grade="blue")
    out = {}
    # Hazards (常熟市): see tests for the counts.
    out["h1"] = hazard(here, at(10, 5), closed=at(10, 15), on_time=True)
    out["h2"] = hazard(here, at(10, 10), grade="major", listed=True, listed_at=at(10, 12))
    out["h3"] = hazard(here, at(10, 12), status="dismissed")
    out["h4"] = hazard(here, at(9, 10), closed=at(10, 3), on_time=False)
    out["h5"] = hazard_with_extension(world)
    out["h6"] = hazard(direct, at(9, 20), closed=at(9, 25), on_time=True)
    out["h7"] = hazard(direct, at(10, 25), closed=at(11, 2), on_time=True)
    out["h8"] = hazard(there, at(10, 6))  # 张家港市: outside the county inspector's jurisdiction
    # Alerts.
    alert(here, at(10, 3), 1, ack_after_min=10, false_alarm=False)
    alert(here, at(10, 4), 2, ack_after_min=4, false_alarm=True)
    alert(here, at(10, 5), 3)
    alert(here, at(9, 15), 2, ack_after_min=2, false_alarm=False)
    alert(there, at(10, 5), 1, ack_after_min=1)
    # Inspections.
    for ent, day, status in [
        (here, date(2026, 10, 10), "completed"),
        (here, date(2026, 10, 20), "planned"),
        (here, date(2026, 10, 21), "cancelled"),
        (here, date(2026, 9, 10), "completed"),
        (there, date(2026, 10, 10), "completed"),
    ]:
        Inspection.objects.create(enterprise=ent, date=day, status=status)
    # Devices: `here` is connected since June; its second device came in October; `direct`'s is disabled.
    now = timezone.now()
    d1 = Device.objects.create(enterprise=here, name="网关1", host="127.0.0.1", status="online", last_seen=now)
    d2 = Device.objects.create(
        enterprise=here, name="网关2", host="127.0.0.2", status="offline", last_seen=now - timedelta(hours=1)
    )
    d3 = Device.objects.create(enterprise=direct, name="网关3", host="127.0.0.3", enabled=False)
    Device.objects.filter(pk=d1.pk).update(created_at=at(6, 1))
    Device.objects.filter(pk=d2.pk).update(created_at=at(10, 15))
    Device.objects.filter(pk=d3.pk).update(created_at=at(1, 1))
    # Credit.
    CreditScore.objects.create(enterprise=here, score=65, grade="C", computed_at=now)
    CreditScore.objects.create(enterprise=direct, score=95, grade="A", computed_at=now)
    return out


# --- comparing the snapshot reads with the live computation --------------------------------------

# Figures of the current state (online rate, timeliness, grade shares): live shows the state now, the
# snapshots the average of the samples taken in the period.
LIVE_ONLY = {"device_online_rate", "data_timeliness_rate", "high_risk_share", "credit_low_share"}


def by_key(result) -> dict:
    return {row["key"]: row for row in result["indicators"]}


def live_and_snapshot(region, user, start, end) -> tuple[dict, dict]:
    from enterprises.indicators import compute

    live = compute(region, start, end, user=user, today=TODAY, mode="live")
    snap = compute(region, start, end, user=user, today=TODAY, mode="snapshot")
    return live, snap


def assert_same_numbers(live, snap, *, with_samples: bool) -> None:
    """Same values, previous values, trends, children, distributions and previous period; the
    current-state figures too when ``with_samples`` (the snapshots hold a sample of today's state)."""
    assert snap["period"]["mode"] == "snapshot" and live["period"]["mode"] == "live"
    live_ind, snap_ind = by_key(live), by_key(snap)
    for key, row in live_ind.items():
        if key in LIVE_ONLY and not with_samples:
            continue
        assert (snap_ind[key]["value"], snap_ind[key]["previous"]) == (row["value"], row["previous"]), key
        assert snap["trend"][key] == live["trend"][key], key
    assert snap["children"] == live["children"]
    assert snap["distributions"] == live["distributions"]
    assert (snap["period"]["previous_start"], snap["period"]["previous_end"]) == (
        live["period"]["previous_start"],
        live["period"]["previous_end"],
    )
