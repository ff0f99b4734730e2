"""Alert indicators for the regulator dashboard: alerts by level, acknowledgement times, false alarms
(see ``enterprises/indicators.py``)."""

from __future__ import annotations

from django.db.models import Count, F, Q, Sum
from django.utils.translation import gettext_lazy as _

from enterprises.indicators import Indicator, IndicatorGroup, register, seconds_between

LEVELS = (1, 2, 3, 4)


def alert_measures(ctx) -> None:
    from alerts.models import Alert

    acked = Q(acknowledged_at__isnull=False)
    ctx.flow(
        Alert.objects.all(),
        "raised_at",
        "enterprise__",
        alerts=Count("pk"),
        **{f"alerts_l{level}": Count("pk", filter=Q(level=level)) for level in LEVELS},
        acked=Count("pk", filter=acked),
        ack_seconds=Sum(seconds_between("acknowledged_at", "raised_at"), filter=acked),
        acked_in_time=Count("pk", filter=acked & Q(acknowledged_at__lte=F("ack_due_at"))),
        reviewed=Count("pk", filter=Q(false_alarm__isnull=False)),
        false_alarms=Count("pk", filter=Q(false_alarm=True)),
    )


INDICATORS = [
    Indicator("alerts_total", _("报警总数"), _("次"), _("统计期内触发的报警数（各级合计）。"), "alerts", better="down"),
    Indicator(
        "alerts_level1",
        _("一级报警"),
        _("次"),
        _("统计期内触发的一级（红色，爆炸前兆）报警数。"),
        "alerts_l1",
        better="down",
    ),
    Indicator(
        "avg_ack_minutes",
        _("平均确认时长"),
        _("分钟"),
        _("统计期内触发并已确认的报警，从报警到首次确认的平均时长（分钟）。"),
        "ack_seconds",
        "acked",
        scale=1 / 60,
        digits=1,
        better="down",
    ),
    Indicator(
        "ack_in_time_rate",
        _("按时确认率"),
        "%",
        _("统计期内触发的报警中，在确认期限内确认的数量 ÷ 统计期内触发的报警数 × 100%（未确认的计为未按时）。"),
        "acked_in_time",
        "alerts",
        scale=100,
        digits=1,
        better="up",
    ),
    Indicator(
        "false_alarm_rate",
        _("误报率"),
        "%",
        _("统计期内触发且已复核的报警中，复核认定为误报的数量 ÷ 已复核的报警数 × 100%。"),
        "false_alarms",
        "reviewed",
        scale=100,
        digits=1,
        better="down",
    ),
]


def register_indicators() -> None:
    register(
        IndicatorGroup(
            key="alerts",
            label=_("监测预警"),
            order=50,
            indicators=INDICATORS,
            measure=alert_measures,
            distributions={"alerts_by_level": {str(level): f"alerts_l{level}" for level in LEVELS}},
        )
    )
