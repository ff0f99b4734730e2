"""Train, evaluate, version and activate the risk model (scikit-learn logistic regression).

Monthly snapshots (as_of = local month starts) are labelled with "a serious event within 90
days". The test set is the latest snapshots whose label window is complete; no training
snapshot's label window reaches into the test period, so the evaluation is on held-out time.
The model is a standardised logistic regression on log1p features: its probabilities are
calibrated by construction (log-loss fit; the Brier score and a reliability table are stored to
show it), and coef x standardised value explains every single score.

The fitted pipeline is pickled with its SM3 digest; ``load_pipeline`` verifies the digest
before unpickling. A new model only replaces the active one when it is at least as good on the
new held-out set (and better than the rules), unless forced.
"""

from __future__ import annotations

import hmac
import io
import pickle
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone
from sklearn.base import BaseEstimator, ClassifierMixin

from enterprises.risk import rules
from enterprises.risk.features import FEATURE_NAMES, LABEL, LABEL_DAYS, WINDOW_DAYS, extract_snapshots, month_starts

ALGORITHM = "nonneg_logistic_regression"
TEST_SNAPSHOTS = 3  # the latest label-complete month starts
MAX_TRAIN_SNAPSHOTS = 24
# "Enough history": below these the rules grade and no model is trained.
MIN_TRAIN_SNAPSHOTS = 3
MIN_TRAIN_POSITIVES = 30
MIN_TEST_POSITIVES = 10
TOP_K_SHARE = 0.10  # precision among the top 10% of each test snapshot
TOP_FACTORS = 5
# A new model may be this much worse in AUC than the active one (noise) and still replace it.
AUC_TOLERANCE = 0.0


class RiskModelIntegrityError(Exception):
    """The stored blob does not match its digest: it is never unpickled."""


@dataclass
class Split:
    train_as_ofs: list[datetime]
    test_as_ofs: list[datetime]

    @property
    def test_start(self) -> datetime | None:
        return self.test_as_ofs[0] if self.test_as_ofs else None

    @property
    def test_end(self) -> datetime | None:
        return self.test_as_ofs[-1] + timedelta(days=LABEL_DAYS) if self.test_as_ofs else None


@dataclass
class TrainingOutcome:
    status: str  # "activated", "stored", "dry_run", "not_enough_history"
    message: str
    metrics: dict = field(default_factory=dict)
    model: object = None  # RiskModel when stored
    timings: dict = field(default_factory=dict)


def digest(blob: bytes) -> str:
    from regulator.crypto import sm3_hex

    return sm3_hex(blob)


def dump_pipeline(pipeline) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    pickle.dump(pipeline, buffer, protocol=pickle.HIGHEST_PROTOCOL)
    blob = buffer.getvalue()
    return blob, digest(blob)


def load_pipeline(risk_model):
    """The fitted pipeline of a stored RiskModel, only after its SM3 digest matched."""
    blob = bytes(risk_model.blob)
    if not hmac.compare_digest(digest(blob), risk_model.digest):
        raise RiskModelIntegrityError(f"risk model v{risk_model.version}: SM3 digest mismatch, refusing to load")
    return pickle.loads(blob)  # noqa: S301 (verified digest of a blob this application wrote)


