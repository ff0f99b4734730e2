"""Supervision indicators (监管指标) for a jurisdiction and a period, assembled from groups that apps
register at start-up, like the dossier sections (``enterprises/dossier.py``).

An app adds its group in ``AppConfig.ready()``::

    from enterprises.indicators import Indicator, IndicatorGroup, register
    register(IndicatorGroup(key="hazards", label=_("隐患治理"), order=20,
                            indicators=[Indicator("hazards_found", _("发现隐患"), _("项"), _("..."), "found")],
                            measure=hazard_measures))

``measure(ctx)`` fills additive *measures* (counts and sums) through the :class:`Context`
helpers, with a handful of aggregated queries whose number does not depend on the number of rows:

- ``ctx.flow(qs, date_field, unit_prefix, **aggregates)``: events dated in a bucket (hazards found,
  alerts raised): one query grouped by unit for the period and the previous period (or by unit and
  month when the buckets are calendar months), one grouped by month for the 12-month trend;
- ``ctx.stock(qs, unit_prefix, born, died, **conditions)``: things that exist at an instant (registered
  enterprises, hazards under listed supervision): counted at the end of each bucket, in one query;
- ``ctx.now(qs, unit_prefix, **aggregates)``: the live state (device status, current grades), recorded
  into the buckets that contain today; snapshots accumulate these samples, so past periods get the
  average over their samples;
- ``IndicatorGroup.distributions``: {name: {key: measure}} (grade and level counts).

Each :class:`Indicator` is then ``scale * numerator / denominator`` (or ``scale * numerator``) of
those measures, summed over whatever units form a row: the whole jurisdiction, a child region, an
enterprise. Ratios are computed from summed parts, never averaged. The same measure functions fill
the monthly snapshots (``enterprises/indicator_snapshots.py``) that month, quarter and year
dashboards read, so the live and the snapshot numbers agree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, FloatField, Func, Q
from django.db.models.functions import TruncDate, TruncMonth
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from regulator.scoping import enterprise_scope_q, region_scope_ids

TREND_MONTHS = 12
# At the lowest level the drill-down lists enterprises (by name); more than this many are cut.
MAX_ENTERPRISE_ROWS = 500


@dataclass(frozen=True)
class Indicator:
    """One number on the dashboard. ``help`` is its precise definition, shown as a tooltip."""

    key: str
    label: str
    unit: str
    help: str
    numerator: str
    denominator: str | None = None
    scale: float = 1.0
    digits: int = 0
    # True: a live figure (current state), sampled into the snapshots.
    live: bool = False
    group: str = ""
    # "up": a rise is an improvement (closed on time), "down": a rise is a deterioration (false alarms),
    # "": neither (hazards found: more can mean better investigation).
    better: str = ""

    def value(self, measures: dict) -> float | int | None:
        num = measures.get(self.numerator) or 0
        if self.denominator is None:
            result = num * self.scale
        else:
            den = measures.get(self.denominator) or 0
            if not den:
                return None
            result = num * self.scale / den
        return round(result, self.digits) if self.digits else int(round(result))

    def display(self, value) -> str:
        if value is None:
            return "—"
        text = f"{value:.{self.digits}f}" if self.digits else f"{value:,}"
        return f"{text}{self.unit}" if self.unit == "%" else f"{text} {self.unit}".rstrip()


@dataclass(frozen=True)
class IndicatorGroup:
    key: str
    label: str
    order: int
    indicators: list[Indicator]
    measure: Callable[[Context], None]
    # name -> {key: measure}: flows are summed over the period, live measures taken as last sampled.
    distributions: dict = field(default_factory=dict)


_GROUPS: dict[str, IndicatorGroup] = {}


def register(group: IndicatorGroup) -> None:
    _GROUPS[group.key] = group


def groups() -> list[IndicatorGroup]:
    return sorted(_GROUPS.values(), key=lambda g: (g.order, g.key))


def indicators() -> list[Indicator]:
    return [
        Indicator(**{**ind.__dict__, "group": g.key}) if not ind.group else ind
        for g in groups()
        for ind in g.indicators
    ]


class Epoch(Func):
    """Seconds since 1970 of a datetime, as a float, on PostgreSQL and SQLite."""

    output_field = FloatField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="EXTRACT(EPOCH FROM %(expressions)s)", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)", **extra
        )


def seconds_between(later: str, earlier: str):
    """An expression: ``later - earlier`` in seconds (both datetime fields)."""
    return Epoch(F(later)) - Epoch(F(earlier))


# --- periods ---------------------------------------------------------------------------------------


def month_start(d: date) -> date:
    return d.replace(day=1)


def add_months(d: date, months: int) -> date:
    index = d.year * 12 + d.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def previous_period(start: date, end: date) -> tuple[date, date]:
    """The period before ``[start, end]``: the previous calendar month / quarter / year when the period
    is exactly one (so February follows January, whatever their lengths), else as many days just before."""
    next_day = end + timedelta(days=1)
    if start.day == 1 and next_day.day == 1:
        months = (next_day.year - start.year) * 12 + next_day.month - start.month
        if months in (1, 3, 12):
            prev_start = add_months(start, -months)
            return prev_start, start - timedelta(days=1)
    length = (end - start).days + 1
    prev_end = start - timedelta(days=1)
    return prev_end - timedelta(days=length - 1), prev_end


def local_midnight(d: date) -> datetime:
    return timezone.make_aware(datetime.combine(d, time.min), timezone.get_default_timezone())


@dataclass
class Bucket:
    name: str
    start: date  # inclusive
    end: date  # inclusive

    @property
    def start_dt(self) -> datetime:
        return local_midnight(self.start)

    @property
    def end_dt(self) -> datetime:  # exclusive
        return local_midnight(self.end + timedelta(days=1))


# --- the computation context -----------------------------------------------------------------------

UNIT_REGION = "region"  # measures grouped by the enterprise's region
UNIT_ENTERPRISE = "enterprise"  # by enterprise (the lowest drill-down level)
UNIT_REGION_PARK = "region_park"  # by (region, park): what snapshots store


def is_whole_month(b: Bucket) -> bool:
    return b.start.day == 1 and (b.end + timedelta(days=1)).day == 1 and b.start.month == b.end.month


@dataclass
class Context:
    """What a group's ``measure`` works with: the scope, the buckets (periods), and where to put its sums.

    ``unit_buckets`` keep one value per unit (region, enterprise or region+park); ``total_buckets`` (calendar
    months, for trends) only the total. ``region_ids`` None and ``user`` None mean every enterprise (the
    snapshot builder)."""

    today: date
    unit_buckets: list
    total_buckets: list = field(default_factory=list)
    user: object = None
    unit: str = UNIT_REGION
    park_id: int | None = None
    region_ids: list[int] | None = None
    # Whether ctx.now() records the live state (into buckets that contain today).
    sampling: bool = True
    measures: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(float))))
    kinds: dict = field(default_factory=dict)
    queries: int = 0

    # scope

    def enterprise_q(self, prefix: str = "") -> Q:
        """Enterprises (reached through ``prefix``) in the chosen region subtree and the user's scope."""
        q = Q() if self.region_ids is None else Q(**{f"{prefix}region_id__in": self.region_ids})
        if self.park_id:
            q &= Q(**{f"{prefix}park_id": self.park_id})
        if self.user is None or (self.user.is_regulator and not self.user.is_superuser):
            # compute() checked the region is in the jurisdiction, so its subtree is the whole scope.
            return q
        scope = enterprise_scope_q(self.user, prefix)
        return q if scope is None else q & scope

    def unit_fields(self, prefix: str = "") -> list[str]:
        if self.unit == UNIT_ENTERPRISE:
            return [f"{prefix}id"]
        if self.unit == UNIT_REGION_PARK:
            return [f"{prefix}region_id", f"{prefix}park_id"]
        return [f"{prefix}region_id"]

    def _unit_of(self, row: dict, fields: list[str]):
        values = tuple(row.pop(f) for f in fields)
        return values if len(values) > 1 else values[0]

    # measure helpers

    def _add(self, bucket: str, unit, values: dict, kind: str) -> None:
        target = self.measures[bucket][unit]
        for name, value in values.items():
            self.kinds[name] = kind
            target[name] += float(value or 0)

    def flow(self, qs, date_field: str, prefix: str, **aggregates) -> None:
        """Sum ``aggregates`` over rows whose ``date_field`` falls in each bucket. Two queries at most
        (per unit, and by month for the trend), whatever the data size."""
        qs = qs.filter(self.enterprise_q(prefix))
        fields = self.unit_fields(prefix)
        is_date = qs.model._meta.get_field(date_field).get_internal_type() == "DateField"

        def lo(b):
            return b.start if is_date else b.start_dt

        def hi(b):
            return b.end + timedelta(days=1) if is_date else b.end_dt

        def in_range(first, last):
            return Q(**{f"{date_field}__gte": lo(first), f"{date_field}__lt": hi(last)})

        units = self.unit_buckets
        if len(units) > 2 and all(b.start == b.end for b in units):
            # Single days (the day-snapshot builder): one scan grouped by unit and local date.
            by_day = {b.start: b.name for b in units}
            day = F(date_field) if is_date else TruncDate(date_field, tzinfo=timezone.get_default_timezone())
            rows = (
                qs.filter(in_range(min(units, key=lambda b: b.start), max(units, key=lambda b: b.end)))
                .annotate(_day=day)
                .values(*fields, "_day")
                .annotate(**aggregates)
                .order_by()
            )
            for row in rows:
                name = by_day.get(row.pop("_day"))
                unit = self._unit_of(row, fields)
                if name is not None:
                    self._add(name, unit, row, "flow")
            self.queries += 1
        elif units and all(is_whole_month(b) for b in units):
            # Calendar months (the snapshot builder): one scan grouped by unit and month.
            by_month = {b.start: b.name for b in units}
            rows = (
                qs.filter(in_range(min(units, key=lambda b: b.start), max(units, key=lambda b: b.end)))
                .annotate(_month=TruncMonth(date_field))
                .values(*fields, "_month")
                .annotate(**aggregates)
                .order_by()
            )
            for row in rows:
                month = row.pop("_month")
                name = by_month.get(month.date() if isinstance(month, datetime) else month)
                unit = self._unit_of(row, fields)
                if name is not None:
                    self._add(name, unit, row, "flow")
            self.queries += 1
        elif units:
            per_bucket = {}
            for i, b in enumerate(units):
                for name, agg in aggregates.items():
                    per_bucket[f"b{i}__{name}"] = _with_filter(agg, in_range(b, b))
            first = min(units, key=lambda b: b.start)
            last = max(units, key=lambda b: b.end)
            rows = qs.filter(in_range(first, last)).values(*fields).annotate(**per_bucket).order_by()
            for row in rows:
                unit = self._unit_of(row, fields)
                for key, value in row.items():
                    i, name = key.split("__", 1)
                    self._add(units[int(i[1:])].name, unit, {name: value}, "flow")
            self.queries += 1
        if self.total_buckets:
            months = self.total_buckets
            rows = (
                qs.filter(in_range(months[0], months[-1]))
                .annotate(_month=TruncMonth(date_field))
                .values("_month")
                .annotate(**aggregates)
                .order_by()
            )
            for row in rows:
                self._add(f"{row.pop('_month'):%Y-%m}", None, row, "flow")
            self.queries += 1

    def stock(
        self, qs, prefix: str, born: str, died: str | None = None, *, count: str = "pk", distinct=False, **conditions
    ) -> None:
        """Count rows that exist at the end of each bucket: ``born`` before that instant and (``died`` empty
        or not before it). ``conditions``: name -> Q, each counted separately (``Q()`` for all);
        ``count``/``distinct`` count distinct values of a field instead of rows (an enterprise with three
        devices is one connected enterprise). One query."""
        qs = qs.filter(self.enterprise_q(prefix))
        fields = self.unit_fields(prefix)
        buckets = [*self.unit_buckets, *self.total_buckets]
        annotations = {}
        for i, b in enumerate(buckets):
            alive = Q(**{f"{born}__lt": b.end_dt})
            if died:
                alive &= Q(**{f"{died}__isnull": True}) | Q(**{f"{died}__gte": b.end_dt})
            for name, cond in conditions.items():
                annotations[f"b{i}__{name}"] = Count(count, filter=alive & cond, distinct=distinct)
        per_unit = len(self.unit_buckets)
        for row in qs.values(*fields).annotate(**annotations).order_by():
            unit = self._unit_of(row, fields)
            for key, value in row.items():
                i, name = key.split("__", 1)
                i = int(i[1:])
                self._add(buckets[i].name, unit if i < per_unit else None, {name: value}, "stock")
        self.queries += 1

    def now(self, qs, prefix: str, **aggregates) -> None:
        """The live state (device status, current grades), recorded into the buckets that contain today.
        Snapshots add each such sample to their month, so a past period gets the average over its samples."""
        if not self.sampling:
            return
        targets = [b for b in self.unit_buckets if b.start <= self.today <= b.end]
        totals = [b for b in self.total_buckets if b.start <= self.today <= b.end]
        if not targets and not totals:
            for name in aggregates:
                self.kinds[name] = "sample"
            return
        qs = qs.filter(self.enterprise_q(prefix))
        fields = self.unit_fields(prefix)
        for row in qs.values(*fields).annotate(**aggregates).order_by():
            unit = self._unit_of(row, fields)
            for b in targets:
                self._add(b.name, unit, dict(row), "sample")
            for b in totals:
                self._add(b.name, None, dict(row), "sample")
        self.queries += 1


