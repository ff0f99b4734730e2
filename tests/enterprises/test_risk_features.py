"""Risk features on a small hand-made history: exact values, labels, and no look-ahead."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from enterprises.models import Enterprise, HazardousSubstance, MajorHazardInstallation
from enterprises.risk.features import FEATURE_NAMES, extract_features, extract_snapshots, month_starts
from tests import factories as f

AS_OF = timezone.make_aware(datetime(2026, 6, 1))
DAY = AS_OF.date()


def _hazard(ent, reported, *, major=False, closed=None, due=None, on_time=None):
    from hazards.models import Hazard

    return Hazard.objects.create(
        enterprise=ent,
        description="test",
        source="self_check",
        grade="major" if major else "ordinary",
        reported_at=reported,
        found_at=reported,
        status="closed" if closed else "rectifying",
        closed_at=closed,
        closed_on_time=on_time,
        deadline=due,
        due_date=due,
    )


def _alert(ent, level, raised, *, ack_minutes=10, acked=None):
    from alerts.models import Alert

    return Alert.objects.create(
        enterprise=ent,
        kind="high_high" if level == 1 else "high",
        level=level,
        state="normal",
        message="test",
        raised_at=raised,
        ack_due_at=raised + timedelta(minutes=ack_minutes),
        acknowledged_at=acked,
    )


def _inspection(ent, day, outcome):
    from enforcement.models import Inspection

    return Inspection.objects.create(enterprise=ent, date=day, status="completed", outcome=outcome)


def _credit(ent, at, grade):
    from enforcement.models import CreditScoreChange

    return CreditScoreChange.objects.create(enterprise=ent, at=at, new_score=80, new_grade=grade)


@pytest.fixture
def history(world):
    """world.here has a bit of everything around AS_OF; world.here_no_park has nothing."""
    from devices.models import Channel, Device, DeviceStatusChange
    from enforcement.models import CreditEvent
    from hazards.models import HazardTransition

    ent = world.here
    Enterprise.objects.filter(pk=ent.pk).update(
        high_risk_sector="chemicals", scale="medium", employees=99, is_key=True, standardisation_level=""
    )
    inst = MajorHazardInstallation.objects.create(enterprise=ent, name="罐区", grade=2, people_within_500m=10)
    HazardousSubstance.objects.create(
        installation=inst,
        name="液氯",
        substance_class="specific",
        actual_quantity=Decimal("10"),
        critical_quantity=Decimal("5"),
        beta=Decimal("2"),
    )
    _hazard(ent, AS_OF - timedelta(days=10), due=DAY - timedelta(days=2))  # open, overdue
    _hazard(ent, AS_OF - timedelta(days=20), major=True, closed=AS_OF + timedelta(days=5), due=DAY + timedelta(days=10))
    _hazard(  # found before the window, closed late inside it
        ent,
        AS_OF - timedelta(days=200),
        closed=AS_OF - timedelta(days=100),
        due=DAY - timedelta(days=120),
        on_time=False,
    )
    dismissed = _hazard(ent, AS_OF - timedelta(days=30))
    dismissed.status = "dismissed"
    dismissed.save(update_fields=["status"])
    HazardTransition.objects.create(
        hazard=dismissed, action="dismiss", from_status="reported", to_status="dismissed", at=AS_OF - timedelta(days=25)
    )
    _hazard(ent, AS_OF + timedelta(days=1), major=True)  # the future: label only

    _alert(ent, 1, AS_OF - timedelta(days=5))  # never acknowledged: late
    _alert(ent, 2, AS_OF - timedelta(days=3), acked=AS_OF - timedelta(days=3) + timedelta(minutes=2))
    _alert(ent, 3, AS_OF - timedelta(hours=1), ack_minutes=120)  # not yet due at AS_OF
    _alert(ent, 1, AS_OF - timedelta(days=200))  # outside the window

    _credit(ent, AS_OF - timedelta(days=100), "C")
    _credit(ent, AS_OF - timedelta(days=10), "B")
    _credit(ent, AS_OF + timedelta(days=1), "D")

    _inspection(ent, DAY - timedelta(days=30), "penalty")
    _inspection(ent, DAY - timedelta(days=60), "rectification")
    _inspection(ent, DAY - timedelta(days=1), "no_problem")
    _inspection(ent, DAY, "penalty")  # on the as_of day: after as_of (label)
    CreditEvent.objects.create(
        enterprise=ent, kind="accident_general", occurred_on=DAY - timedelta(days=40), source_key="t:1"
    )

    device = Device.objects.create(enterprise=ent, name="网关", host="127.0.0.1", port=15020)
    Device.objects.filter(pk=device.pk).update(created_at=AS_OF - timedelta(days=300))
    Channel.objects.create(device=device, tag="GT-1", name="可燃气体", address=0)
    DeviceStatusChange.objects.create(device=device, at=AS_OF - timedelta(days=300), old="unknown", new="online")
    DeviceStatusChange.objects.create(device=device, at=AS_OF - timedelta(days=2), old="online", new="offline")
    return world


def _row(frame, ent):
    return frame.loc[ent.pk].to_dict()


def test_features_have_exact_values_from_behaviour_before_as_of(history):
    frame = extract_features(Enterprise.objects.all(), AS_OF)
    assert list(frame.columns) == FEATURE_NAMES
    assert set(frame.index) == {history.here.pk, history.here_no_park.pk, history.there.pk}
    row = _row(frame, history.here)
    expected = {
        "high_risk_sector": 1,
        "chemicals": 1,
        "major_hazard_count": 1,
        "major_hazard_level": 3,  # grade 2 -> 3 (grade 1 would be 4)
        "substance_count": 1,
        "scale": 2,
        "is_key": 1,
        "no_standardisation": 1,
        "hazards_found": 3,  # 10, 20 and 30 days before; not the 200-day-old one, not tomorrow's
        "hazards_found_recent": 3,  # the 30-day window includes its first instant
        "major_hazards_found": 1,
        "hazards_open": 2,  # the dismissed one is not open, the major one closes only after as_of
        "hazards_overdue": 1,
        "major_hazards_open": 1,
        "hazards_closed_late": 1,
        "alerts_level1": 1,
        "alerts_level2": 1,
        "alerts_other": 1,
        "alerts_late_ack": 1,
        "credit_grade": 1,  # B, the grade in force at as_of (not C before, not D after)
        "inspections": 3,
        "penalties": 1,
        "rectification_orders": 1,
        "accidents": 1,
        "has_devices": 1,
        "device_offline_rate": 1.0,
        "data_untimely_rate": 1.0,  # one channel, no data in the last day
    }
    for key, value in expected.items():
        assert row[key] == pytest.approx(value), key
    assert row["log_employees"] == pytest.approx(4.6051702)  # log1p(99)
    quiet = _row(frame, history.here_no_park)
    assert all(quiet[k] == 0 for k in FEATURE_NAMES if k not in ("credit_grade", "scale", "no_standardisation"))
    assert quiet["credit_grade"] == 1  # no credit record: treated as B


def test_labels_are_serious_events_in_the_next_90_days(history):
    frame = extract_snapshots([AS_OF], Enterprise.objects.all()).set_index("enterprise_id")
    assert frame.loc[history.here.pk, "label"] == 1
    assert frame.loc[history.here_no_park.pk, "label"] == 0
    # 90 days later, tomorrow's major hazard and the as_of-day penalty are in the past.
    later = extract_snapshots([AS_OF + timedelta(days=91)], Enterprise.objects.all()).set_index("enterprise_id")
    assert later.loc[history.here.pk, "label"] == 0


def test_no_leakage_future_events_do_not_change_features(history):
    """Everything that happens at or after as_of may change labels, never features."""
    from alerts.models import Alert
    from devices.models import Device, DeviceStatusChange
    from hazards.models import Hazard

    before = extract_features(Enterprise.objects.all(), AS_OF)
    quiet, here = history.here_no_park, history.here
    _hazard(quiet, AS_OF, major=True)
    _hazard(quiet, AS_OF + timedelta(days=3), due=DAY)
    _alert(quiet, 1, AS_OF + timedelta(minutes=1))
    _inspection(quiet, DAY, "penalty")
    _inspection(quiet, DAY + timedelta(days=5), "rectification")
    _credit(quiet, AS_OF, "D")
    _credit(here, AS_OF + timedelta(seconds=1), "A")
    # Later fates of earlier rows: the open hazard is closed, the late alert acknowledged, the gateway back.
    Hazard.objects.filter(enterprise=here, closed_at__isnull=True, status="rectifying").update(
        status="closed", closed_at=AS_OF + timedelta(hours=2), closed_on_time=False
    )
    Alert.objects.filter(enterprise=here, acknowledged_at__isnull=True).update(
        acknowledged_at=AS_OF + timedelta(hours=1)
    )
    device = Device.objects.get(enterprise=here)
    DeviceStatusChange.objects.create(device=device, at=AS_OF, old="offline", new="online")
    # An extension approved after as_of moves today's deadline, not the one that applied then.
    from hazards.models import ExtensionRequest

    overdue = Hazard.objects.get(enterprise=here, due_date=DAY - timedelta(days=2))
    ExtensionRequest.objects.create(
        hazard=overdue,
        old_deadline=overdue.due_date,
        new_deadline=DAY + timedelta(days=30),
        reason="设备采购周期长",
        status="approved",
        decided_at=AS_OF + timedelta(hours=3),
    )
    Hazard.objects.filter(pk=overdue.pk).update(due_date=DAY + timedelta(days=30))
    after = extract_features(Enterprise.objects.all(), AS_OF)
    assert after.equals(before)
    labels = extract_snapshots([AS_OF], Enterprise.objects.all()).set_index("enterprise_id")["label"]
    assert labels[quiet.pk] == 1  # ...while the label sees them


def test_snapshots_stack_one_row_per_enterprise_and_month(history):
    as_ofs = month_starts(AS_OF - timedelta(days=61), AS_OF)
    assert [timezone.localtime(m).date().isoformat() for m in as_ofs] == ["2026-04-01", "2026-05-01", "2026-06-01"]
    frame = extract_snapshots(as_ofs, Enterprise.objects.all())
    assert len(frame) == 3 * 3
    june = frame[frame["as_of"] == AS_OF].set_index("enterprise_id")
    assert june.loc[history.here.pk, "hazards_found"] == 3
    april = frame[frame["as_of"] == as_ofs[0]].set_index("enterprise_id")
    # In April only the 200-day-old hazard was found (within April's window); the others came later.
    assert april.loc[history.here.pk, "hazards_found"] == 1
    assert april.loc[history.here.pk, "hazards_open"] == 0


def test_feature_extraction_uses_a_fixed_number_of_queries(history, django_assert_max_num_queries):
    for n in range(30):
        f.enterprise(history.regions["county"], name=f"批量企业{n}")
    with django_assert_max_num_queries(16):
        frame = extract_features(Enterprise.objects.all(), AS_OF)
    assert len(frame) == 33
