"""Indicators the dashboard reuses: found / closed, rectification and on-time rates, average
rectification days, overdue count, by region, industry, source and month, scoped to the user."""

from datetime import timedelta

from django.utils import timezone

from hazards import selectors, services
from hazards.models import Hazard


def test_indicator_totals_and_scope(world, people, make_hazard):
    closed = make_hazard("closed")
    Hazard.objects.filter(pk=closed.pk).update(reported_at=closed.closed_at - timedelta(days=4))
    make_hazard("rectifying")
    make_hazard("dismissed")
    services.hazard_report(enterprise=world.there, user=None, source="device_alert", description="x")
    ind = selectors.hazard_indicators(world.inspector)
    assert (ind.found, ind.closed, ind.open, ind.overdue) == (3, 1, 1, 0)
    assert ind.rectification_rate == 0.5 and ind.on_time_rate == 1.0
    assert ind.avg_rectification_days == 4.0
    assert selectors.hazard_indicators(world.city_admin).found == 4
    assert selectors.hazard_indicators(world.other_inspector).found == 1
    assert selectors.hazard_indicators(world.auditor).found == 0


def test_late_closure_lowers_the_on_time_rate(world, people, make_hazard, time_machine):
    hazard = make_hazard("rectifying")
    time_machine.move_to(timezone.now() + timedelta(days=20))
    ind = selectors.hazard_indicators(world.inspector)
    assert ind.overdue == 1
    services.hazard_submit_rectification(hazard=hazard, user=people["officer"], note="迟了")
    services.hazard_verify(hazard=hazard, user=people["manager"])
    ind = selectors.hazard_indicators(world.inspector)
    assert ind.on_time_rate == 0.0 and ind.overdue == 0


def test_indicators_by_dimension(world, people, make_hazard):
    make_hazard("closed")
    make_hazard("reported", source="third_party")
    services.hazard_report(enterprise=world.here_no_park, user=world.inspector, source="inspection", description="x")
    by_region = {row["label"]: row["found"] for row in selectors.hazard_indicators_by(world.inspector, "region")}
    assert by_region == {"虞山街道": 2, "常熟市": 1}
    by_source = {row["key"]: row["found"] for row in selectors.hazard_indicators_by(world.inspector, "source")}
    assert by_source == {"self_check": 1, "third_party": 1, "inspection": 1}
    by_month = selectors.hazard_indicators_by(world.inspector, "month")
    assert [row["key"] for row in by_month] == [timezone.localtime().strftime("%Y-%m")]
    assert by_month[0]["found"] == 3 and by_month[0]["closed"] == 1
    by_industry = selectors.hazard_indicators_by(world.inspector, "industry")
    assert by_industry[0]["found"] == 3 and by_industry[0]["label"] == world.here.industry.name


def test_overdue_checklists_for_never_run_and_late_enterprises(world, people, checklist, time_machine):
    time_machine.move_to(timezone.now() + timedelta(days=31))
    rows = selectors.overdue_checklists(world.inspector)
    assert {r["enterprise"].pk for r in rows} == {world.here.pk, world.here_no_park.pk}
    run = services.checklist_start_run(template=checklist, enterprise=world.here, user=people["officer"])
    for item in checklist.items.all():
        services.checklist_answer(run=run, item=item, user=people["officer"], result="pass")
    services.checklist_complete_run(run=run, user=people["officer"])
    assert {r["enterprise"].pk for r in selectors.overdue_checklists(world.inspector)} == {world.here_no_park.pk}
    status = selectors.checklist_status_for_enterprise(world.here)
    assert status[0]["next_due"] == timezone.localdate() + timedelta(days=30) and not status[0]["overdue"]
