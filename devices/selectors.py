"""Reads of the devices app, always scoped to what the user may see."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Max, Min, OuterRef, Q, Subquery, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from devices.models import Channel, Device, Reading, ReadingAggregate
from regulator.scoping import scope

TREND_RANGES = {"hour": timedelta(hours=1), "day": timedelta(days=1), "month": timedelta(days=30)}


def devices_visible_to(user):
    return scope(Device.objects.select_related("enterprise"), user, "enterprise__").annotate(
        channel_count=Count("channels", filter=Q(channels__enabled=True))
    )


def channels_visible_to(user):
    return scope(Channel.objects.select_related("device", "device__enterprise"), user, "device__enterprise__")


def with_latest_reading(channels):
    latest = Reading.objects.filter(channel=OuterRef("pk")).order_by("-time")
    return channels.annotate(
        latest_value=Subquery(latest.values("value")[:1]),
        latest_quality=Subquery(latest.values("quality")[:1]),
        latest_time=Subquery(latest.values("time")[:1]),
    )


def device_status_counts(devices) -> dict[str, int]:
    return dict(devices.order_by().values_list("status").annotate(n=Count("id")))


def channel_trend(channel: Channel, range_name: str = "hour", now=None) -> dict:
    """Points [time, min, mean, max, count, bad] from the 1-minute aggregates (hourly for a month)."""
    span = TREND_RANGES.get(range_name)
    if span is None:
        raise ValueError(range_name)
    now = now or timezone.now()
    qs = ReadingAggregate.objects.filter(channel=channel, minute__gte=now - span, minute__lte=now)
    points = []
    if range_name == "month":
        rows = (
            qs.annotate(bucket=TruncHour("minute"))
            .values("bucket")
            .annotate(mn=Min("min"), mx=Max("max"), s=Sum("sum"), c=Sum("count"), b=Sum("bad_count"))
            .order_by("bucket")
        )
        for r in rows:
            mean = r["s"] / r["c"] if r["c"] else None
            points.append([r["bucket"].isoformat(), r["mn"], mean, r["mx"], r["c"], r["b"]])
    else:
        for a in qs.order_by("minute"):
            points.append([a.minute.isoformat(), a.min, a.mean, a.max, a.count, a.bad_count])
    return {
        "channel": channel.pk,
        "tag": channel.tag,
        "unit": channel.unit,
        "range": range_name,
        "bucket": "hour" if range_name == "month" else "minute",
        "points": points,
    }