def _with_filter(aggregate, condition: Q):
    """The same aggregate restricted to ``condition`` (combined with its own filter, if any)."""
    clone = aggregate.copy()
    clone.filter = condition if clone.filter is None else (clone.filter & condition)
    return clone


# --- scope checks ----------------------------------------------------------------------------------


def can_view_dashboard(user) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and (user.is_superuser or user.is_regulator or (user.is_park_manager and user.park_id))
    )


def default_region(user):
    """The root of the user's jurisdiction: their jurisdiction, their park's region, or the top region."""
    from regulator.models import Region

    if not can_view_dashboard(user):
        raise PermissionDenied
    if user.is_superuser and not (user.jurisdiction_id or user.park_id):
        return Region.objects.filter(parent__isnull=True).order_by("code").first()
    if user.is_park_manager and not user.is_superuser:
        return user.park.region
    return user.jurisdiction


def region_allowed(user, region) -> bool:
    if not can_view_dashboard(user):
        return False
    allowed = region_scope_ids(user)
    return allowed is None or region.pk in allowed


# --- the entry point -------------------------------------------------------------------------------


def region_json(region) -> dict:
    return {"code": region.code, "name": region.name, "level": int(region.level)}


def month_buckets(first: date, last: date) -> list[Bucket]:
    """Calendar months from the month of ``first`` to the month of ``last``."""
    out, m = [], month_start(first)
    while m <= last:
        out.append(Bucket(f"{m:%Y-%m}", m, add_months(m, 1) - timedelta(days=1)))
        m = add_months(m, 1)
    return out


