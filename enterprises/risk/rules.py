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

# feature: (points per unit, maximum points)
RULES: dict[str, tuple[float, float]] = {
    # inherent risk
    "high_risk_sector": (8, 8),
    "chemicals": (4, 4),
    "major_hazard_level": (4, 16),  # grade 1 installation = 4 units
    "major_hazard_count": (2, 6),
    "no_standardisation": (4, 4),
    "scale": (1, 3),
    # hazards
    "hazards_open": (1.5, 9),
    "hazards_overdue": (4, 16),
    "major_hazards_open": (10, 20),
    "major_hazards_found": (6, 12),
    "hazards_closed_late": (2, 6),
    # alerts and their handling
    "alerts_level1": (8, 16),
    "alerts_level2": (2, 8),
    "alerts_late_ack": (2, 8),
    # credit and enforcement
    "credit_grade": (5, 15),  # A 0, B 5, C 10, D 15
    "penalties": (8, 16),
    "rectification_orders": (3, 9),
    "accidents": (15, 30),
    # monitoring
    "device_offline_rate": (10, 10),
    "data_untimely_rate": (6, 6),
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
