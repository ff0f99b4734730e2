"""Day snapshots of the dashboard's measures (``IndicatorDaySnapshot``), so a custom period (any start and
end date) is assembled from rows instead of scanning the events of a whole province:

- its whole calendar months come from the monthly rows (``IndicatorSnapshot``), its partial months from
  day rows; a 10-day period of a province reads 2 x 10 days x (1 + children) small rows;
- every measure is additive per day (counts and sums: flows), or a stock taken at the end of the period's
  last day, or a live sample summed over the samples taken in the period: so the numbers equal the live
  computation's (the rates are ratios of these sums, never averaged; there is no median among the
  indicators, so nothing needs a histogram).

Day rows are written for every region's whole subtree (all parks together: a park manager's dashboard
is small and computed live) and only for the last ``DAY_MONTHS`` months (25), by ``build_snapshots`` right
after the monthly rows of the same months (so both are computed from the same data); zero measures are
left out. Samples taken by the 15-minute beat task go to the day containing today as well, and survive
the nightly rebuild like the monthly samples.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, timedelta

from django.db import connection, transaction
from django.utils import timezone

from enterprises.indicator_snapshots import KINDS, split_own_share
from enterprises.indicators import UNIT_REGION, Bucket, Context, add_months, groups, month_buckets, month_start

# Day rows are kept for the current month and the 24 before it: any custom period of up to a year ending
# in the last year, with its previous period, reads rows; longer or older ones are computed live.
DAY_MONTHS = 25


def _ancestors() -> dict:
    """{region id: [its id and every ancestor's id]}."""
    from regulator.models import Region

    paths = dict(Region.objects.values_list("id", "path"))
    by_path = {path: pk for pk, path in paths.items()}
    out = {}
    for pk, path in paths.items():
        parts = path.strip("/").split("/")
        out[pk] = [by_path["/" + "/".join(parts[: i + 1]) + "/"] for i in range(len(parts))]
    return out


def day_months(months, today: date) -> list[date]:
    """The months (first days) among ``months`` that keep day rows."""
    oldest = add_months(month_start(today), -(DAY_MONTHS - 1))
    return sorted({m for m in months if m >= oldest})


def build_day_snapshots(months, *, sample: bool = False, today: date | None = None) -> dict:
    """Recompute the day rows of ``months`` (first days; those older than ``DAY_MONTHS`` are skipped, and
    their rows deleted), one month per computation (a few grouped queries each); ``sample`` adds the live
    state as one sample to today's row. Call after the monthly rows of the same months exist (their markers record it).
    Returns {"months": n, "rows": n, "queries": n}."""
    from enterprises.models import IndicatorDaySnapshot, IndicatorSnapshotMonth

    today = today or timezone.localdate()
    # Months that left the window lose their day rows (bounded storage; their custom periods are live).
    oldest = add_months(month_start(today), -(DAY_MONTHS - 1))
    IndicatorSnapshotMonth.objects.filter(month__lt=oldest, days_computed_at__isnull=False).update(
        days_computed_at=None
    )
    IndicatorDaySnapshot.objects.filter(day__lt=oldest).delete()
    ancestors = _ancestors()
    result = {"months": 0, "rows": 0, "queries": 0}
    for first in day_months(months, today):
        last = add_months(first, 1) - timedelta(days=1)
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        ctx = Context(
            today=today,
            unit_buckets=[Bucket(d.isoformat(), d, d) for d in days],
            unit=UNIT_REGION,
            sampling=sample,
        )
        for group in groups():
            group.measure(ctx)
        rolled: dict = defaultdict(lambda: defaultdict(float))  # (day name, region) -> measures
        for bucket, units in ctx.measures.items():
            for region_id, values in units.items():
                for anc in ancestors.get(region_id, ()):
                    target = rolled[(bucket, anc)]
                    for name, value in values.items():
                        target[name] += value
        now = timezone.now()
        with transaction.atomic():
            # The month's marker row serialises builders of the same month (beat task and nightly run).
            list(IndicatorSnapshotMonth.objects.select_for_update().filter(month=first))
            existing = {  # samples accumulate; flows and stocks are recomputed
                (day.isoformat(), region_id): values
                for day, region_id, values in IndicatorDaySnapshot.objects.filter(
                    day__gte=first, day__lte=last, values__has_key="last"
                ).values_list("day", "region_id", "values")
            }
            rows = []
            for key in set(rolled) | set(existing):
                old = existing.get(key, {})
                values = {
                    "flow": {},
                    "stock": {},
                    "sample": dict(old.get("sample", {})),
                    "last": dict(old.get("last", {})),
                }
                for name, value in rolled.get(key, {}).items():
                    kind = ctx.kinds[name]
                    if kind == "sample":
                        values["sample"][name] = values["sample"].get(name, 0) + value
                        values["last"][name] = value
                    elif value:
                        values[kind][name] = value
                values = {kind: v for kind, v in values.items() if v}
                if values:
                    rows.append((date.fromisoformat(key[0]), key[1], values))
            IndicatorDaySnapshot.objects.filter(day__gte=first, day__lte=last).delete()
            _insert(rows)
            IndicatorSnapshotMonth.objects.filter(month=first).update(days_computed_at=now)
        result["months"] += 1
        result["rows"] += len(rows)
        result["queries"] += ctx.queries
    return result


def _insert(rows: list[tuple]) -> None:
    """Insert (day, region id, values) rows: COPY on PostgreSQL (tens of thousands a month), else bulk_create."""
    from enterprises.models import IndicatorDaySnapshot

    if connection.vendor != "postgresql":
        IndicatorDaySnapshot.objects.bulk_create(
            [IndicatorDaySnapshot(day=day, region_id=region_id, values=values) for day, region_id, values in rows],
            batch_size=1000,
        )
        return
    table = IndicatorDaySnapshot._meta.db_table
    sql = f'COPY "{table}" ("day", "region_id", "values") FROM STDIN'
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for day, region_id, values in rows:
            copy.write_row((day, region_id, json.dumps(values, separators=(",", ":"))))


def _parts(b: Bucket) -> list[tuple[str, date]]:
    """``b`` as chronological parts: ("month", first day) for each calendar month it covers whole,
    ("day", d) for each day of a month it covers in part."""
    parts = []
    for m in month_buckets(b.start, b.end):
        if b.start <= m.start and m.end <= b.end:
            parts.append(("month", m.start))
        else:
            d, last = max(b.start, m.start), min(b.end, m.end)
            while d <= last:
                parts.append(("day", d))
                d += timedelta(days=1)
    return parts


def read_days(cur: Bucket, prev: Bucket, trend: list[Bucket], *, region_id, child_ids, today: date):
    """A Context for ``cur`` and ``prev`` (any dates) from monthly rows (whole months) and day rows (the
    rest), with the trend from the monthly rows, and the newest computation time used; None when a month
    the periods touch (or a trend month up to today) lacks its rows, e.g. a month after the current one
    or older than ``DAY_MONTHS``. Four queries, whatever the number of enterprises or days."""
    from enterprises.models import IndicatorDaySnapshot, IndicatorSnapshot, IndicatorSnapshotMonth

    parts = {"cur": _parts(cur), "prev": _parts(prev)}
    day_parts = {d for p in parts.values() for kind, d in p if kind == "day"}
    whole = {d for p in parts.values() for kind, d in p if kind == "month"}
    trend_months = {b.start for b in trend if b.start <= today}
    need_days = {month_start(d) for d in day_parts}
    markers = {
        m: (computed, days)
        for m, computed, days in IndicatorSnapshotMonth.objects.filter(
            month__in=need_days | whole | trend_months
        ).values_list("month", "computed_at", "days_computed_at")
    }
    if not (whole | trend_months) <= set(markers) or any(markers.get(m, (0, None))[1] is None for m in need_days):
        return None
    units = [region_id, *child_ids]
    data: dict = defaultdict(dict)  # ("month" | "day", date) -> region -> values
    month_rows = IndicatorSnapshot.objects.filter(
        month__in=whole | trend_months, region_id__in=units, park__isnull=True
    )
    for month, unit, values in month_rows.values_list("month", "region_id", "values"):
        data[("month", month)][unit] = values
    if day_parts:
        day_rows = IndicatorDaySnapshot.objects.filter(day__in=day_parts, region_id__in=units)
        for day, unit, values in day_rows.values_list("day", "region_id", "values"):
            data[("day", day)][unit] = values
    kinds: dict = {}
    for rows in data.values():
        for values in rows.values():
            for kind in KINDS:
                for name in values.get(kind, {}):
                    kinds[name] = kind

    ctx = Context(today=today, unit_buckets=[cur, prev], total_buckets=trend, unit=UNIT_REGION, region_ids=units)
    ctx.kinds = kinds
    for name, bucket_parts in parts.items():
        sampled = [p for p in bucket_parts if data.get(p, {}).get(region_id, {}).get("last")]
        for part in bucket_parts:
            for unit, values in split_own_share(data.get(part, {}), region_id, child_ids).items():
                target = ctx.measures[name][unit]
                for kind in ("flow", "sample"):
                    for measure, value in values.get(kind, {}).items():
                        target[measure] += value
                if part == bucket_parts[-1]:  # the stock at the end of the period's last day
                    for measure, value in values.get("stock", {}).items():
                        target[measure] += value
                if name == "cur" and sampled and part == sampled[-1]:
                    for measure, value in values.get("last", {}).items():
                        ctx.measures["cur_last"][unit][measure] += value
    for b in trend:
        target = ctx.measures[b.name][None]
        for kind in KINDS:
            for measure, value in data.get(("month", b.start), {}).get(region_id, {}).get(kind, {}).items():
                target[measure] += value
    used = [markers[m][0] for m in whole | trend_months] + [markers[m][1] for m in need_days]
    return ctx, max(used) if used else None