def compute(region, start: date, end: date, *, user, today: date | None = None, mode: str = "auto") -> dict:
    """Every registered indicator for ``region``'s subtree (limited to what ``user`` may see) over the
    period ``start``..``end`` (both dates inclusive, local time Asia/Shanghai).

    Raises ``PermissionDenied`` if the user may not see dashboards (enterprise users, MLPS admins) or
    the region is outside their jurisdiction, ``ValueError`` if ``end < start``. A park manager sees
    their park's enterprises only.

    ``mode``: "snapshot" reads the monthly snapshots (``IndicatorSnapshot``: month, quarter, year and any
    period of whole months whose months all have snapshots) and, for any other period (custom dates),
    its whole months from them and its partial months from the day snapshots (``IndicatorDaySnapshot``,
    ``enterprises/dashboard_days.py``; not for a park manager, whose park is computed live); "live"
    computes from the events; "auto" (default) uses snapshots when they cover the period, the previous
    period and the trend, else live.
    Both give the same numbers for flows and stocks; live figures (device online rate, data timeliness,
    C/D credit and red/orange risk shares) are averages over the snapshot samples in snapshot mode, and
    the current state (for a period that contains today, else None) in live mode.

    Returns JSON-serialisable data::

        {
          "region": {"code", "name", "level"},
          "period": {"start": "YYYY-MM-DD", "end": "YYYY-MM-DD", "previous_start", "previous_end",
                     "live": bool (the period contains today), "mode": "snapshot" | "live",
                     "snapshot_at": ISO datetime of the newest snapshot used, or None},
          "indicators": [{"key", "group", "label", "value", "unit", "previous", "display",
                          "previous_display", "change", "help", "live", "better" ("up" | "down" | "")}, ...],
          "distributions": {"credit_grade": {"A".."D", "none": count}, "risk_grade": {"red", "orange",
                            "yellow", "blue", "none": count}, "alerts_by_level": {"1".."4": count}},
          "trend": {key: [{"period": "YYYY-MM", "value": x}, ... 12 months ending with end's month]},
          "children": [{"kind": "region", "region": {"code", "name", "level"}, "indicators": {key: value}}
                       | {"kind": "enterprise", "enterprise": {"id", "name"}, "indicators": {key: value}}],
          "children_kind": "region" | "enterprise",
          "labels": {key: label},    # for the children table's columns
        }

    - ``value`` is a number (int, or float rounded to the indicator's digits) or None when undefined
      (a ratio with an empty denominator, e.g. no hazard closed, or no live sample in the period);
    - ``previous`` is the same indicator over the previous period: the previous calendar month, quarter
      or year when the period is exactly one, otherwise the same number of days just before;
    - ``change`` is ``value - previous`` (percentage points for rates) or None;
    - ``display`` is ``value`` formatted with its unit ("85.0%", "12 项", "—" for None);
    - ``help`` is the indicator's definition (how the number is computed); ``live`` marks live figures;
    - ``trend`` holds one point per calendar month for the 12 months ending with the month of ``end``
      (the current month so far, for the current month);
    - distributions: alerts by level over the period; credit and risk grades as last sampled in the
      period (snapshot mode) or now (live mode);
    - ``children``: one row per child region of ``region`` (plus one "本级" row, code = region's code,
      for enterprises registered directly at ``region``), or, when ``region`` has no child regions or the
      user is a park manager, one row per enterprise (at most 500, by name). Values for the period only;
      enterprise rows are always computed live.
    """
    from regulator.models import Region

    if end < start:
        raise ValueError("end before start")
    if not region_allowed(user, region):
        raise PermissionDenied
    today = today or timezone.localdate()
    subtree = list(
        Region.objects.filter(path__startswith=region.path).values_list("id", "path", "code", "name", "level")
    )
    child_regions = [r for r in subtree if r[0] != region.pk and r[1].count("/") == region.path.count("/") + 1]
    park_id = user.park_id if (user.is_park_manager and not user.is_superuser) else None
    unit = UNIT_ENTERPRISE if park_id or not child_regions else UNIT_REGION
    cur = Bucket("cur", start, end)
    prev = Bucket("prev", *previous_period(start, end))
    trend = month_buckets(add_months(month_start(end), -(TREND_MONTHS - 1)), end)
    region_ids = [r[0] for r in subtree]
    snapshot_at = None
    used = "live"
    if mode in ("auto", "snapshot"):
        from enterprises.indicator_snapshots import read_snapshots

        snap = read_snapshots(
            cur, prev, trend, region_id=region.pk, child_ids=[r[0] for r in child_regions], park_id=park_id, today=today
        )
        if snap is None and park_id is None:
            # Any other period (a custom range): whole months from the monthly rows, the rest from day rows.
            from enterprises.dashboard_days import read_days

            snap = read_days(
                cur, prev, trend, region_id=region.pk, child_ids=[r[0] for r in child_regions], today=today
            )
        if snap is None and mode == "snapshot":
            raise ValueError("no snapshots for this period")
        if snap is not None:
            ctx, snapshot_at = snap
            used = "snapshot"
    if used == "live":
        # The trend months are whole months: read them from snapshots when there are any.
        snap_trend = None
        if mode == "auto":
            from enterprises.indicator_snapshots import read_trend

            snap_trend = read_trend(trend, region_id=region.pk, park_id=park_id, today=today)
        ctx = Context(
            today=today,
            unit_buckets=[cur, prev],
            total_buckets=[] if snap_trend else trend,
            user=user,
            unit=UNIT_REGION,
            park_id=park_id,
            region_ids=region_ids,
        )
        for group in groups():
            group.measure(ctx)
        if snap_trend:
            for month, values in snap_trend.items():
                ctx.measures[month][None].update(values)
    all_indicators = indicators()

    def totals(bucket: str) -> dict:
        summed: dict = defaultdict(float)
        for values in ctx.measures.get(bucket, {}).values():
            for name, v in values.items():
                summed[name] += v
        return summed

    cur_totals, prev_totals = totals("cur"), totals("prev")
    rows = []
    for ind in all_indicators:
        value = ind.value(cur_totals)
        previous = ind.value(prev_totals)
        change = None
        if value is not None and previous is not None:
            change = round(value - previous, ind.digits) if ind.digits else value - previous
        rows.append(
            {
                "key": ind.key,
                "group": ind.group,
                "label": str(ind.label),
                "value": value,
                "unit": str(ind.unit),
                "previous": previous,
                "display": ind.display(value),
                "previous_display": ind.display(previous),
                "change": change,
                "help": str(ind.help),
                "live": ind.live,
                "better": ind.better,
            }
        )
    trend_out = {
        ind.key: [{"period": m.name, "value": ind.value(totals(m.name))} for m in trend] for ind in all_indicators
    }
    last = totals("cur_last") if used == "snapshot" else cur_totals
    distributions = {
        name: {
            key: int(round((last if ctx.kinds.get(m) == "sample" else cur_totals).get(m, 0))) for key, m in spec.items()
        }
        for group in groups()
        for name, spec in group.distributions.items()
    }
    if unit == UNIT_ENTERPRISE:
        children = _enterprise_children(user, park_id, region_ids, cur, today, all_indicators)
    else:
        children = _region_children(ctx, region, subtree, child_regions, all_indicators)
    return {
        "region": region_json(region),
        "period": {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "previous_start": prev.start.isoformat(),
            "previous_end": prev.end.isoformat(),
            "live": start <= today <= end,
            "mode": used,
            "snapshot_at": snapshot_at.isoformat() if snapshot_at else None,
        },
        "indicators": rows,
        "distributions": distributions,
        "trend": trend_out,
        "children": children,
        "children_kind": unit,
        "labels": {ind.key: str(ind.label) for ind in all_indicators},
    }


