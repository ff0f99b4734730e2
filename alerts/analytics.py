"""Alarm-management metrics after EEMUA 191, computed with pandas over one month of scoped alerts.

- alerts per operator (here: per enterprise duty post) per 10 minutes: average and peak;
- time in flood: share of 10-minute windows with more than ALERT_FLOOD_COUNT alerts;
- standing alerts: still open and older than 24 hours;
- top chattering channels: most alerts, and how many came within 60 s of the previous one;
- false-alarm rate: reviewed-as-false / reviewed.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

import pandas as pd
from django.conf import settings
from django.utils import timezone

from alerts.choices import OPEN_STATES

CHATTER_SECONDS = 60
STANDING_HOURS = 24


def month_bounds(month: str) -> tuple[datetime, datetime]:
    try:
        year, mon = (int(x) for x in month.split("-"))
        if not 1 <= mon <= 12:
            raise ValueError
    except ValueError as exc:
        raise ValueError(f"month must be YYYY-MM, got {month!r}") from exc
    tz = timezone.get_default_timezone()
    start = datetime(year, mon, 1, tzinfo=tz)
    end = start + timedelta(days=calendar.monthrange(year, mon)[1])
    return start, end


def monthly_report(queryset, month: str, now: datetime | None = None) -> dict:
    """``queryset`` is already scoped to the person asking (alerts_visible_to)."""
    start, end = month_bounds(month)
    now = now or timezone.now()
    rows = list(
        queryset.filter(raised_at__gte=start, raised_at__lt=end).values(
            "id",
            "enterprise_id",
            "enterprise__name",
            "channel_id",
            "channel__tag",
            "channel__name",
            "kind",
            "level",
            "raised_at",
            "false_alarm",
        )
    )
    period_end = min(end, now) if start <= now else end
    windows = max(1, int((period_end - start).total_seconds() // 600))
    report = {
        "month": month,
        "total": len(rows),
        "windows": windows,
        "per_operator": [],
        "flood": {"windows_in_flood": 0, "share": 0.0},
        "chattering": [],
        "false_alarm": {"reviewed": 0, "false": 0, "rate": None},
        "by_level": [],
        "responses": [],
    }
    standing_before = now - timedelta(hours=STANDING_HOURS)
    standing = (
        queryset.filter(state__in=OPEN_STATES, condition_active=True, raised_at__lt=standing_before)
        .select_related("enterprise")
        .order_by("raised_at")
    )
    report["standing"] = [
        {
            "id": a.pk,
            "enterprise": a.enterprise.name,
            "message": a.message,
            "raised_at": a.raised_at,
            "hours": round((now - a.raised_at).total_seconds() / 3600, 1),
        }
        for a in standing[:50]
    ]
    report["standing_count"] = standing.count()
    if not rows:
        return report
    df = pd.DataFrame(rows)
    df["raised_at"] = pd.to_datetime(df["raised_at"], utc=True)
    df["window"] = df["raised_at"].dt.floor("10min")

    per_window = df.groupby(["enterprise_id", "window"]).size()
    flood_limit = settings.ALERT_FLOOD_COUNT
    per_ent = []
    for (ent_id, name), group in df.groupby(["enterprise_id", "enterprise__name"]):
        counts = per_window.loc[ent_id]
        per_ent.append(
            {
                "enterprise_id": int(ent_id),
                "enterprise": name,
                "total": int(len(group)),
                "avg_per_10min": round(len(group) / windows, 3),
                "peak_10min": int(counts.max()),
                "windows_in_flood": int((counts > flood_limit).sum()),
                "flood_share": round(float((counts > flood_limit).sum()) / windows, 4),
            }
        )
    report["per_operator"] = sorted(per_ent, key=lambda r: -r["total"])
    all_windows = df.groupby(["enterprise_id", "window"]).size()
    flooded = all_windows[all_windows > flood_limit].reset_index()["window"].nunique()
    report["flood"] = {"windows_in_flood": int(flooded), "share": round(flooded / windows, 4)}

    ch = df.dropna(subset=["channel_id"]).sort_values("raised_at")
    if not ch.empty:
        ch = ch.assign(gap=ch.groupby(["channel_id", "kind"])["raised_at"].diff().dt.total_seconds())
        ch["chatter"] = ch["gap"].le(CHATTER_SECONDS)
        top = (
            ch.groupby(["channel_id", "channel__tag", "channel__name", "enterprise__name"])
            .agg(count=("id", "size"), chatter=("chatter", "sum"))
            .reset_index()
            .sort_values(["chatter", "count"], ascending=False)
            .head(10)
        )
        report["chattering"] = [
            {
                "channel_id": int(r.channel_id),
                "tag": r.channel__tag,
                "name": r.channel__name,
                "enterprise": r.enterprise__name,
                "count": int(r.count),
                "chatter": int(r.chatter),
            }
            for r in top.itertuples()
        ]
    reviewed = df[df["false_alarm"].notna()]
    false_n = int((reviewed["false_alarm"] == True).sum())  # noqa: E712 (pandas element-wise)
    report["false_alarm"] = {
        "reviewed": int(len(reviewed)),
        "false": false_n,
        "rate": round(false_n / len(reviewed), 4) if len(reviewed) else None,
    }
    report["by_level"] = [
        {"level": int(level), "count": int(n)} for level, n in df.groupby("level").size().sort_index().items()
    ]
    report["responses"] = response_times(df["id"].tolist())
    return report


# The seed's yardsticks: valve closed within 3 minutes, fire brigade notified within 5.
RESPONSE_TARGETS = {"valve_closed": 180, "fire_brigade": 300, "county_reported": 60, "plan_started": 1800}


def response_times(alert_ids: list[int]) -> list[dict]:
    """Per response kind: how long after the alert it happened (median, 90th percentile, within target)."""
    from alerts.choices import ResponseKind
    from alerts.models import AlertResponse

    rows = list(
        AlertResponse.objects.filter(alert_id__in=alert_ids).values("alert_id", "kind", "at", "alert__raised_at")
    )
    if not rows:
        return []
    df = pd.DataFrame(rows)
    df["seconds"] = (
        pd.to_datetime(df["at"], utc=True) - pd.to_datetime(df["alert__raised_at"], utc=True)
    ).dt.total_seconds()
    first = df.sort_values("at").groupby(["alert_id", "kind"], as_index=False).first()
    out = []
    for kind, group in first.groupby("kind"):
        target = RESPONSE_TARGETS.get(kind)
        out.append(
            {
                "kind": kind,
                "label": str(ResponseKind(kind).label) if kind in ResponseKind.values else kind,
                "count": int(len(group)),
                "median_s": round(float(group["seconds"].median()), 1),
                "p90_s": round(float(group["seconds"].quantile(0.9)), 1),
                "target_s": target,
                "within_target": round(float((group["seconds"] <= target).mean()), 4) if target else None,
            }
        )
    return sorted(out, key=lambda r: r["kind"])
