"""Choices of enforcement and credit, the workflow transition maps and the default tables."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class CertificationLevel(models.TextChoices):
    JUNIOR = "junior", _("初级")
    INTERMEDIATE = "intermediate", _("中级")
    SENIOR = "senior", _("高级")


SENIOR_LEVELS = frozenset({CertificationLevel.INTERMEDIATE, CertificationLevel.SENIOR})


class InspectorStatus(models.TextChoices):
    ACTIVE = "active", _("在岗")
    ON_LEAVE = "on_leave", _("休假/借调")


class RiskKey(models.TextChoices):
    """Enterprise.risk_grade as a stratum; an empty grade is its own stratum "unrated"."""

    RED = "red", _("重大风险（红）")
    ORANGE = "orange", _("较大风险（橙）")
    YELLOW = "yellow", _("一般风险（黄）")
    BLUE = "blue", _("低风险（蓝）")
    UNRATED = "unrated", _("未评级")


class CreditGrade(models.TextChoices):
    A = "A", _("A级（守信）")
    B = "B", _("B级（基本守信）")
    C = "C", _("C级（失信风险）")
    D = "D", _("D级（严重失信）")


class PlanStatus(models.TextChoices):
    DRAFT = "draft", _("草稿")
    DRAWN = "drawn", _("已抽取")
    CLOSED = "closed", _("已结束")


PLAN_TRANSITIONS: dict[str, set[str]] = {
    PlanStatus.DRAFT: {PlanStatus.DRAWN},
    PlanStatus.DRAWN: {PlanStatus.DRAWN, PlanStatus.CLOSED},  # drawn -> drawn is a re-draw
    PlanStatus.CLOSED: set(),
}


class DrawStatus(models.TextChoices):
    CURRENT = "current", _("有效")
    SUPERSEDED = "superseded", _("已被重新抽取替代")


class InspectionStatus(models.TextChoices):
    PLANNED = "planned", _("待检查")
    COMPLETED = "completed", _("已完成")
    CANCELLED = "cancelled", _("已取消")


INSPECTION_TRANSITIONS: dict[str, set[str]] = {
    InspectionStatus.PLANNED: {InspectionStatus.COMPLETED, InspectionStatus.CANCELLED},
    InspectionStatus.COMPLETED: set(),
    InspectionStatus.CANCELLED: set(),
}


class Outcome(models.TextChoices):
    NO_PROBLEM = "no_problem", _("未发现问题")
    RECTIFICATION = "rectification", _("责令限期整改")
    PENALTY = "penalty", _("行政处罚")
    SUSPENSION = "suspension", _("责令停产停业整顿")


class ChecklistResult(models.TextChoices):
    PASS = "pass", _("符合")
    FAIL = "fail", _("不符合")
    NA = "na", _("不适用")


class FindingGrade(models.TextChoices):
    ORDINARY = "ordinary", _("一般隐患")
    MAJOR = "major", _("重大隐患")


class DocumentType(models.TextChoices):
    ONSITE_RECORD = "onsite_record", _("现场检查记录")
    RECTIFICATION_ORDER = "rectification_order", _("责令限期整改指令书")
    REINSPECTION_OPINION = "reinspection_opinion", _("整改复查意见书")
    PENALTY_DECISION = "penalty_decision", _("行政处罚决定书")


# The type word in a document number: 常应急责改〔2026〕12号.
DOCUMENT_ABBREVIATIONS = {
    DocumentType.ONSITE_RECORD: "检记",
    DocumentType.RECTIFICATION_ORDER: "责改",
    DocumentType.REINSPECTION_OPINION: "复查",
    DocumentType.PENALTY_DECISION: "罚",
}


class CreditEventKind(models.TextChoices):
    ACCIDENT_GENERAL = "accident_general", _("一般生产安全事故")
    ACCIDENT_LARGER = "accident_larger", _("较大生产安全事故")
    ACCIDENT_MAJOR = "accident_major", _("重大生产安全事故")
    ACCIDENT_EXTRAORDINARY = "accident_extraordinary", _("特别重大生产安全事故")
    PENALTY = "penalty", _("行政处罚")
    SUSPENSION = "suspension", _("责令停产停业整顿")
    MAJOR_HAZARD_OVERDUE = "major_hazard_overdue", _("重大隐患逾期未整改")
    MAJOR_HAZARD_CONCEALED = "major_hazard_concealed", _("隐瞒重大隐患")
    MONITORING_ANOMALY = "monitoring_anomaly", _("监测数据连续三次异常")
    RECTIFIED_ON_TIME = "rectified_on_time", _("隐患按期整改")
    INSPECTION_CLEAN = "inspection_clean", _("执法检查未发现问题")


class ListingStatus(models.TextChoices):
    LISTED = "listed", _("在列")
    REPAIRED = "repaired", _("已信用修复")
    EXPIRED = "expired", _("期满移出")


class RepairStatus(models.TextChoices):
    PENDING = "pending", _("待审核")
    APPROVED = "approved", _("已批准")
    REJECTED = "rejected", _("已驳回")


REPAIR_TRANSITIONS: dict[str, set[str]] = {
    RepairStatus.PENDING: {RepairStatus.APPROVED, RepairStatus.REJECTED},
    RepairStatus.APPROVED: set(),
    RepairStatus.REJECTED: set(),
}

# Frequency (inspections per year) by credit grade x risk: (minimum, maximum).
# In the spirit of the seed: high risk or grade D monthly, low risk quarterly or less.
# "unrated" enterprises are treated like yellow until they are graded.
_BASE_BY_RISK = {
    RiskKey.RED: (12, 24),
    RiskKey.ORANGE: (4, 12),
    RiskKey.YELLOW: (1, 4),
    RiskKey.BLUE: (0, 4),
    RiskKey.UNRATED: (1, 4),
}


def _default_frequency() -> dict[tuple[str, str], tuple[int, int]]:
    table: dict[tuple[str, str], tuple[int, int]] = {}
    for risk, (low, high) in _BASE_BY_RISK.items():
        table[(CreditGrade.A, risk)] = (max(low // 2, 0 if risk == RiskKey.BLUE else 1), high // 2 or 1)
        table[(CreditGrade.B, risk)] = (low, high)
        table[(CreditGrade.C, risk)] = (min(max(low * 2, 1), 12), min(high * 2, 24))
        table[(CreditGrade.D, risk)] = (12, 24)  # grade D: monthly whatever the risk
    return table


DEFAULT_FREQUENCY = _default_frequency()

# The default credit rule table: (code, event kind, points, validity in days, description).
DEFAULT_CREDIT_RULES = [
    ("R-ACC-1", CreditEventKind.ACCIDENT_GENERAL, -15, 3 * 365, _("发生一般生产安全事故")),
    ("R-ACC-2", CreditEventKind.ACCIDENT_LARGER, -30, 3 * 365, _("发生较大生产安全事故")),
    ("R-ACC-3", CreditEventKind.ACCIDENT_MAJOR, -50, 5 * 365, _("发生重大生产安全事故")),
    ("R-ACC-4", CreditEventKind.ACCIDENT_EXTRAORDINARY, -80, 5 * 365, _("发生特别重大生产安全事故")),
    ("R-PEN", CreditEventKind.PENALTY, -8, 2 * 365, _("受到安全生产行政处罚")),
    ("R-SUS", CreditEventKind.SUSPENSION, -15, 2 * 365, _("被责令停产停业整顿")),
    ("R-MHO", CreditEventKind.MAJOR_HAZARD_OVERDUE, -10, 365, _("重大隐患逾期未整改")),
    ("R-MHC", CreditEventKind.MAJOR_HAZARD_CONCEALED, -20, 2 * 365, _("隐瞒不报重大隐患")),
    ("R-MON", CreditEventKind.MONITORING_ANOMALY, -5, 365, _("监测监控数据连续三次异常")),
    ("R-RECT", CreditEventKind.RECTIFIED_ON_TIME, 1, 365, _("隐患按期整改闭环")),
    ("R-CLEAN", CreditEventKind.INSPECTION_CLEAN, 2, 365, _("执法检查未发现问题")),
]

CREDIT_BASE_SCORE = 80
# Standing adjustment from the standardisation level (not an event): 一级/二级/三级.
STANDARDISATION_POINTS = {"1": 10, "2": 6, "3": 3, "": 0}
# Positive points from events are capped so good behaviour cannot wash out an accident.
CREDIT_BONUS_CAP = 10
CREDIT_GRADE_FLOORS = [(90, CreditGrade.A), (75, CreditGrade.B), (60, CreditGrade.C), (0, CreditGrade.D)]


def grade_for_score(score: int) -> str:
    for floor, grade in CREDIT_GRADE_FLOORS:
        if score >= floor:
            return grade
    return CreditGrade.D
