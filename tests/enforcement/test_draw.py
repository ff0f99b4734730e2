"""The dual-random draw: hard constraints, caps and due enterprises, strata, fairness, verifiability."""

import json
from collections import Counter
from datetime import date, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from enforcement import drawing, services
from enforcement.choices import SENIOR_LEVELS, CreditGrade, DrawStatus, InspectionStatus, RiskKey
from enforcement.models import ConflictOfInterest, Draw, FrequencyRule, Inspection, InspectionPlan, InspectorProfile
from regulator.errors import InvalidInput

pytestmark = pytest.mark.django_db


def no_minimum(max_per_year=24):
    """Nobody is due: selection is purely random (for strata and fairness tests)."""
    FrequencyRule.objects.bulk_create(
        FrequencyRule(credit_grade=c, risk=r, min_per_year=0, max_per_year=max_per_year)
        for c in CreditGrade.values
        for r in RiskKey.values
    )


def levels():
    return dict(InspectorProfile.objects.values_list("user_id", "certification_level"))


def test_every_team_has_two_members_a_senior_and_no_conflict_over_many_seeds(county, plan):
    target = county.enterprises[3]
    for profile in county.profiles[:3]:
        ConflictOfInterest.objects.create(inspector=profile, enterprise=target, reason="亲属在该企业任职")
    snapshot = services.build_snapshot(plan)
    conflicted = {p.user_id for p in county.profiles[:3]}
    level = levels()
    for seed in range(200):
        result = drawing.compute_draw(f"{seed:032x}", snapshot)
        assert result["assignments"], "something must be drawn"
        for eid, team in result["assignments"]:
            assert len(team) == 2 == len(set(team))
            assert any(level[u] in SENIOR_LEVELS for u in team)
            if eid == target.pk:
                assert not conflicted & set(team)


def test_specialty_match_when_required(county, plan):
    plan.require_specialty = True
    plan.save()
    snapshot = services.build_snapshot(plan)
    specs = {p.user_id: {i.code for i in p.specialties.all()} for p in InspectorProfile.objects.all()}
    industry = {e.pk: e.industry for e in county.enterprises}

    def ancestry(ind):
        codes = set()
        while ind is not None:
            codes.add(ind.code)
            ind = ind.parent
        return codes

    for seed in range(50):
        result = drawing.compute_draw(f"{seed:032x}", snapshot)
        for eid, team in result["assignments"]:
            assert any(specs[u] & ancestry(industry[eid]) for u in team), (eid, team)


def test_no_inspector_returns_to_the_enterprise_inspected_last_time(county, plan):
    target = county.enterprises[0]
    last = Inspection.objects.create(enterprise=target, date=date(2025, 12, 1), status=InspectionStatus.COMPLETED)
    last_team = [county.profiles[0].user, county.profiles[4].user]
    last.team.set(last_team)
    plan.strata = [{"label": "全部", "ratio": "1"}]
    plan.save()
    snapshot = services.build_snapshot(plan)
    for seed in range(100):
        result = drawing.compute_draw(f"{seed:032x}", snapshot)
        team = dict(result["assignments"]).get(target.pk)
        assert team is not None
        assert not {u.pk for u in last_team} & set(team)


def test_no_identical_team_twice_in_a_row(county, plan):
    from tests.enforcement.conftest import make_inspector

    for i in range(4):
        make_inspector(f"more{i:03d}", county.region, "senior")
    first = services.draw_plan(plan=plan, user=county.head)
    first_teams = {tuple(t) for _e, t in json.loads(first.result)["assignments"]}
    second_plan = services.plan_create(
        user=county.head,
        name="第二季度",
        jurisdiction=county.region,
        period_start=date(2026, 4, 1),
        period_end=date(2026, 6, 30),
        strata=[{"label": "全部", "ratio": "1"}],
        require_specialty=False,
    )
    snapshot = services.build_snapshot(second_plan)
    assert {tuple(t) for t in snapshot["previous_teams"]} == first_teams
    for seed in range(100):
        result = drawing.compute_draw(f"{seed:032x}", snapshot)
        teams = {tuple(t) for _e, t in result["assignments"]}
        assert not teams & first_teams
        assert not result["unassigned"]


