"""The rule grade, the grading run (profile, history, Enterprise.risk_grade), the dossier section, scoping."""

from datetime import timedelta
from io import StringIO

import pandas as pd
import pytest
from django.core.management import call_command
from django.utils import timezone

from enterprises.models import Enterprise, EnterpriseRisk, RiskAssessment
from enterprises.risk import rules
from enterprises.risk.factors import FEATURE_NAMES
from enterprises.risk.grading import grade_enterprises
from tests import factories as f


def _features(**values):
    row = dict.fromkeys(FEATURE_NAMES, 0.0)
    row.update(values)
    return pd.DataFrame([row], index=[1])


def test_rule_points_are_capped_per_factor_and_in_total():
    quiet = _features()
    assert rules.scores(quiet).iloc[0] == 0
    risky = _features(high_risk_sector=1, major_hazard_level=4, hazards_overdue=10, accidents=1)
    pts = rules.points(risky).iloc[0]
    assert pts["high_risk_sector"] == 15 and pts["major_hazard_level"] == 20
    assert pts["hazards_overdue"] == 12  # 10 x 4 capped at 12
    assert rules.scores(risky).iloc[0] == 15 + 20 + 12 + 15
    everything = _features(**dict.fromkeys(FEATURE_NAMES, 100))
    assert rules.scores(everything).iloc[0] == 100


@pytest.mark.parametrize(
    ("score", "grade"), [(0, "blue"), (19.9, "blue"), (20, "yellow"), (40, "orange"), (59.9, "orange"), (60, "red")]
)
def test_rule_grade_thresholds(score, grade):
    assert rules.grade_for_score(score) == grade
    assert list(rules.grades(pd.Series([score]), rules.SCORE_THRESHOLDS)) == [grade]


def test_rule_reasons_list_each_factor_with_its_points_largest_first():
    risky = _features(high_risk_sector=1, hazards_overdue=2, credit_grade=3)
    (reasons,) = rules.reasons(risky)
    assert [r["key"] for r in reasons] == ["high_risk_sector", "credit_grade", "hazards_overdue"]
    assert reasons[0] == {"key": "high_risk_sector", "label": "高危行业", "value": 1.0, "contribution": 15.0}
    assert reasons[2]["value"] == 2.0 and reasons[2]["contribution"] == 8.0


def _overdue_hazards(ent, n):
    from hazards.models import Hazard

    now = timezone.now()
    for _ in range(n):
        Hazard.objects.create(
            enterprise=ent,
            description="逾期隐患",
            source="self_check",
            reported_at=now - timedelta(days=40),
            status="rectifying",
            due_date=timezone.localdate() - timedelta(days=5),
        )


@pytest.fixture
def graded(world):
    Enterprise.objects.filter(pk=world.here.pk).update(high_risk_sector="chemicals", risk_grade="blue")
    _overdue_hazards(world.here, 3)
    from enforcement.models import Inspection

    Inspection.objects.create(
        enterprise=world.here, date=timezone.localdate() - timedelta(days=20), status="completed", outcome="penalty"
    )
    Enterprise.objects.filter(pk=world.there.pk).update(risk_grade="red")
    return world


def test_grading_with_rules_writes_profiles_history_and_enterprise_grades(graded, django_assert_max_num_queries):
    world = graded
    with django_assert_max_num_queries(30):
        summary = grade_enterprises()
    assert summary.method == "rules" and summary.graded == 3
    here = EnterpriseRisk.objects.get(enterprise=world.here)
    # chemicals 15 + 5, 3 open hazards 3, 3 overdue 12, one penalty 8, credit B 4, no standardisation 6, small 2
    assert here.score == pytest.approx(55.0)
    assert here.grade == "orange" and here.method == "rules" and here.probability is None and here.model is None
    assert here.factors[0]["key"] == "high_risk_sector" and here.factors[0]["contribution"] == 15.0
    world.here.refresh_from_db()
    world.there.refresh_from_db()
    assert world.here.risk_grade == "orange"
    assert world.there.risk_grade == EnterpriseRisk.objects.get(enterprise=world.there).grade != "red"
    assert RiskAssessment.objects.filter(enterprise=world.here).count() == 1

    # A second run overwrites the profile and appends to the history.
    _overdue_hazards(world.here, 3)
    grade_enterprises()
    assert EnterpriseRisk.objects.filter(enterprise=world.here).count() == 1
    assert EnterpriseRisk.objects.get(enterprise=world.here).score == pytest.approx(
        55.0 + 2 + 0
    )  # open 5 cap, overdue cap
    assert list(
        RiskAssessment.objects.filter(enterprise=world.here).order_by("assessed_at").values_list("score", flat=True)
    ) == [pytest.approx(55.0), pytest.approx(57.0)]


def test_grading_skips_closed_enterprises(world):
    closed = f.enterprise(world.regions["county"], operating_status="closed", risk_grade="red")
    grade_enterprises()
    assert not EnterpriseRisk.objects.filter(enterprise=closed).exists()
    closed.refresh_from_db()
    assert closed.risk_grade == "red"


