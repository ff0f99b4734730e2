"""Hazard workflow states, the allowed-transition map, and the other choices of the hazards app."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class HazardStatus(models.TextChoices):
    REPORTED = "reported", _("待确认")
    CONFIRMED = "confirmed", _("已确认")
    DISMISSED = "dismissed", _("已驳回")
    RECTIFYING = "rectifying", _("整改中")
    SUBMITTED = "submitted", _("待验收")
    CLOSED = "closed", _("已销号")


class HazardGrade(models.TextChoices):
    ORDINARY = "ordinary", _("一般隐患")
    MAJOR = "major", _("重大隐患")


class MajorLevel(models.IntegerChoices):
    LEVEL1 = 1, _("一级")
    LEVEL2 = 2, _("二级")
    LEVEL3 = 3, _("三级")


class HazardSource(models.TextChoices):
    SELF_CHECK = "self_check", _("企业自查")
    INSPECTION = "inspection", _("执法检查")
    SPOT_CHECK = "spot_check", _("部门抽查")
    THIRD_PARTY = "third_party", _("第三方检查")
    DEVICE_ALERT = "device_alert", _("设备报警")
    PUBLIC_REPORT = "public_report", _("群众举报")


# Sources where the regulator found the hazard: only the regulator may dismiss those.
REGULATOR_SOURCES = frozenset({HazardSource.INSPECTION, HazardSource.SPOT_CHECK})


class HazardCategory(models.TextChoices):
    EQUIPMENT = "equipment", _("设备设施")
    PROCESS = "process", _("工艺管理")
    ELECTRICAL = "electrical", _("电气安全")
    FIRE = "fire", _("消防安全")
    STORAGE = "storage", _("危化品储存")
    OPERATION = "operation", _("作业安全")
    MANAGEMENT = "management", _("安全管理")
    ENVIRONMENT = "environment", _("作业环境")
    OTHER = "other", _("其他")


class HazardAction(models.TextChoices):
    REPORT = "report", _("上报隐患")
    CONFIRM = "confirm", _("确认")
    DISMISS = "dismiss", _("驳回")
    START_RECTIFICATION = "start_rectification", _("制定整改方案")
    SUBMIT_RECTIFICATION = "submit_rectification", _("提交整改")
    VERIFY = "verify", _("验收销号")
    FAIL_VERIFICATION = "fail_verification", _("验收不通过")
    REQUEST_EXTENSION = "request_extension", _("申请延期")
    DECIDE_EXTENSION = "decide_extension", _("审批延期")
    LIST_SUPERVISION = "list_supervision", _("挂牌督办")


# The allowed-transition map: action -> (states it may start from, state it leads to).
# Actions whose target is None do not change the status (they act on a sub-record).
TRANSITIONS: dict[str, tuple[frozenset[str], str | None]] = {
    HazardAction.CONFIRM: (frozenset({HazardStatus.REPORTED}), HazardStatus.CONFIRMED),
    HazardAction.DISMISS: (frozenset({HazardStatus.REPORTED}), HazardStatus.DISMISSED),
    HazardAction.START_RECTIFICATION: (frozenset({HazardStatus.CONFIRMED}), HazardStatus.RECTIFYING),
    HazardAction.SUBMIT_RECTIFICATION: (frozenset({HazardStatus.RECTIFYING}), HazardStatus.SUBMITTED),
    HazardAction.VERIFY: (frozenset({HazardStatus.SUBMITTED}), HazardStatus.CLOSED),
    HazardAction.FAIL_VERIFICATION: (frozenset({HazardStatus.SUBMITTED}), HazardStatus.RECTIFYING),
    HazardAction.REQUEST_EXTENSION: (frozenset({HazardStatus.RECTIFYING}), None),
    HazardAction.DECIDE_EXTENSION: (frozenset({HazardStatus.RECTIFYING}), None),
    HazardAction.LIST_SUPERVISION: (
        frozenset({HazardStatus.REPORTED, HazardStatus.CONFIRMED, HazardStatus.RECTIFYING, HazardStatus.SUBMITTED}),
        None,
    ),
}

OPEN_STATES = frozenset(
    {HazardStatus.REPORTED, HazardStatus.CONFIRMED, HazardStatus.RECTIFYING, HazardStatus.SUBMITTED}
)
# A hazard waiting for verification is no longer the enterprise's to be late with.
OVERDUE_STATES = frozenset({HazardStatus.REPORTED, HazardStatus.CONFIRMED, HazardStatus.RECTIFYING})
TERMINAL_STATES = frozenset({HazardStatus.CLOSED, HazardStatus.DISMISSED})


def actions_from(status: str) -> list[str]:
    """Actions the state machine allows from ``status`` (before looking at who asks)."""
    return [str(action) for action, (sources, _target) in TRANSITIONS.items() if status in sources]


class ExtensionStatus(models.TextChoices):
    PENDING = "pending", _("待审批")
    APPROVED = "approved", _("已批准")
    REFUSED = "refused", _("未批准")


class PhotoKind(models.TextChoices):
    BEFORE = "before", _("整改前")
    AFTER = "after", _("整改后")


class EscalationTier(models.IntegerChoices):
    PRINCIPAL = 1, _("企业主要负责人")
    PARK = 2, _("园区管委会")
    COUNTY = 3, _("县级监管部门")


class CheckResult(models.TextChoices):
    PASS = "pass", _("合格")
    FAIL = "fail", _("不合格")
    NOT_APPLICABLE = "na", _("不适用")


class RunStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", _("进行中")
    COMPLETED = "completed", _("已完成")