def test_capped_enterprises_are_skipped_and_due_ones_included(county, plan):
    no_minimum(max_per_year=1)
    capped = county.enterprises[1]
    Inspection.objects.create(enterprise=capped, date=date(2025, 11, 1), status=InspectionStatus.COMPLETED)
    due = county.enterprises[2]
    due.risk_grade = "red"
    due.save()
    FrequencyRule.objects.filter(credit_grade="B", risk="red").update(min_per_year=12, max_per_year=24)
    plan.strata = [{"label": "全部", "count": 0}]
    plan.save()
    for seed in range(20):
        result = drawing.compute_draw(f"{seed:032x}", services.build_snapshot(plan))
        selected = {e for e, _t in result["assignments"]}
        assert capped.pk in result["capped"] and capped.pk not in selected
        assert due.pk in result["due"] and due.pk in selected
    # The red enterprise inspected recently is no longer due.
    Inspection.objects.create(enterprise=due, date=plan.period_start - timedelta(days=1), status="completed")
    FrequencyRule.objects.filter(credit_grade="B", risk="red").update(min_per_year=2)
    result = drawing.compute_draw("ab" * 16, services.build_snapshot(plan))
    assert due.pk not in result["due"]


def test_strata_counts_and_ratios(county, plan):
    no_minimum()
    plan.strata = [
        {"label": "红", "risk": ["red"], "count": 2},
        {"label": "其余化工", "industry": "26", "ratio": "0.5"},
    ]
    plan.save()
    snapshot = services.build_snapshot(plan)
    reds = {e.pk for e in county.enterprises if e.risk_grade == "red"}
    chem_rest = {e.pk for e in county.enterprises if e.risk_grade != "red" and e.industry.code.startswith("26")}
    for seed in range(50):
        result = drawing.compute_draw(f"{seed:032x}", snapshot)
        selected = {e for e, _t in result["assignments"]} | {e for e, _r in result["unassigned"]}
        assert len(selected & reds) == 2
        assert len(selected & chem_rest) == -(-len(chem_rest) // 2)
        assert selected <= reds | chem_rest  # enterprises outside every stratum are not drawn


def test_workload_is_balanced(county, plan):
    no_minimum()
    plan.strata = [{"label": "全部", "ratio": "1"}]
    plan.save()
    result = drawing.compute_draw("11" * 16, services.build_snapshot(plan))
    load = Counter(u for _e, team in result["assignments"] for u in team)
    active = InspectorProfile.objects.count()
    counts = [load.get(p.user_id, 0) for p in InspectorProfile.objects.all()]
    assert len(counts) == active
    assert max(counts) - min(counts) <= 2


def test_selection_is_fair_chi_square():
    """Each member of a stratum is drawn equally often (chi-square over 3,000 draws)."""
    from scipy.stats import chisquare

    targets = [[i, "2614", "/32/", "blue", "A", 0, -1] for i in range(1, 41)]
    snapshot = {
        "plan": {
            "team_size": 2,
            "require_specialty": False,
            "default_ratio": "0.25",
            "strata": [],
            "period": ["2026-01-01", "2026-03-31"],
        },
        "frequency": [["A", "blue", 0, 24]],
        "industries": [["2614", ""]],
        "targets": targets,
        "inspectors": [[100 + k, "senior", "/32/", [], []] for k in range(6)],
        "last_team": [],
        "previous_teams": [],
    }
    hits = Counter()
    runs = 3000
    for seed in range(runs):
        result = drawing.compute_draw(f"{seed:032x}", snapshot)
        assert len(result["assignments"]) == 10
        hits.update(e for e, _t in result["assignments"])
    observed = [hits[i] for i in range(1, 41)]
    assert sum(observed) == runs * 10
    assert chisquare(observed).pvalue > 0.001
    # and the inspectors share the work evenly too
    load = Counter()
    for seed in range(300):
        for _e, team in drawing.compute_draw(f"{seed:032x}", snapshot)["assignments"]:
            load.update(team)
    assert chisquare(list(load.values())).pvalue > 0.001


def test_draw_is_reproducible_and_verifies(county, plan):
    draw = services.draw_plan(plan=plan, user=county.head)
    assert len(draw.seed) == 32
    assert drawing.compute_draw(draw.seed, json.loads(draw.snapshot)) == json.loads(draw.result)
    assert services.verify_draw(draw) == []
    call_command("verify_draw", str(draw.pk))
    # the inspections were created for the drawn teams
    assert draw.inspections.count() == draw.selected_count > 0


@pytest.mark.parametrize("tamper", ["snapshot", "snapshot_rehashed", "result", "result_rehashed", "seed", "inspection"])
def test_verify_draw_detects_tampering(county, plan, tamper):
    from regulator.crypto import sm3_hex

    draw = services.draw_plan(plan=plan, user=county.head)
    snapshot = json.loads(draw.snapshot)
    result = json.loads(draw.result)
    if tamper.startswith("snapshot"):
        victim = snapshot["inspectors"][0]
        victim[4] = []  # quietly drop a conflict of interest ... or change a level
        victim[1] = "junior" if victim[1] != "junior" else "senior"
        Draw.objects.filter(pk=draw.pk).update(snapshot=drawing.canonical_bytes(snapshot).decode())
        if tamper == "snapshot_rehashed":
            Draw.objects.filter(pk=draw.pk).update(snapshot_hash=sm3_hex(drawing.canonical_bytes(snapshot)))
    elif tamper.startswith("result"):
        eid, team = result["assignments"][0]
        others = [p.user_id for p in InspectorProfile.objects.exclude(user_id__in=team)]
        result["assignments"][0] = [eid, sorted([team[0], others[0]])]
        Draw.objects.filter(pk=draw.pk).update(result=drawing.canonical_bytes(result).decode())
        if tamper == "result_rehashed":
            Draw.objects.filter(pk=draw.pk).update(result_hash=drawing.sm3_of(result))
    elif tamper == "seed":
        Draw.objects.filter(pk=draw.pk).update(seed="0" * 32)
    else:
        ins = draw.inspections.first()
        ins.team.set([p.user for p in InspectorProfile.objects.all()[:2]] + [county.head])
    draw.refresh_from_db()
    assert services.verify_draw(draw)
    with pytest.raises(CommandError, match="does NOT verify"):
        call_command("verify_draw", str(draw.pk))


def test_redraw_keeps_the_earlier_draw_with_its_reason(county, plan):
    first = services.draw_plan(plan=plan, user=county.head)
    with pytest.raises(InvalidInput):
        services.draw_plan(plan=plan, user=county.head)
    second = services.draw_plan(plan=plan, user=county.head, reason="一名执法人员病假")
    first.refresh_from_db()
    assert first.status == DrawStatus.SUPERSEDED and first.superseded_reason == "一名执法人员病假"
    assert second.status == DrawStatus.CURRENT and second.sequence == 2
    assert not first.inspections.exclude(status=InspectionStatus.CANCELLED).exists()
    assert Draw.objects.filter(plan=plan).count() == 2
    assert services.verify_draw(first) == []  # a superseded draw still verifies


def test_inspector_cannot_draw_and_on_leave_inspectors_are_left_out(county, plan):
    from regulator.errors import DomainError

    with pytest.raises(DomainError):
        services.draw_plan(plan=plan, user=county.world.inspector)
    InspectorProfile.objects.filter(pk=county.profiles[1].pk).update(status="on_leave")
    draw = services.draw_plan(plan=plan, user=county.head)
    used = {u for _e, team in json.loads(draw.result)["assignments"] for u in team}
    assert county.profiles[1].user_id not in used


def test_draw_command(county, plan, capsys):
    call_command("draw_inspections", str(plan.pk))
    assert "snapshot SM3" in capsys.readouterr().out
    with pytest.raises(CommandError, match="原因"):
        call_command("draw_inspections", str(plan.pk))
    call_command("draw_inspections", str(plan.pk), "--reason", "名录库更新")
    assert Draw.objects.filter(plan=plan).count() == 2


def test_other_county_inspectors_and_enterprises_stay_out(county, plan):
    from tests.enforcement.conftest import make_inspector

    stranger = make_inspector("far001", county.world.regions["other_county"], "senior")
    snapshot = services.build_snapshot(plan)
    assert stranger.user_id not in {row[0] for row in snapshot["inspectors"]}
    assert county.world.there.pk not in {row[0] for row in snapshot["targets"]}


def test_drawn_inspectors_are_notified_after_commit(county, plan, django_capture_on_commit_callbacks):
    from regulator.models import Notification

    with django_capture_on_commit_callbacks(execute=True):
        draw = services.draw_plan(plan=plan, user=county.head)
    drawn = {u for _e, team in json.loads(draw.result)["assignments"] for u in team}
    notified = set(
        Notification.objects.filter(dedupe_key=f"enforcement.draw.{draw.pk}").values_list("user_id", flat=True)
    )
    assert notified == drawn
    services.draw_notify(draw=draw)  # idempotent
    assert Notification.objects.filter(dedupe_key=f"enforcement.draw.{draw.pk}").count() == len(drawn)


def test_draw_rolls_back_entirely_when_a_step_fails(county, plan, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services._DrawWriter, "send", broken)
    with pytest.raises(RuntimeError):
        services.draw_plan(plan=plan, user=county.head)
    plan.refresh_from_db()
    assert plan.status == "draft" and not Draw.objects.exists() and not Inspection.objects.filter(plan=plan).exists()


def test_closing_a_plan_cancels_unfinished_visits_and_forbids_redraws(county, plan):
    from regulator.errors import TransitionNotAllowed

    draw = services.draw_plan(plan=plan, user=county.head)
    services.plan_close(plan=plan, user=county.head)
    assert set(draw.inspections.values_list("status", flat=True)) == {"cancelled"}
    assert draw.inspections.first().cancel_reason == "计划结束时尚未检查"
    with pytest.raises(TransitionNotAllowed):
        services.draw_plan(plan=plan, user=county.head, reason="再抽一次")
    assert services.verify_draw(draw) == []


def test_team_leader_is_an_intermediate_or_senior_inspector(county, plan):
    draw = services.draw_plan(plan=plan, user=county.head)
    level = levels()
    for inspection in draw.inspections.all():
        assert level[inspection.leader_id] in SENIOR_LEVELS
        assert inspection.team.filter(pk=inspection.leader_id).exists()


def _pinned_snapshot():
    """A fixed snapshot exercising filters, caps, due enterprises, strata, conflicts and last teams."""
    risks = ["red", "orange", "yellow", "blue", "unrated"]
    credits = ["A", "B", "C", "D"]
    industries = [["C", ""], ["26", "C"], ["261", "26"], ["2614", "261"], ["34", "C"], ["341", "34"], ["3411", "341"]]
    targets = [
        [
            1000 + i,
            "9999" if i % 29 == 0 else ["2614", "3411", "261"][i % 3],  # 9999: nobody's specialty
            ["/32/3205/320581/1/", "/32/3205/320581/2/"][i % 2],
            risks[i % 5],
            credits[(i // 5) % 4],
            (i * 7) % 5,
            -1 if i % 11 == 0 else (i * 37) % 400,
        ]
        for i in range(300)
    ]
    inspectors = [
        [
            10 + k,
            ["senior", "junior", "intermediate", "junior"][k % 4],
            "/32/3205/320581/" if k % 5 else "/32/3205/320581/1/",
            [["26"], ["34"], ["2614", "34"]][k % 3],
            [1000 + 17 * k, 1001 + 17 * k] if k % 2 else [],
        ]
        for k in range(12)
    ]
    return {
        "v": drawing.SNAPSHOT_VERSION,
        "as_of": "2026-01-01",
        "plan": {
            "id": 7,
            "name": "固定快照",
            "jurisdiction": "320581",
            "period": ["2026-01-01", "2026-03-31"],
            "team_size": 2,
            "require_specialty": True,
            "default_ratio": "0.05",
            "industry_prefixes": [],
            "risk_filter": [],
            "credit_filter": [],
            "strata": [
                {"label": "高风险", "risk": ["orange", "red"], "credit": [], "industry": "", "ratio": "0.3"},
                {"label": "化工", "risk": [], "credit": [], "industry": "26", "count": 9},
                {"label": "其他", "risk": [], "credit": [], "industry": "", "ratio": "0.1"},
            ],
        },
        "frequency": sorted([c, r, 1 if r in ("red", "orange") else 0, 3 + (c == "A")] for c in credits for r in risks),
        "industries": sorted(industries),
        "targets": targets,
        "inspectors": inspectors,
        "last_team": [[1000 + i, [10 + i % 12, 10 + (i + 5) % 12]] for i in range(0, 300, 4)],
        "previous_teams": [[10, 13], [11, 14], [12, 17]],
    }


def test_the_draw_of_a_fixed_seed_and_snapshot_never_changes():
    """verify_draw recomputes stored draws: compute_draw and canonical_bytes must stay byte for byte."""
    snapshot = _pinned_snapshot()
    result = drawing.compute_draw("5eed" * 8, snapshot)
    assert len(result["assignments"]) > 30 and result["capped"] and result["due"] and result["unassigned"]
    assert drawing.sm3_of(snapshot) == "81f68414c79563b131c122b53abc5b1bd35e615fa04558a3fd4fd234e080e21c"
    assert drawing.sm3_of(result) == "3e977b849bc9bcf28659d632cd1c2c96ecae19be925ca34ed866019d2e9675ae"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the pipelined write is PostgreSQL only")
def test_a_failing_inspection_write_rolls_the_draw_back(county, plan, monkeypatch):
    """The inspections are written while the draw is computed (pipelined on PostgreSQL): an error of
    one of those writes is the draw's, however early it happens."""
    from django.db import IntegrityError

    compute = drawing.compute_draw

    def with_unknown_enterprise(seed, snapshot, *, on_selected, on_team):
        def also_unknown(selected):
            on_selected([*selected, 10**12])

        def first_team_twice(eid, team):
            on_team(eid, team)
            if not hasattr(first_team_twice, "done"):
                first_team_twice.done = True
                on_team(10**12, team)

        return compute(seed, snapshot, on_selected=also_unknown, on_team=first_team_twice)

    monkeypatch.setattr(services._DrawWriter, "FIRST_CHUNK", 1)  # sent at once, while the draw goes on
    monkeypatch.setattr(services._DrawWriter, "CHUNK", 1)
    monkeypatch.setattr(drawing, "compute_draw", with_unknown_enterprise)
    with pytest.raises(IntegrityError):
        services.draw_plan(plan=plan, user=county.head)
    plan.refresh_from_db()
    assert plan.status == "draft" and not Draw.objects.exists() and not Inspection.objects.filter(plan=plan).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the composite foreign key is PostgreSQL only")
@pytest.mark.parametrize("case", ["other_plans_draw", "plan_without_draw", "draw_without_plan"])
def test_an_inspection_plan_and_draw_are_checked_together(county, plan, case):
    """One foreign key (draw_id, plan_id) -> Draw (id, plan_id) MATCH FULL checks both (migration 0005)."""
    from django.db import IntegrityError, transaction

    draw = services.draw_plan(plan=plan, user=county.head)
    other = InspectionPlan.objects.create(
        name="另一计划", jurisdiction=plan.jurisdiction, period_start=plan.period_start, period_end=plan.period_end
    )
    values = {
        "other_plans_draw": {"plan": other, "draw": draw},
        "plan_without_draw": {"plan": plan, "draw": None},
        "draw_without_plan": {"plan": None, "draw": draw},
    }[case]
    with pytest.raises(IntegrityError), transaction.atomic():
        Inspection.objects.create(enterprise=county.enterprises[0], date=plan.period_start, **values)
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    Inspection.objects.create(enterprise=county.enterprises[0], date=plan.period_start, plan=plan, draw=draw)
    Inspection.objects.create(enterprise=county.enterprises[0], date=plan.period_start)
