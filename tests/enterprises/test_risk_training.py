"""The risk model learns from the demo's 18 months of history and beats the rules on held-out time;
it is versioned, its blob verified, and a worse model never silently replaces a better one."""

import importlib
import random
from datetime import datetime, timedelta
from io import StringIO

import pandas as pd
import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from enterprises.models import Enterprise, EnterpriseRisk, RiskAssessment, RiskModel
from enterprises.risk import training
from enterprises.risk.features import FEATURE_NAMES, LABEL, LABEL_DAYS, extract_snapshots
from regulator.management.commands.seed_demo import DEMO_APPS, DemoContext

NOW = timezone.make_aware(datetime(2026, 11, 29, 8, 0))


@pytest.fixture
def demo(db, settings):
    """seed_demo's app seeders with a fixed clock (the test must not depend on today's date)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    ctx = DemoContext(rng=random.Random(2026), seed=2026, enterprises=300, now=NOW, stdout=StringIO(), style=None)
    for app in DEMO_APPS:
        with transaction.atomic():
            importlib.import_module(f"{app}.demo").seed(ctx)
    return ctx


def test_split_is_on_held_out_time_without_overlapping_label_windows():
    split = training.plan_split(NOW, NOW - timedelta(days=540))
    assert len(split.test_as_ofs) == training.TEST_SNAPSHOTS
    assert split.test_as_ofs[-1] + timedelta(days=LABEL_DAYS) <= NOW  # test labels are complete
    assert len(split.train_as_ofs) >= training.MIN_TRAIN_SNAPSHOTS
    # No training label window reaches into the test period.
    assert all(s + timedelta(days=LABEL_DAYS) <= split.test_start for s in split.train_as_ofs)
    assert all(timezone.localtime(s).day == 1 for s in split.train_as_ofs + split.test_as_ofs)


def test_too_little_history_keeps_the_rules(db):
    outcome = training.train_risk_model(as_of=NOW)
    assert outcome.status == "not_enough_history"
    assert "rule" in outcome.message
    assert not RiskModel.objects.exists()


def test_demo_trains_a_model_that_beats_the_rules_and_grades_with_it(demo):
    model = RiskModel.objects.get()
    m = model.metrics
    out = demo.stdout.getvalue()
    assert "risk: model v1 stored and activated" in out
    assert model.is_active and model.version == 1 and model.feature_names == FEATURE_NAMES
    # Held-out time: the model ranks better than the rules on the same test snapshots.
    assert m["auc"] > m["rules"]["auc"] and m["auc"] > 0.65
    assert m["precision_at_k"] >= m["rules"]["precision_at_k"]
    assert m["precision_at_k"] > m["base_rate_test"] * 2  # the top 10% are far riskier than average
    assert 0 < m["brier"] < m["base_rate_test"]  # better than predicting the base rate for everyone
    assert m["test_positives"] >= training.MIN_TEST_POSITIVES and m["train_positives"] >= training.MIN_TRAIN_POSITIVES
    assert model.train_end + timedelta(days=LABEL_DAYS) <= model.test_start
    # Calibration: the mean probability on the test set is close to the observed rate.
    assert abs(m["mean_probability"] - m["base_rate_test"]) < 0.05
    # Everyone not closed was graded by the model, with probabilities and signed reasons.
    graded = Enterprise.objects.exclude(operating_status="closed")
    assert EnterpriseRisk.objects.filter(method="model", model=model).count() == graded.count()
    assert RiskAssessment.objects.count() == graded.count()
    profile = EnterpriseRisk.objects.order_by("-probability").select_related("enterprise").first()
    assert profile.grade == profile.enterprise.risk_grade == "red"
    assert 0 < profile.probability < 1 and profile.score == pytest.approx(profile.probability * 100, abs=0.01)
    assert len(profile.factors) == training.TOP_FACTORS
    assert {"key", "label", "value", "contribution"} <= set(profile.factors[0])
    assert abs(profile.factors[0]["contribution"]) >= abs(profile.factors[-1]["contribution"])
    assert set(Enterprise.objects.values_list("risk_grade", flat=True)) >= {"red", "orange", "yellow", "blue"}


def test_a_worse_model_is_refused_unless_forced(demo):
    """A model that knows the test labels (fitted on them) is active; an honest one cannot beat it."""
    v1 = RiskModel.objects.get()
    split = training.plan_split(NOW, training.earliest_history())
    data = extract_snapshots(split.train_as_ofs + split.test_as_ofs)
    test = data[data["as_of"] >= pd.Timestamp(split.test_start)]
    oracle = training.build_pipeline().fit(test[FEATURE_NAMES], test[LABEL])
    blob, digest = training.dump_pipeline(oracle)
    better = RiskModel.objects.create(
        version=2, algorithm="oracle", feature_names=FEATURE_NAMES, blob=blob, digest=digest
    )
    training.activate_model(better)

    outcome = training.train_risk_model(as_of=NOW)
    assert outcome.status == "stored"
    assert "worse than the active model v2" in outcome.message and "--force" in outcome.message
    v3 = RiskModel.objects.get(version=3)
    assert not v3.is_active and RiskModel.objects.get(is_active=True).pk == better.pk
    assert outcome.metrics["active_on_this_test"]["auc"] > outcome.metrics["auc"]

    dry = training.train_risk_model(as_of=NOW, dry_run=True)
    assert dry.status == "dry_run" and "would refuse" in dry.message
    assert RiskModel.objects.count() == 3  # a dry run stores nothing

    forced = training.train_risk_model(as_of=NOW, force=True)
    assert forced.status == "activated" and "forced" in forced.message
    assert RiskModel.objects.get(is_active=True).version == 4
    assert not RiskModel.objects.get(pk=v1.pk).is_active


def test_tampered_blob_is_never_unpickled_and_grading_falls_back_to_rules(demo):
    from enterprises.risk.grading import grade_enterprises

    model = RiskModel.objects.get(is_active=True)
    RiskModel.objects.filter(pk=model.pk).update(blob=bytes(model.blob) + b"x")
    model.refresh_from_db()
    with pytest.raises(training.RiskModelIntegrityError):
        training.load_pipeline(model)
    summary = grade_enterprises(as_of=NOW)
    assert summary.method == "rules" and "digest" in summary.note
    assert not EnterpriseRisk.objects.filter(method="model").exists()


def test_train_command_prints_metrics_against_the_rules(demo):
    out = StringIO()
    call_command("train_risk_model", "--dry-run", "--as-of", "2026-11-29", stdout=out)
    text = out.getvalue()
    assert "AUC" in text and "precision@10%" in text and "rules" in text and "active v1" in text
    assert "dry run, nothing stored" in text
    assert RiskModel.objects.count() == 1