def test_grade_risk_command_reports_what_it_did(graded):
    out = StringIO()
    call_command("grade_risk", stdout=out)
    assert "graded 3 enterprises with rules" in out.getvalue()
    assert EnterpriseRisk.objects.count() == 3


def test_train_command_says_when_history_is_too_short(graded):
    out = StringIO()
    call_command("train_risk_model", stdout=out)
    assert "not enough history" in out.getvalue() and "rule-based grade stays in use" in out.getvalue()


def test_dossier_page_shows_the_risk_section_with_reasons(graded, client):
    grade_enterprises()
    client.force_login(graded.inspector)
    page = client.get(f"/enterprises/{graded.here.pk}/").content.decode()
    assert "风险画像" in page and "较大风险（橙）" in page and "规则" in page
    assert "逾期未整改隐患数" in page and "+12.0" in page


def test_dossier_page_says_when_not_assessed_yet(world, client):
    client.force_login(world.inspector)
    page = client.get(f"/enterprises/{world.here.pk}/").content.decode()
    assert "风险画像" in page and "尚未进行风险评估" in page


def test_dossier_api_has_the_risk_section(graded):
    from rest_framework.test import APIClient

    grade_enterprises()
    api = APIClient()
    api.force_authenticate(graded.inspector)
    body = api.get(f"/api/v1/enterprises/{graded.here.pk}/dossier/").json()
    risk = body["sections"]["risk"]["data"]
    assert risk["assessed"] and risk["grade"] == "orange" and risk["method"] == "rules"
    assert risk["score"] == 55.0 and risk["probability"] is None
    assert risk["factors"][0]["key"] == "high_risk_sector" and risk["factors"][0]["direction"] == "up"
    assert len(risk["history"]) == 1


def test_enterprise_user_sees_only_its_own_risk_profile(graded, client):
    from rest_framework.test import APIClient

    grade_enterprises()
    api = APIClient()
    api.force_authenticate(graded.enterprise_user)
    own = api.get(f"/api/v1/enterprises/{graded.here.pk}/dossier/")
    assert own.status_code == 200 and own.json()["sections"]["risk"]["data"]["grade"] == "orange"
    assert api.get(f"/api/v1/enterprises/{graded.there.pk}/dossier/").status_code == 404
    client.force_login(graded.enterprise_user)
    assert client.get(f"/enterprises/{graded.there.pk}/").status_code == 404
    # An inspector of the other county does not see this county's profile either.
    api.force_authenticate(graded.other_inspector)
    assert api.get(f"/api/v1/enterprises/{graded.here.pk}/dossier/").status_code == 404


def test_risk_grade_filter_of_the_registry_uses_the_graded_value(graded):
    from rest_framework.test import APIClient

    grade_enterprises()
    api = APIClient()
    api.force_authenticate(graded.city_admin)
    body = api.get("/api/v1/enterprises/", {"risk_grade": "orange"}).json()
    rows = body["results"] if isinstance(body, dict) else body
    assert [r["id"] for r in rows] == [graded.here.pk]


def _stored_model(version=1):
    from enterprises.models import RiskModel
    from enterprises.risk import training

    frame = pd.DataFrame([dict.fromkeys(FEATURE_NAMES, float(i % 2)) for i in range(20)])
    pipeline = training.build_pipeline().fit(frame, [i % 2 for i in range(20)])
    blob, digest = training.dump_pipeline(pipeline)
    return RiskModel.objects.create(
        version=version, algorithm=training.ALGORITHM, feature_names=FEATURE_NAMES, blob=blob, digest=digest
    )


def test_admin_lists_models_and_activates_one_after_verifying_it(world, browser, staff_inspector):
    from enterprises.models import RiskModel

    model = _stored_model()
    client = browser(staff_inspector)
    page = client.get("/admin/enterprises/riskmodel/")
    assert page.status_code == 200 and "nonneg_logistic_regression" in page.content.decode()
    response = client.post(
        "/admin/enterprises/riskmodel/", {"action": "activate", "_selected_action": [model.pk]}, follow=True
    )
    assert "模型 v1 已启用" in response.content.decode()
    assert RiskModel.objects.get(pk=model.pk).is_active
    # A blob that does not match its digest is never activated.
    tampered = _stored_model(version=2)
    RiskModel.objects.filter(pk=tampered.pk).update(digest="0" * 64)
    response = client.post(
        "/admin/enterprises/riskmodel/", {"action": "activate", "_selected_action": [tampered.pk]}, follow=True
    )
    assert "digest mismatch" in response.content.decode()
    assert RiskModel.objects.get(is_active=True).pk == model.pk


def test_beat_tasks_train_then_grade(graded, settings):
    from enterprises import tasks

    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"enterprises.tasks.train_risk_model", "enterprises.tasks.grade_risk"} <= schedule
    assert tasks.train_risk_model.delay().get()["status"] == "not_enough_history"
    result = tasks.grade_risk.delay().get()
    assert result["method"] == "rules" and result["graded"] == 3
    assert EnterpriseRisk.objects.count() == 3