def _enterprise_children(user, park_id, region_ids, cur: Bucket, today, all_indicators) -> list[dict]:
    """One row per enterprise, computed live for the period only (a township or a park: few rows)."""
    from enterprises.models import Enterprise

    ctx = Context(
        today=today, unit_buckets=[cur], user=user, unit=UNIT_ENTERPRISE, park_id=park_id, region_ids=region_ids
    )
    for group in groups():
        group.measure(ctx)
    per_unit = ctx.measures.get("cur", {})
    names = dict(
        Enterprise.objects.filter(ctx.enterprise_q())
        .order_by("name", "id")
        .values_list("pk", "name")[:MAX_ENTERPRISE_ROWS]
    )
    return [
        {
            "kind": "enterprise",
            "enterprise": {"id": pk, "name": name},
            "indicators": {ind.key: ind.value(per_unit.get(pk, {})) for ind in all_indicators},
        }
        for pk, name in names.items()
    ]


def _region_children(ctx: Context, region, subtree, child_regions, all_indicators) -> list[dict]:
    per_unit = ctx.measures.get("cur", {})
    path_of = {r[0]: r[1] for r in subtree}
    rows: dict = {}
    order = []
    own = (region.pk, region.path, region.code, region.name, region.level)
    for child in [own, *sorted(child_regions, key=lambda r: r[2])]:
        rows[child[0]] = defaultdict(float)
        order.append(child)
    for unit, values in per_unit.items():
        path = path_of.get(unit)
        if path is None:
            continue
        target = region.pk
        for child in child_regions:
            if path.startswith(child[1]):
                target = child[0]
                break
        for name, v in values.items():
            rows[target][name] += v
    result = []
    for child in order:
        measures = rows[child[0]]
        if child[0] == region.pk and not measures.get("enterprises_total"):
            continue  # no enterprises registered directly at this level
        name = child[3] if child[0] != region.pk else _("本级")
        result.append(
            {
                "kind": "region",
                "region": {"code": child[2], "name": name, "level": int(child[4])},
                "indicators": {ind.key: ind.value(measures) for ind in all_indicators},
            }
        )
    return result


