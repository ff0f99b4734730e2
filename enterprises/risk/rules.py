"""The transparent rule-based risk grade: points per factor, a 0-100 score, a colour.

It grades when there is no usable model (not enough history) and is the baseline every model
must beat on held-out time. Each rule is (feature, points per unit, cap): the points of an
enterprise are min(value * per_unit, cap), summed and capped at 100.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from enterprises.choices import RiskGrade
from enterprises.risk.features import feature_label

# feature: (points per unit, maximum points). Modelled on the usual "inherent risk x dynamic
# modifiers" scoring of the grading guidelines: the inherent part (sector, major hazard
# installations, standardisation, scale) can give about 60 points, behaviour the rest.
RULES: dict[str, tuple[float, float]] = {
    # inherent risk
    "high_risk_sector": (15, 15),
    "chemicals": (5, 5),
    "major_hazard_level": (5, 20),  # grade 1 installation = 4 units
    "major_hazard_count": (3, 9),
    "no_standardisation": (6, 6),
    "scale": (2, 6),
    # hazards
    "hazards_open": (1, 5),
    "hazards_overdue": (4, 12),
    "major_hazards_open": (8, 16),
    # alerts and their handling
    "alerts_level1": (8, 16),
    "alerts_late_ack": (2, 6),
    # credit and enforcement
    "credit_grade": (4, 12),  # A 0, B 4, C 8, D 12
    "penalties": (8, 16),
    "rectification_orders": (2, 6),
    "accidents": (15, 30),
    # monitoring
    "device_offline_rate": (5, 5),
    "data_untimely_rate": (4, 4),
}

# Score thresholds of the rule grade (score >= threshold).
SCORE_THRESHOLDS = ((RiskGrade.RED, 60.0), (RiskGrade.ORANGE, 40.0), (RiskGrade.YELLOW, 20.0))
# Probability thresholds of the model grade: P(serious event within 90 days) >= threshold.
PROBABILITY_THRESHOLDS = ((RiskGrade.RED, 0.40), (RiskGrade.ORANGE, 0.20), (RiskGrade.YELLOW, 0.08))


def points(features: pd.DataFrame) -> pd.DataFrame:
    """Points of every rule for every enterprise (same index as ``features``)."""
    out = pd.DataFrame(index=features.index)
    for key, (per_unit, cap) in RULES.items():
        out[key] = np.minimum(features[key].to_numpy(dtype=float) * per_unit, cap)
    return out


def scores(features: pd.DataFrame) -> pd.Series:
    return points(features).sum(axis=1).clip(upper=100.0).rename("score")


def grade_for_score(score: float) -> str:
    for grade, threshold in SCORE_THRESHOLDS:
        if score >= threshold:
            return grade
    return RiskGrade.BLUE


def grade_for_probability(probability: float) -> str:
    for grade, threshold in PROBABILITY_THRESHOLDS:
        if probability >= threshold:
            return grade
    return RiskGrade.BLUE


def grades(values: pd.Series, thresholds) -> np.ndarray:
    """Vectorised grade_for_*: the first threshold a value reaches, else blue."""
    result = np.full(len(values), RiskGrade.BLUE.value, dtype=object)
    for grade, threshold in reversed(thresholds):
        result[values.to_numpy() >= threshold] = grade.value
    return result


def reasons(features: pd.DataFrame, pts: pd.DataFrame | None = None, top: int = 8) -> list[list[dict]]:
    """Per enterprise, the rules that gave points, largest first: {"key","label","value","contribution"}."""
    pts = points(features) if pts is None else pts
    keys = list(pts.columns)
    labels = {k: feature_label(k) for k in keys}
    values = features[keys].to_numpy(dtype=float)
    contributions = pts.to_numpy(dtype=float)
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :top]
    out = []
    for row, cols in enumerate(order):
        out.append(
            [
                {
                    "key": keys[c],
                    "label": labels[keys[c]],
                    "value": round(float(values[row, c]), 3),
                    "contribution": round(float(contributions[row, c]), 2),
                }
                for c in cols
                if contributions[row, c] > 0
            ]
        )
    return out
