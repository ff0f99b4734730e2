"""Enforcement indicators for the regulator dashboard: inspections done vs planned, credit grades
(see ``enterprises/indicators.py``)."""

from __future__ import annotations

from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _

from enforcement.choices import CreditGrade, InspectionStatus
from enterprises.indicators import Indicator, IndicatorGroup, register


def enforcement_measures(ctx) -> None:
    from enforcement.models import Inspection
    from enterprises.models import Enterprise

    ctx.flow(
        Inspection.objects.all(),
        "date",
        "enterprise__",
        inspections_planned=Count("pk", filter=~Q(status=InspectionStatus.CANCELLED)),
        inspections_done=Count("pk", filter=Q(status=InspectionStatus.COMPLETED)),
    )
    ctx.now(
        Enterprise.objects.all(),
        "",
        credit_low=Count("pk", filter=Q(credit__grade__in=(CreditGrade.C, CreditGrade.D))),
        credit_scored=Count("credit__pk"),
        **{f"credit_{grade}": Count("pk", filter=Q(credit__grade=grade)) for grade in CreditGrade.values},
        credit_none=Count("pk", filter=Q(credit__isnull=True)),
    )


INDICATORS = [
    Indicator(
        "inspections_planned",
        _("计划检查"),
        _("次"),
        _("检查日期在统计期内、未取消的执法检查数（含已完成和待检查）。"),
        "inspections_planned",
    ),
    Indicator(
        "inspections_done",
        _("完成检查"),
        _("次"),
        _("检查日期在统计期内、状态为已完成的执法检查数。"),
        "inspections_done",
        better="up",
    ),
    Indicator(
        "inspection_completion_rate",
        _("检查完成率"),
        "%",
        _("完成检查数 ÷ 计划检查数 × 100%（检查日期在统计期内，不含已取消的）。"),
        "inspections_done",
        "inspections_planned",
        scale=100,
        digits=1,
        better="up",
    ),
    Indicator(
        "credit_low_share",
        _("C/D级信用企业占比"),
        "%",
        _(
            "信用等级为C级或D级的企业数 ÷ 已评定信用等级的企业数 × 100%。"
            "采样值：每15分钟记录一次，统计期数值为期内各次采样分子之和 ÷ 分母之和（时间平均）；"
            "所选周期无快照时为当前实时值。"
        ),
        "credit_low",
        "credit_scored",
        scale=100,
        digits=1,
        live=True,
        better="down",
    ),
]


def register_indicators() -> None:
    register(
        IndicatorGroup(
            key="enforcement",
            label=_("执法检查"),
            order=40,
            indicators=INDICATORS,
            measure=enforcement_measures,
            distributions={"credit_grade": {key: f"credit_{key}" for key in (*CreditGrade.values, "none")}},
        )
    )