class NonNegativeLogisticRegression(ClassifierMixin, BaseEstimator):
    """L2 logistic regression whose coefficients are all >= 0.

    Every feature is oriented so that more means riskier; correlated counts (alert levels,
    installations and substances) otherwise get offsetting signs, and a dossier that says "more
    level-1 alerts lowered the risk" is wrong to a regulator. Features that come out negative are
    dropped (coefficient 0) and the rest refitted until every coefficient is non-negative.
    """

    def __init__(self, C: float = 0.05, max_iter: int = 2000):
        self.C = C
        self.max_iter = max_iter

    def fit(self, X, y):
        from sklearn.linear_model import LogisticRegression

        X = np.asarray(X, dtype=float)
        keep = np.ones(X.shape[1], dtype=bool)
        while True:
            lr = LogisticRegression(C=self.C, max_iter=self.max_iter).fit(X[:, keep], y)
            coef = lr.coef_[0]
            if (coef >= 0).all() or keep.sum() <= 1:
                break
            keep[np.flatnonzero(keep)[coef < 0]] = False
        self.coef_ = np.zeros((1, X.shape[1]))
        self.coef_[0, keep] = np.maximum(coef, 0)
        self.intercept_ = lr.intercept_
        self.classes_ = lr.classes_
        self.n_features_in_ = X.shape[1]
        return self

    def decision_function(self, X):
        return np.asarray(X, dtype=float) @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X):
        from scipy.special import expit

        p = expit(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


def build_pipeline():
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    return Pipeline(
        [
            ("log", FunctionTransformer(np.log1p, feature_names_out="one-to-one")),
            ("scale", StandardScaler()),
            ("lr", NonNegativeLogisticRegression(C=0.05)),  # strong L2: few positives, correlated counts
        ]
    )


def contributions(pipeline, features: pd.DataFrame) -> np.ndarray:
    """Per row and feature, coef x standardised value: its push on the log-odds."""
    z = pipeline[:-1].transform(features)
    return np.asarray(z) * pipeline[-1].coef_[0]


def top_factors(features: pd.DataFrame, contrib: np.ndarray, top: int = TOP_FACTORS) -> list[list[dict]]:
    from enterprises.risk.features import feature_label

    keys = list(features.columns)
    labels = {k: feature_label(k) for k in keys}
    values = features.to_numpy(dtype=float)
    order = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :top]
    return [
        [
            {
                "key": keys[c],
                "label": labels[keys[c]],
                "value": round(float(values[row, c]), 3),
                "contribution": round(float(contrib[row, c]), 3),
            }
            for c in cols
        ]
        for row, cols in enumerate(order)
    ]


def earliest_history(enterprises=None) -> datetime | None:
    """The first behaviour record (hazard, inspection, credit change, alert) in the database."""
    from alerts.models import Alert
    from enforcement.models import CreditScoreChange, Inspection
    from hazards.models import Hazard

    candidates = [
        Hazard.objects.order_by("reported_at").values_list("reported_at", flat=True).first(),
        Alert.objects.order_by("raised_at").values_list("raised_at", flat=True).first(),
        CreditScoreChange.objects.order_by("at").values_list("at", flat=True).first(),
    ]
    day = Inspection.objects.filter(status="completed").order_by("date").values_list("date", flat=True).first()
    if day is not None:
        candidates.append(timezone.make_aware(datetime.combine(day, datetime.min.time())))
    candidates = [c for c in candidates if c is not None]
    return min(candidates) if candidates else None


