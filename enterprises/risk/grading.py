"""Grade every enterprise: the active model's probability, or the rules when there is no usable model.

Writes each enterprise's current profile (EnterpriseRisk), appends to the assessment history
(RiskAssessment) and keeps Enterprise.risk_grade (what filters and the draw use) in sync, all in
bulk statements.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone

from enterprises.choices import RiskMethod
from enterprises.risk import rules
from enterprises.risk.features import FEATURE_NAMES, extract_features

log = logging.getLogger(__name__)
BATCH = 2000


@dataclass
class GradingSummary:
    method: str
    model_version: int | None
    assessed_at: datetime
    graded: int = 0
    by_grade: dict = field(default_factory=dict)
    changed: int = 0
    note: str = ""

    def __str__(self):
        how = f"model v{self.model_version}" if self.model_version else "rules"
        grades = ", ".join(f"{k} {v}" for k, v in sorted(self.by_grade.items()))
        note = f" ({self.note})" if self.note else ""
        return f"graded {self.graded} enterprises with {how}{note}: {grades}; {self.changed} grade(s) changed"


def score_features(features, risk_model=None):
    """(method, probabilities or None, scores, grades, factors) for a feature frame."""
    from enterprises.risk.training import contributions, load_pipeline, top_factors

    if risk_model is not None:
        pipeline = load_pipeline(risk_model)
        names = list(risk_model.feature_names)
        x = features[names]
        p = pipeline.predict_proba(x)[:, 1]
        factors = top_factors(x, contributions(pipeline, x))
        scores = np.round(p * 100.0, 2)
        return RiskMethod.MODEL, p, scores, rules.grades(pd.Series(p), rules.PROBABILITY_THRESHOLDS), factors
    x = features[FEATURE_NAMES]
    pts = rules.points(x)
    scores = pts.sum(axis=1).clip(upper=100.0)
    return (
        RiskMethod.RULES,
        None,
        np.round(scores.to_numpy(), 2),
        rules.grades(scores, rules.SCORE_THRESHOLDS),
        rules.reasons(x, pts),
    )


def grade_enterprises(*, enterprises=None, as_of: datetime | None = None) -> GradingSummary:
    """(Re)grade ``enterprises`` (default: all not closed) at ``as_of`` (default: now)."""
    from enterprises.models import Enterprise, EnterpriseRisk, RiskAssessment, RiskModel
    from enterprises.risk.training import RiskModelIntegrityError

    as_of = as_of or timezone.now()
    features = extract_features(enterprises, as_of)
    active = RiskModel.objects.filter(is_active=True).first()
    note = ""
    try:
        method, p, scores, grades, factors = score_features(features, active)
    except (RiskModelIntegrityError, KeyError, ValueError) as exc:
        log.error("risk model v%s unusable, grading with the rules: %s", active.version if active else "-", exc)
        note = f"model v{active.version} unusable: {exc}"
        active = None
        method, p, scores, grades, factors = score_features(features, None)
    model = active if method == RiskMethod.MODEL else None
    ids = features.index.to_numpy()
    summary = GradingSummary(
        method=method, model_version=model.version if model else None, assessed_at=as_of, note=note
    )
    with transaction.atomic():
        for start in range(0, len(ids), BATCH):
            chunk = slice(start, start + BATCH)
            chunk_ids = [int(i) for i in ids[chunk]]
            previous = dict(Enterprise.objects.filter(pk__in=chunk_ids).values_list("pk", "risk_grade"))
            profiles, history = [], []
            for offset, eid in enumerate(chunk_ids):
                row = start + offset
                profiles.append(
                    EnterpriseRisk(
                        enterprise_id=eid,
                        score=float(scores[row]),
                        probability=float(p[row]) if p is not None else None,
                        grade=grades[row],
                        method=method,
                        model=model,
                        factors=factors[row],
                        assessed_at=as_of,
                    )
                )
                history.append(
                    RiskAssessment(
                        enterprise_id=eid, assessed_at=as_of, grade=grades[row], score=float(scores[row]), method=method
                    )
                )
            EnterpriseRisk.objects.bulk_create(
                profiles,
                update_conflicts=True,
                unique_fields=["enterprise"],
                update_fields=["score", "probability", "grade", "method", "model", "factors", "assessed_at"],
            )
            RiskAssessment.objects.bulk_create(history)
            by_grade: dict[str, list[int]] = {}
            for offset, eid in enumerate(chunk_ids):
                grade = grades[start + offset]
                if previous.get(eid) != grade:
                    by_grade.setdefault(grade, []).append(eid)
            for grade, changed in by_grade.items():
                summary.changed += Enterprise.objects.filter(pk__in=changed).update(risk_grade=grade)
    summary.graded = len(ids)
    summary.by_grade = dict(Counter(str(g) for g in grades))
    return summary
