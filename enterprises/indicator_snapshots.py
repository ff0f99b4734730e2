"""Monthly snapshots of the dashboard's measures (``IndicatorSnapshot``), so a month, quarter or year
dashboard of a province reads a few thousand small rows instead of scanning a year of events.

- ``build_snapshots(months, sample=...)`` recomputes whole months from the events, per region and park,
  with the same measure functions the live dashboard uses (so both give the same numbers), and can add
  one sample of the live state (device status, current grades) to the current month;
- ``read_snapshots(...)`` assembles a dashboard's buckets from them, or None when they do not cover it.

Kept fresh by the ``snapshot_indicators`` command and two beat tasks: every 15 minutes the current month
with a live sample; nightly the current and the 35 previous months (late closures and alert reviews;
a year's dashboard compares it with the year before and needs up to 36 months).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from enterprises.indicators import (
    UNIT_REGION,
    UNIT_REGION_PARK,
    Bucket,
    Context,
    add_months,
    groups,
    month_buckets,
    month_start,
)

KINDS = ("flow", "stock", "sample")


def _rolled_up(ctx: Context) -> dict:
    """{(month name, region id, park id or None): {measure: value}}: every (region, park) unit's measures
    added to each ancestor region (itself included), once for all enterprises (park None) and once for
    its park, so a dashboard reads one row for a region's whole subtree."""
    from regulator.models import Region

    paths = dict(Region.objects.values_list("id", "path"))
    by_path = {path: pk for pk, path in paths.items()}
    ancestors: dict = {}
    out: dict = defaultdict(lambda: defaultdict(float))
    for bucket, units in ctx.measures.items():
        for (region_id, park_id), values in units.items():
            if region_id not in ancestors:
                parts = paths[region_id].strip("/").split("/")
                ancestors[region_id] = [by_path["/" + "/".join(parts[: i + 1]) + "/"] for i in range(len(parts))]
            for anc in ancestors[region_id]:
                for key in ((bucket, anc, None), (bucket, anc, park_id)) if park_id else ((bucket, anc, None),):
                    target = out[key]
                    for name, value in values.items():
                        target[name] += value
    return out


def build_snapshots(months: list[date], *, sample: bool = False, today: date | None = None) -> dict:
    """Recompute the snapshots of ``months`` (first days); ``sample`` adds the live state as one sample to
    the month containing today. Returns {"months": n, "rows": n, "queries": n}."""
    from enterprises.models import IndicatorSnapshot, IndicatorSnapshotMonth

    today = today or timezone.localdate()
    buckets = [Bucket(f"{m:%Y-%m}", m, add_months(m, 1) - timedelta(days=1)) for m in sorted(set(months))]
    ctx = Context(today=today, unit_buckets=buckets, unit=UNIT_REGION_PARK, sampling=sample)
    for group in groups():
        group.measure(ctx)
    rolled = _rolled_up(ctx)
    now = timezone.now()
    with transaction.atomic():
        existing = {
            (row.month, row.region_id, row.park_id): row
            for row in IndicatorSnapshot.objects.select_for_update().filter(month__in=[b.start for b in buckets])
        }
        to_create, to_update = [], []
        for b in buckets:
            keys = {(r, p) for (m, r, p) in rolled if m == b.name} | {(r, p) for (m, r, p) in existing if m == b.start}
            for region_id, park_id in keys:
                values = {"flow": {}, "stock": {}, "sample": {}, "last": {}}
                row = existing.get((b.start, region_id, park_id))
                if row is not None:  # samples accumulate; flows and stocks are recomputed
                    values["sample"] = dict(row.values.get("sample", {}))
                    values["last"] = dict(row.values.get("last", {}))
                for name, value in rolled.get((b.name, region_id, park_id), {}).items():
                    kind = ctx.kinds[name]
                    if kind == "sample":
                        values["sample"][name] = values["sample"].get(name, 0) + value
                        values["last"][name] = value
                    else:
                        values[kind][name] = value
                if row is None:
                    to_create.append(
                        IndicatorSnapshot(month=b.start, region_id=region_id, park_id=park_id, values=values)
                    )
                else:
                    row.values = values
                    to_update.append(row)
        IndicatorSnapshot.objects.bulk_create(to_create, batch_size=1000)
        IndicatorSnapshot.objects.bulk_update(to_update, ["values"], batch_size=1000)
        for b in buckets:
            sampled = sample and b.start <= today <= b.end
            marker, created = IndicatorSnapshotMonth.objects.select_for_update().get_or_create(
                month=b.start, defaults={"computed_at": now, "samples": int(sampled)}
            )
            if not created:
                marker.computed_at = now
                marker.samples += int(sampled)
                marker.save(update_fields=["computed_at", "samples"])
    from enterprises.dashboard_days import build_day_snapshots

    days = build_day_snapshots(months, sample=sample, today=today)  # custom periods' partial months
    return {
        "months": len(buckets),
        "rows": len(to_create) + len(to_update),
        "queries": ctx.queries + days["queries"],
        "day_rows": days["rows"],
    }