GROUP_LABELS = {
    "enterprises": gettext_lazy("企业与风险"),
    "devices": gettext_lazy("监测接入"),
    "hazards": gettext_lazy("隐患治理"),
    "enforcement": gettext_lazy("执法检查"),
    "alerts": gettext_lazy("监测预警"),
}


# --- the registry's own group ----------------------------------------------------------------------

RISK_GRADES = ("red", "orange", "yellow", "blue")


def enterprise_measures(ctx: Context) -> None:
    from enterprises.models import Enterprise

    ctx.stock(
        Enterprise.objects.all(),
        "",
        born="created_at",
        enterprises_total=Q(),
        enterprises_key=Q(is_key=True),
    )
    ctx.now(
        Enterprise.objects.all(),
        "",
        high_risk=Count("pk", filter=Q(risk_grade__in=("red", "orange"))),
        graded=Count("pk", filter=Q(risk_grade__in=RISK_GRADES)),
        **{f"risk_{grade}": Count("pk", filter=Q(risk_grade=grade)) for grade in RISK_GRADES},
        risk_none=Count("pk", filter=~Q(risk_grade__in=RISK_GRADES)),
    )


def register_enterprise_indicators() -> None:
    register(
        IndicatorGroup(
            key="enterprises",
            label=gettext_lazy("企业与风险"),
            order=10,
            measure=enterprise_measures,
            distributions={"risk_grade": {grade: f"risk_{grade}" for grade in (*RISK_GRADES, "none")}},
            indicators=[
                Indicator(
                    "enterprises_total",
                    gettext_lazy("监管企业"),
                    gettext_lazy("家"),
                    gettext_lazy("期末在册企业数：建档时间早于统计期末的辖区内企业（含停产、歇业）。"),
                    "enterprises_total",
                ),
                Indicator(
                    "enterprises_key",
                    gettext_lazy("重点企业"),
                    gettext_lazy("家"),
                    gettext_lazy("期末在册企业中标记为重点企业的数量。"),
                    "enterprises_key",
                ),
                Indicator(
                    "high_risk_share",
                    gettext_lazy("红橙风险企业占比"),
                    "%",
                    gettext_lazy(
                        "风险等级为重大（红）或较大（橙）的企业数 ÷ 已评定风险等级的企业数 × 100%。"
                        "采样值：每15分钟记录一次，统计期数值为期内各次采样分子之和 ÷ 分母之和（时间平均）；"
                        "所选周期无快照时为当前实时值。"
                    ),
                    "high_risk",
                    "graded",
                    scale=100,
                    digits=1,
                    live=True,
                    better="down",
                ),
            ],
        )
    )
