"""Hazard indicators for the regulator dashboard: found, closed, rectification and on-time rates,
rectification days, major hazards under listed supervision (see ``enterprises/indicators.py``)."""

from __future__ import annotations

from django.db.models import Count, Q, Sum
from django.utils.translation import gettext_lazy as _

from enterprises.indicators import Indicator, IndicatorGroup, register, seconds_between
from hazards.choices import HazardGrade, HazardStatus
from hazards.models import Hazard

NOT_DISMISSED = ~Q(status=HazardStatus.DISMISSED)


def hazard_measures(ctx) -> None:
    qs = Hazard.objects.all()
    # Found in the period (not dismissed), and of those how many are closed (销号) by now.
    ctx.flow(
        qs.filter(NOT_DISMISSED),
        "reported_at",
        "enterprise__",
        found=Count("pk"),
        found_major=Count("pk", filter=Q(grade=HazardGrade.MAJOR)),
        found_closed=Count("pk", filter=Q(status=HazardStatus.CLOSED)),
    )
    # Closed (销号) in the period: on time, and the days it took.
    ctx.flow(
        qs.filter(status=HazardStatus.CLOSED),
        "closed_at",
        "enterprise__",
        closed=Count("pk"),
        closed_on_time=Count("pk", filter=Q(closed_on_time=True)),
        rectification_seconds=Sum(seconds_between("closed_at", "reported_at")),
    )
    # Major hazards under listed supervision (挂牌督办) at the period end: listed before it and not yet
    # closed (or dismissed) at it.
    ctx.stock(
        qs.filter(listed=True, grade=HazardGrade.MAJOR).exclude(status=HazardStatus.DISMISSED),
        "enterprise__",
        born="listed_at",
        died="closed_at",
        listed_open=Q(),
    )


INDICATORS = [
    Indicator(
        "hazards_found",
        _("发现隐患"),
        _("项"),
        _("统计期内上报（发现）的隐患数，不含被驳回的。"),
        "found",
    ),
    Indicator(
        "major_hazards_found",
        _("发现重大隐患"),
        _("项"),
        _("统计期内上报的重大隐患数，不含被驳回的。"),
        "found_major",
    ),
    Indicator(
        "hazards_closed",
        _("销号隐患"),
        _("项"),
        _("统计期内验收销号的隐患数（不论何时发现）。"),
        "closed",
        better="up",
    ),
    Indicator(
        "rectification_rate",
        _("隐患整改率"),
        "%",
        _("统计期内发现的隐患中，截至统计时已验收销号的数量 ÷ 统计期内发现的隐患数 × 100%（不含驳回的）。"),
        "found_closed",
        "found",
        scale=100,
        digits=1,
        better="up",
    ),
    Indicator(
        "on_time_rate",
        _("按期整改率"),
        "%",
        _(
            "统计期内销号的隐患中，整改在有效期限（含经批准延期后的期限）当天或之前提交的数量 ÷ "
            "统计期内销号的隐患数 × 100%。"
        ),
        "closed_on_time",
        "closed",
        scale=100,
        digits=1,
        better="up",
    ),
    Indicator(
        "avg_rectification_days",
        _("平均整改天数"),
        _("天"),
        _("统计期内销号的隐患，从上报到销号所用时间的平均值（天）。"),
        "rectification_seconds",
        "closed",
        scale=1 / 86400,
        digits=1,
        better="down",
    ),
    Indicator(
        "listed_major_hazards",
        _("挂牌督办重大隐患"),
        _("项"),
        _("统计期末处于挂牌督办状态的重大隐患数：挂牌时间早于期末，且期末时尚未销号（不含驳回）。"),
        "listed_open",
        better="down",
    ),
]


def register_indicators() -> None:
    register(
        IndicatorGroup(key="hazards", label=_("隐患治理"), order=30, indicators=INDICATORS, measure=hazard_measures)
    )
