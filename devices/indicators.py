"""Monitoring indicators for the regulator dashboard: enterprises connected, device online rate, data
timeliness (see ``enterprises/indicators.py``)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from devices.choices import DeviceStatus
from enterprises.indicators import Indicator, IndicatorGroup, register

# A device whose last communication is older than this does not deliver timely data.
DEFAULT_TIMELY_SECONDS = 300


def timely_seconds() -> int:
    return int(getattr(settings, "DASHBOARD_DATA_TIMELY_SECONDS", DEFAULT_TIMELY_SECONDS))


def device_measures(ctx) -> None:
    from devices.models import Device

    enabled = Device.objects.filter(enabled=True)
    ctx.stock(
        enabled,
        "enterprise__",
        born="created_at",
        count="enterprise_id",
        distinct=True,
        connected=Q(),
    )
    monitored = Q(maintenance=False) & ~Q(status__in=(DeviceStatus.MAINTENANCE, DeviceStatus.DISABLED))
    fresh_since = timezone.now() - timedelta(seconds=timely_seconds())
    ctx.now(
        enabled,
        "enterprise__",
        devices_monitored=Count("pk", filter=monitored),
        devices_online=Count("pk", filter=monitored & Q(status=DeviceStatus.ONLINE)),
        devices_timely=Count("pk", filter=monitored & Q(last_seen__gte=fresh_since)),
    )


INDICATORS = [
    Indicator(
        "enterprises_connected",
        _("联网企业"),
        _("家"),
        _(
            "统计期末已接入监测的企业数：至少有一台启用的采集设备"
            "（含 Modbus 网关、串口总线、HTTP 数据推送）在期末前建档。"
        ),
        "connected",
        better="up",
    ),
    Indicator(
        "connection_rate",
        _("企业联网率"),
        "%",
        _("联网企业数 ÷ 期末在册企业数 × 100%。"),
        "connected",
        "enterprises_total",
        scale=100,
        digits=1,
        better="up",
    ),
    Indicator(
        "device_online_rate",
        _("设备在线率"),
        "%",
        _(
            "状态为在线的设备数 ÷ 纳入监测的设备数 × 100%；纳入监测：已启用且不在维护中、未停用。"
            "采样值：每15分钟记录一次，统计期数值为期内各次采样分子之和 ÷ 分母之和（时间平均）；"
            "所选周期无快照时为当前实时值。"
        ),
        "devices_online",
        "devices_monitored",
        scale=100,
        digits=1,
        live=True,
        better="up",
    ),
    Indicator(
        "data_timeliness_rate",
        _("数据及时率"),
        "%",
        _(
            "最近一次通信在 5 分钟内的设备数 ÷ 纳入监测的设备数 × 100%。"
            "采样值：每15分钟记录一次，统计期数值为期内各次采样分子之和 ÷ 分母之和（时间平均）；"
            "所选周期无快照时为当前实时值。"
        ),
        "devices_timely",
        "devices_monitored",
        scale=100,
        digits=1,
        live=True,
        better="up",
    ),
]


def register_indicators() -> None:
    register(
        IndicatorGroup(key="devices", label=_("监测接入"), order=20, indicators=INDICATORS, measure=device_measures)
    )