def recent_months(count: int, today: date | None = None) -> list[date]:
    """The current month and the ``count - 1`` before it (first days)."""
    first = month_start(today or timezone.localdate())
    return [add_months(first, -i) for i in range(count)]


def _whole_months(b: Bucket) -> bool:
    return b.start.day == 1 and (b.end + timedelta(days=1)).day == 1


def read_snapshots(cur: Bucket, prev: Bucket, trend: list[Bucket], *, region_id, child_ids, park_id, today: date):
    """A Context filled from the snapshots of ``region_id`` (its subtree's totals) and of its children (the
    drill-down rows; the region's own row minus its children's is "本级"), and the newest snapshot time
    used; None when a bucket is not whole months or a month up to today has no snapshot. Reads
    (1 + children) rows per month, whatever the number of enterprises."""
    from enterprises.models import IndicatorSnapshot, IndicatorSnapshotMonth

    if not (_whole_months(cur) and _whole_months(prev)):
        return None
    cur_months = [b.start for b in month_buckets(cur.start, cur.end)]
    prev_months = [b.start for b in month_buckets(prev.start, prev.end)]
    needed = set(cur_months) | set(prev_months) | {b.start for b in trend}
    past = {m for m in needed if m <= today}
    markers = dict(IndicatorSnapshotMonth.objects.filter(month__in=past).values_list("month", "computed_at"))
    if set(markers) != past:
        return None
    units = [region_id, *child_ids]
    qs = IndicatorSnapshot.objects.filter(month__in=past, region_id__in=units)
    qs = qs.filter(park_id=park_id) if park_id else qs.filter(park__isnull=True)
    data: dict = defaultdict(dict)  # month -> region -> values
    kinds: dict = {}
    for month, unit, values in qs.values_list("month", "region_id", "values"):
        data[month][unit] = values
        for kind in KINDS:
            for name in values.get(kind, {}):
                kinds[name] = kind

    ctx = Context(today=today, unit_buckets=[cur, prev], total_buckets=trend, unit=UNIT_REGION, region_ids=units)
    ctx.kinds = kinds
    for name, months in (("cur", cur_months), ("prev", prev_months)):
        available = [m for m in months if m in past]
        if not available:
            continue
        last = max(available)
        for m in available:
            for unit, values in split_own_share(data.get(m, {}), region_id, child_ids).items():
                target = ctx.measures[name][unit]
                for kind in ("flow", "sample"):
                    for measure, value in values.get(kind, {}).items():
                        target[measure] += value
                if m == last:
                    for measure, value in values.get("stock", {}).items():
                        target[measure] += value
                    if name == "cur":
                        for measure, value in values.get("last", {}).items():
                            ctx.measures["cur_last"][unit][measure] += value
    for b in trend:
        total = data.get(b.start, {}).get(region_id, {})
        target = ctx.measures[b.name][None]
        for kind in KINDS:
            for measure, value in total.get(kind, {}).items():
                target[measure] += value
    return ctx, max(markers.values()) if markers else None


def read_trend(trend: list[Bucket], *, region_id, park_id, today: date) -> dict | None:
    """{month name: {measure: value}} for the trend months from the region's snapshot rows (for a live
    custom period: its 12-month trend need not be recomputed), or None if a month up to today is missing."""
    from enterprises.models import IndicatorSnapshot, IndicatorSnapshotMonth

    past = {b.start for b in trend if b.start <= today}
    if IndicatorSnapshotMonth.objects.filter(month__in=past).count() != len(past):
        return None
    qs = IndicatorSnapshot.objects.filter(month__in=past, region_id=region_id)
    qs = qs.filter(park_id=park_id) if park_id else qs.filter(park__isnull=True)
    rows = dict(qs.values_list("month", "values"))
    result = {}
    for b in trend:
        merged: dict = defaultdict(float)
        for kind in KINDS:
            for name, value in rows.get(b.start, {}).get(kind, {}).items():
                merged[name] += value
        result[b.name] = merged
    return result


@shared_task(name="enterprises.snapshot_indicators")
def snapshot_indicators_task(months: int = 1, sample: bool = True) -> dict:
    """Beat: the current month with a live sample every 15 minutes; 36 months without a sample nightly."""
    return build_snapshots(recent_months(months), sample=sample)


__all__ = ["UNIT_REGION", "build_snapshots", "read_snapshots", "recent_months", "snapshot_indicators_task"]


def split_own_share(rows: dict, region_id: int, child_ids) -> dict:
    """{region: {kind: {measure: value}}} for the drill-down units of one bucket's rows; the region's
    own share (enterprises attached to it directly, not to a child) is its subtree total minus its
    children's."""
    result = {c: rows[c] for c in child_ids if c in rows}
    rest = {}
    for kind in (*KINDS, "last"):
        values = dict(rows.get(region_id, {}).get(kind, {}))
        for child in result.values():
            for name, value in child.get(kind, {}).items():
                values[name] = values.get(name, 0) - value
        rest[kind] = values
    result[region_id] = rest
    return result