def plan_split(now: datetime, history_start: datetime | None) -> Split:
    """Month starts for training and test; empty lists when history is too short."""
    if history_start is None:
        return Split([], [])
    # Snapshots need some behaviour behind them: a third of the window at least.
    first = history_start + timedelta(days=WINDOW_DAYS // 3)
    complete = month_starts(first, now - timedelta(days=LABEL_DAYS))
    if len(complete) < TEST_SNAPSHOTS + 1:
        return Split([], complete[-TEST_SNAPSHOTS:])
    test = complete[-TEST_SNAPSHOTS:]
    train = [s for s in complete if s + timedelta(days=LABEL_DAYS) <= test[0]][-MAX_TRAIN_SNAPSHOTS:]
    return Split(train, test)


def precision_at_k(frame: pd.DataFrame, score_column: str, share: float = TOP_K_SHARE) -> float:
    """Mean over snapshots of the positive share among each snapshot's top ``share`` by score."""
    values = []
    for _as_of, group in frame.groupby("as_of", sort=True):
        k = max(1, int(round(len(group) * share)))
        top = group.sort_values(score_column, ascending=False, kind="stable").head(k)
        values.append(float(top[LABEL].mean()))
    return float(np.mean(values)) if values else float("nan")


def _auc(y, score) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return None
    return float(roc_auc_score(y, score))


def evaluate(pipeline, test: pd.DataFrame, feature_names: list[str]) -> dict:
    from sklearn.metrics import brier_score_loss, log_loss

    y = test[LABEL].to_numpy()
    p = pipeline.predict_proba(test[feature_names])[:, 1]
    scored = test[["as_of", LABEL]].assign(p=p)
    bins = pd.cut(p, [0, 0.05, 0.1, 0.2, 0.4, 1.0], include_lowest=True)
    reliability = [
        {
            "bin": str(b),
            "n": int(len(g)),
            "predicted": round(float(g["p"].mean()), 4),
            "observed": round(float(g[LABEL].mean()), 4),
        }
        for b, g in scored.groupby(bins, observed=True)
    ]
    return {
        "auc": _auc(y, p),
        "precision_at_k": precision_at_k(scored, "p"),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "mean_probability": float(p.mean()),
        "reliability": reliability,
    }


def evaluate_rules(test: pd.DataFrame) -> dict:
    s = rules.scores(test[FEATURE_NAMES]).to_numpy()
    scored = test[["as_of", LABEL]].assign(s=s)
    return {"auc": _auc(test[LABEL].to_numpy(), s), "precision_at_k": precision_at_k(scored, "s")}


def _fmt(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.3f}"


def train_risk_model(
    *, as_of: datetime | None = None, force: bool = False, dry_run: bool = False, enterprises=None
) -> TrainingOutcome:
    """Train on monthly snapshots, evaluate on held-out time, store and (if good enough) activate."""
    from enterprises.models import RiskModel

    now = as_of or timezone.now()
    timings = {}
    started = time.perf_counter()
    split = plan_split(now, earliest_history(enterprises))
    if len(split.train_as_ofs) < MIN_TRAIN_SNAPSHOTS or not split.test_as_ofs:
        return TrainingOutcome(
            "not_enough_history",
            f"not enough history: {len(split.train_as_ofs)} training snapshot(s) with a complete, non-overlapping "
            f"label window (need {MIN_TRAIN_SNAPSHOTS}) and {len(split.test_as_ofs)} test snapshot(s); "
            "the rule-based grade stays in use",
        )
    data = extract_snapshots(split.train_as_ofs + split.test_as_ofs, enterprises)
    timings["features_s"] = time.perf_counter() - started
    test_mask = data["as_of"] >= pd.Timestamp(split.test_start)
    train, test = data[~test_mask], data[test_mask]
    train_pos, test_pos = int(train[LABEL].sum()), int(test[LABEL].sum())
    metrics = {
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "train_positives": train_pos,
        "test_positives": test_pos,
        "base_rate_test": float(test[LABEL].mean()) if len(test) else None,
        "top_k_share": TOP_K_SHARE,
        "train_snapshots": [s.isoformat() for s in split.train_as_ofs],
        "test_snapshots": [s.isoformat() for s in split.test_as_ofs],
    }
    if train_pos < MIN_TRAIN_POSITIVES or test_pos < MIN_TEST_POSITIVES or train_pos == len(train):
        return TrainingOutcome(
            "not_enough_history",
            f"not enough serious events to learn from: {train_pos} in training (need {MIN_TRAIN_POSITIVES}), "
            f"{test_pos} in test (need {MIN_TEST_POSITIVES}); the rule-based grade stays in use",
            metrics,
            timings=timings,
        )
    fit_started = time.perf_counter()
    pipeline = build_pipeline()
    pipeline.fit(train[FEATURE_NAMES], train[LABEL])
    timings["fit_s"] = time.perf_counter() - fit_started
    metrics.update(evaluate(pipeline, test, FEATURE_NAMES))
    metrics["rules"] = evaluate_rules(test)
    metrics["coefficients"] = {k: round(float(c), 4) for k, c in zip(FEATURE_NAMES, pipeline[-1].coef_[0], strict=True)}

    active = RiskModel.objects.filter(is_active=True).first()
    reasons_to_refuse = []
    rules_auc = metrics["rules"]["auc"]
    if rules_auc is not None and metrics["auc"] is not None and metrics["auc"] <= rules_auc:
        reasons_to_refuse.append(f"AUC {_fmt(metrics['auc'])} does not beat the rule baseline's {_fmt(rules_auc)}")
    if active is not None:
        try:
            active_pipeline = load_pipeline(active)
            names = list(active.feature_names)
            active_metrics = evaluate(active_pipeline, test, names)
            metrics["active_on_this_test"] = {"version": active.version, **active_metrics}
            if (
                active_metrics["auc"] is not None
                and metrics["auc"] is not None
                and metrics["auc"] < active_metrics["auc"] - AUC_TOLERANCE
            ):
                reasons_to_refuse.append(
                    f"AUC {_fmt(metrics['auc'])} is worse than the active model v{active.version}'s "
                    f"{_fmt(active_metrics['auc'])} on the same held-out snapshots"
                )
        except (RiskModelIntegrityError, KeyError, ValueError, pickle.UnpicklingError) as exc:
            metrics["active_on_this_test"] = {"version": active.version, "error": str(exc)}
    timings["total_s"] = time.perf_counter() - started
    metrics["timings"] = {k: round(v, 3) for k, v in timings.items()}
    summary = (
        f"model AUC {_fmt(metrics['auc'])}, precision@{int(TOP_K_SHARE * 100)}% {_fmt(metrics['precision_at_k'])}, "
        f"Brier {_fmt(metrics['brier'])}; rules AUC {_fmt(rules_auc)}, "
        f"precision@{int(TOP_K_SHARE * 100)}% {_fmt(metrics['rules']['precision_at_k'])}"
    )
    if dry_run:
        verdict = "would refuse to activate: " + "; ".join(reasons_to_refuse) if reasons_to_refuse else "would activate"
        return TrainingOutcome("dry_run", f"dry run, nothing stored ({verdict}). {summary}", metrics, timings=timings)

    blob, sm3 = dump_pipeline(pipeline)
    activate = force or not reasons_to_refuse
    with transaction.atomic():
        version = (
            RiskModel.objects.select_for_update().order_by("-version").values_list("version", flat=True).first() or 0
        ) + 1
        model = RiskModel.objects.create(
            version=version,
            algorithm=ALGORITHM,
            feature_names=FEATURE_NAMES,
            metrics=metrics,
            train_start=split.train_as_ofs[0],
            train_end=split.train_as_ofs[-1],
            test_start=split.test_start,
            test_end=split.test_end,
            n_train=len(train),
            n_test=len(test),
            positives=train_pos + test_pos,
            blob=blob,
            digest=sm3,
            note=("forced: " if force and reasons_to_refuse else "") + "; ".join(reasons_to_refuse),
        )
        if activate:
            activate_model(model)
    if activate:
        forced = f" (forced despite: {'; '.join(reasons_to_refuse)})" if reasons_to_refuse else ""
        return TrainingOutcome(
            "activated", f"model v{version} stored and activated{forced}. {summary}", metrics, model, timings
        )
    return TrainingOutcome(
        "stored",
        f"model v{version} stored but NOT activated: {'; '.join(reasons_to_refuse)} (use --force to activate anyway). "
        + summary,
        metrics,
        model,
        timings,
    )


def activate_model(model) -> None:
    """Make ``model`` the only active one (the partial unique constraint allows one)."""
    from enterprises.models import RiskModel

    with transaction.atomic():
        RiskModel.objects.filter(is_active=True).exclude(pk=model.pk).update(is_active=False)
        model.is_active = True
        model.activated_at = timezone.now()
        model.save(update_fields=["is_active", "activated_at"])
