"""Safety credit: rules, traceable history, the dishonesty list with repair, and the link to the draw."""

from datetime import date, timedelta

import pytest
from django.core.management import call_command

from enforcement import services
from enforcement.choices import CreditEventKind, ListingStatus
from enforcement.models import CreditRule, CreditScore, CreditScoreChange, DishonestyListing
from regulator.errors import DomainError

pytestmark = pytest.mark.django_db

TODAY = date(2026, 6, 1)


def score_of(ent):
    return CreditScore.objects.get(enterprise=ent)


def test_defaults_and_standardisation(world):
    world.here.standardisation_level = "1"
    world.here.save()
    services.credit_recompute(today=TODAY)
    assert CreditRule.objects.count() >= 10
    assert (score_of(world.here).score, score_of(world.here).grade) == (90, "A")
    assert (score_of(world.there).score, score_of(world.there).grade) == (80, "B")


def test_accident_lowers_the_score_and_the_change_names_event_and_rule(world):
    services.credit_recompute(today=TODAY)
    event = services.credit_record_event(
        enterprise=world.here,
        kind=CreditEventKind.ACCIDENT_GENERAL,
        occurred_on=TODAY - timedelta(days=3),
        description="一人受伤",
        source_key="accident:1",
    )
    services.credit_recompute(today=TODAY)
    score = score_of(world.here)
    assert (score.score, score.grade) == (65, "C")
    change = CreditScoreChange.objects.filter(enterprise=world.here).latest("id")
    assert (change.old_score, change.new_score, change.old_grade, change.new_grade) == (80, 65, "B", "C")
    assert change.added == [
        {
            "rule": "R-ACC-1",
            "event": event.pk,
            "kind": "accident_general",
            "points": -15,
            "date": str(event.occurred_on),
        }
    ]
    # nothing changed: no new history row
    count = CreditScoreChange.objects.count()
    services.credit_recompute(today=TODAY)
    assert CreditScoreChange.objects.count() == count
    # three years later the accident lapses and the change says so
    services.credit_recompute(today=TODAY + timedelta(days=3 * 365))
    lapse = CreditScoreChange.objects.filter(enterprise=world.here).latest("id")
    assert lapse.new_score == 80 and lapse.removed[0]["event"] == event.pk


def test_bonuses_are_capped_and_rules_are_configurable(world):
    for i in range(20):
        services.credit_record_event(
            enterprise=world.here, kind=CreditEventKind.RECTIFIED_ON_TIME, occurred_on=TODAY, source_key=f"r{i}"
        )
    services.credit_recompute(today=TODAY)
    assert score_of(world.here).score == 90  # 80 + capped 10
    services.credit_record_event(enterprise=world.here, kind="penalty", occurred_on=TODAY, source_key="p1")
    CreditRule.objects.filter(event_kind="penalty").update(points=-30)
    services.credit_recompute(today=TODAY)
    assert score_of(world.here).score == 60


def test_dishonesty_list_forces_grade_d_and_repair_after_twelve_months(world, county):
    listing = services.listing_add(
        enterprise=world.here, reason="发生较大事故且瞒报", user=county.head, listed_on=TODAY - timedelta(days=100)
    )
    assert listing.expires_on == date(2029, 2, 21)
    assert score_of(world.here).grade == "D"
    with pytest.raises(DomainError, match="12个月"):
        services.repair_apply(listing=listing, user=world.enterprise_user, statement="已整改", today=TODAY)
    application = services.repair_apply(
        listing=listing,
        user=world.enterprise_user,
        statement="已完成全部整改并通过复查",
        today=TODAY + timedelta(days=300),
    )
    with pytest.raises(DomainError):
        services.repair_decide(application=application, user=world.inspector, approve=True, note="同意")
    services.repair_decide(application=application, user=county.head, approve=True, note="经核查整改到位，同意修复")
    listing.refresh_from_db()
    assert listing.status == ListingStatus.REPAIRED and listing.removed_on
    assert score_of(world.here).grade != "D"


def test_listing_expires_after_its_term(world, county):
    listing = services.listing_add(
        enterprise=world.there, reason="拒不执行停产决定", user=county.head, listed_on=date(2020, 1, 1)
    )
    services.credit_recompute(today=date(2023, 1, 2))
    listing.refresh_from_db()
    assert listing.status == ListingStatus.EXPIRED
    assert DishonestyListing.objects.filter(status="listed").count() == 0


def test_overdue_major_hazard_from_the_hazard_workflow(world):
    hazards = pytest.importorskip("hazards.services")
    from hazards.models import Hazard

    hazard = hazards.hazard_report(
        enterprise=world.here, user=world.inspector, source="inspection", description="储罐区防火堤破损", grade="major"
    )
    Hazard.objects.filter(pk=hazard.pk).update(status="rectifying", due_date=TODAY - timedelta(days=5))
    services.credit_recompute(today=TODAY)
    score = score_of(world.here)
    assert score.score == 70
    assert score.basis[0]["rule"] == "R-MHO"
    services.credit_recompute(today=TODAY)  # harvesting twice records the event once
    assert world.here.credit_events.filter(kind="major_hazard_overdue").count() == 1


def test_grade_feeds_the_draw_frequency(county, plan):
    ent = county.enterprises[4]
    services.credit_record_event(enterprise=ent, kind="accident_larger", occurred_on=TODAY, source_key="acc-x")
    services.credit_recompute(today=TODAY)
    assert score_of(ent).grade == "D"
    snapshot = services.build_snapshot(plan)
    row = next(r for r in snapshot["targets"] if r[0] == ent.pk)
    assert row[4] == "D"
    assert ["D", row[3], 12, 24] in snapshot["frequency"]


def test_score_credit_command(world, capsys):
    call_command("score_credit", "--date", "2026-06-01")
    assert "enterprises=3" in capsys.readouterr().out
    from enforcement.tasks import score_credit

    assert score_credit.run()["enterprises"] == 3


def test_three_consecutive_monitoring_anomalies_make_one_event(world):
    pytest.importorskip("alerts.models")
    from datetime import datetime

    from django.utils import timezone as tz

    from alerts.models import Alert

    def alert(day, hour, kind="stale"):
        at = tz.make_aware(datetime(2026, 5, day, hour))
        return Alert.objects.create(
            enterprise=world.here, kind=kind, level=2, state="normal", message="数据中断", raised_at=at, ack_due_at=at
        )

    alert(1, 8), alert(2, 8), alert(3, 8)  # three in a row: one event
    alert(4, 8)  # a fourth starts a new run
    alert(20, 8), alert(21, 8)  # only two, after a gap
    alert(5, 9, kind="high")  # a process alarm is not a data anomaly
    services.credit_recompute(today=TODAY)
    events = list(world.here.credit_events.filter(kind="monitoring_anomaly"))
    assert len(events) == 1 and events[0].occurred_on == date(2026, 5, 3)
    assert score_of(world.here).score == 75
    services.credit_recompute(today=TODAY)
    assert world.here.credit_events.filter(kind="monitoring_anomaly").count() == 1
