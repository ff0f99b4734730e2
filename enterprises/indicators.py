"""Supervision indicators (监管指标) for a jurisdiction and a period, assembled from groups that apps
register at start-up, like the dossier sections (``enterprises/dossier.py``).

An app adds its group in ``AppConfig.ready()``::

    from enterprises.indicators import Indicator, IndicatorGroup, register
    register(IndicatorGroup(key="hazards", label=_("隐患治理"), order=20,
                            indicators=[Indicator("hazards_found", _("发现隐患"), _("项"), _("..."), "found")],
                            measure=hazard_measures))

``measure(ctx)`` fills additive *measures* (counts and sums) through the :class:`Context`
helpers, with a handful of aggregated queries whose number does not depend on the number of rows:

- ``ctx.flow(qs, date_field, unit_prefix, **aggregates)``: events dated in a period (hazards found,
  alerts raised): one query grouped by unit for the period and the previous period, one grouped by
  month for the 12-month trend;
- ``ctx.stock(qs, unit_prefix, born, died, **conditions)``: things that exist at an instant (registered
  enterprises, hazards under listed supervision): counted at the period end, the previous period end
  and each trend month end, in one query;
- ``ctx.now(qs, unit_prefix, **aggregates)``: live state (device status): only for a period that
  contains today, without previous period or trend;
- ``ctx.distribution(name, {key: count})``.

Each :class:`Indicator` is then ``scale * numerator / denominator`` (or ``scale * numerator``) of
those measures, summed over whatever units form a row: the whole jurisdiction, a child region, an
enterprise. Ratios are computed from summed parts, never averaged.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, FloatField, Func, Q
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from regulator.scoping import enterprise_scope_q, region_scope_ids

log = logging.getLogger(__name__)

TREND_MONTHS = 12
# At the lowest level the drill-down lists enterprises; more than this many are cut (largest first).
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
    # True: a live figure (current state), available only for a period that contains today.
    live: bool = False
    group: str = ""

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


@dataclass
class Context:
    """What a group's ``measure`` works with: the scope, the periods, and where to put its sums."""

    region: object
    user: object
    start: date
    end: date
    today: date
    # "region": measures are grouped by the enterprise's region; "enterprise": by enterprise.
    unit: str = "region"
    park_id: int | None = None
    region_ids: list[int] | None = None
    measures: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(float))))
    distributions: dict = field(default_factory=dict)
    queries: int = 0

    def __post_init__(self):
        self.cur = Bucket("cur", self.start, self.end)
        self.prev = Bucket("prev", *previous_period(self.start, self.end))
        last = month_start(self.end)
        self.months = [
            Bucket(
                f"{m:%Y-%m}",
                m,
                add_months(m, 1) - timedelta(days=1),
            )
            for m in (add_months(last, -i) for i in range(TREND_MONTHS - 1, -1, -1))
        ]
        self.live = self.start <= self.today <= self.end

    # scope

    def enterprise_q(self, prefix: str = "") -> Q:
        """Enterprises (reached through ``prefix``) in the chosen region subtree and the user's scope."""
        q = Q(**{f"{prefix}region_id__in": self.region_ids})
        if self.park_id:
            q &= Q(**{f"{prefix}park_id": self.park_id})
        if self.user.is_regulator and not self.user.is_superuser:
            # compute() checked the region is in the jurisdiction, so its subtree is the whole scope.
            return q
        scope = enterprise_scope_q(self.user, prefix)
        return q if scope is None else q & scope

    def unit_field(self, prefix: str = "") -> str:
        return f"{prefix}id" if self.unit == "enterprise" else f"{prefix}region_id"

    # measure helpers

    def _add(self, bucket: str, unit, values: dict) -> None:
        target = self.measures[bucket][unit]
        for name, value in values.items():
            target[name] += float(value or 0)

    def flow(self, qs, date_field: str, prefix: str, **aggregates) -> None:
        """Sum ``aggregates`` over rows whose ``date_field`` falls in the period, the previous period and
        each trend month. ``aggregates`` are Count/Sum expressions; two queries whatever the data size."""
        qs = qs.filter(self.enterprise_q(prefix))
        unit = self.unit_field(prefix)
        is_date = qs.model._meta.get_field(date_field).get_internal_type() == "DateField"

        def lo(b):
            return b.start if is_date else b.start_dt

        def hi(b):
            return b.end + timedelta(days=1) if is_date else b.end_dt

        def in_bucket(b):
            return Q(**{f"{date_field}__gte": lo(b), f"{date_field}__lt": hi(b)})

        per_bucket = {}
        for b in (self.cur, self.prev):
            for name, agg in aggregates.items():
                per_bucket[f"{b.name}__{name}"] = _with_filter(agg, in_bucket(b))
        first = min(self.prev.start, self.cur.start)
        rows = (
            qs.filter(**{f"{date_field}__gte": lo(Bucket("", first, first)), f"{date_field}__lt": hi(self.cur)})
            .values(unit)
            .annotate(**per_bucket)
            .order_by()
        )
        for row in rows:
            u = row.pop(unit)
            for key, value in row.items():
                b, name = key.split("__", 1)
                self._add(b, u, {name: value})
        self.queries += 1
        months = (
            qs.filter(in_bucket(Bucket("", self.months[0].start, self.months[-1].end)))
            .annotate(_month=TruncMonth(date_field))
            .values("_month")
            .annotate(**aggregates)
            .order_by()
        )
        for row in months:
            m = row.pop("_month")
            self._add(f"{m:%Y-%m}", None, row)
        self.queries += 1

    def stock(
        self, qs, prefix: str, born: str, died: str | None = None, *, count: str = "pk", distinct=False, **conditions
    ) -> None:
        """Count rows that exist at the end of the period, of the previous period and of each trend month:
        ``born`` before that instant and (``died`` empty or not before it). ``conditions``: name -> Q, each
        counted separately (``Q()`` for all); ``count``/``distinct`` count distinct values of a field
        instead of rows (an enterprise with three devices is one connected enterprise). One query."""
        qs = qs.filter(self.enterprise_q(prefix))
        unit = self.unit_field(prefix)
        annotations = {}
        buckets = [self.cur, self.prev, *self.months]
        for i, b in enumerate(buckets):
            alive = Q(**{f"{born}__lt": b.end_dt})
            if died:
                alive &= Q(**{f"{died}__isnull": True}) | Q(**{f"{died}__gte": b.end_dt})
            for name, cond in conditions.items():
                annotations[f"b{i}__{name}"] = Count(count, filter=alive & cond, distinct=distinct)
        for row in qs.values(unit).annotate(**annotations).order_by():
            u = row.pop(unit)
            for key, value in row.items():
                i, name = key.split("__", 1)
                b = buckets[int(i[1:])]
                # Trend points are totals; only the period buckets keep the per-unit split.
                self._add(b.name, u if b.name in ("cur", "prev") else None, {name: value})
        self.queries += 1

    def now(self, qs, prefix: str, **aggregates) -> None:
        """Live measures (current state) for the period, only when the period contains today."""
        if not self.live:
            return
        qs = qs.filter(self.enterprise_q(prefix))
        unit = self.unit_field(prefix)
        for row in qs.values(unit).annotate(**aggregates).order_by():
            u = row.pop(unit)
            self._add("cur", u, row)
        self.queries += 1

    def distribution(self, name: str, counts: dict) -> None:
        self.distributions[name] = counts


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


def compute(region, start: date, end: date, *, user, today: date | None = None) -> dict:
    """Every registered indicator for ``region``'s subtree (limited to what ``user`` may see) over the
    period ``start``..``end`` (both dates inclusive, local time Asia/Shanghai).

    Raises ``PermissionDenied`` if the user may not see dashboards (enterprise users, MLPS admins) or
    the region is outside their jurisdiction, ``ValueError`` if ``end < start``. A park manager sees
    their park's enterprises only, whatever region is asked for in their park's region.

    Returns JSON-serialisable data::

        {
          "region": {"code", "name", "level"},
          "period": {"start": "YYYY-MM-DD", "end": "YYYY-MM-DD",
                     "previous_start", "previous_end", "live": bool},
          "indicators": [{"key", "group", "label", "value", "unit", "previous", "display",
                          "previous_display", "change", "help", "live"}, ...],
          "distributions": {"credit_grade": {grade: count}, "risk_grade": {grade: count},
                            "alerts_by_level": {level: count}},
          "trend": {key: [{"period": "YYYY-MM", "value": x}, ... 12 months ending with end's month]},
          "children": [{"kind": "region", "region": {"code", "name", "level"}, "indicators": {key: value}}
                       | {"kind": "enterprise", "enterprise": {"id", "name"}, "indicators": {key: value}}],
          "children_kind": "region" | "enterprise",
          "labels": {key: label},    # for the children table's columns
        }

    - ``value`` is a number (int, or float rounded to the indicator's digits) or None when undefined
      (a ratio with an empty denominator, or a live figure for a period that does not contain today);
    - ``previous`` is the same indicator over the previous period: the previous calendar month, quarter
      or year when the period is exactly one, otherwise the same number of days just before; None for
      live figures;
    - ``change`` is ``value - previous`` (percentage points for rates) or None;
    - ``display`` is ``value`` formatted with its unit ("85.0%", "12 项", "—" for None);
    - ``help`` is the indicator's definition (how the number is computed);
    - ``trend`` holds one point per calendar month for the 12 months ending with the month of ``end``
      (the current month so far, for the current month); live figures have no trend;
    - ``children``: one row per child region of ``region`` (plus one "本级" row, code = region's code,
      for enterprises registered directly at ``region``), or, when ``region`` has no child regions or the
      user is a park manager, one row per enterprise (at most 500, by number of enterprises' hazards).
      Drill-down values are for the period only.
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
    unit = "enterprise" if park_id or not child_regions else "region"
    ctx = Context(
        region=region,
        user=user,
        start=start,
        end=end,
        today=today,
        unit=unit,
        park_id=park_id,
        region_ids=[r[0] for r in subtree],
    )
    for group in groups():
        group.measure(ctx)
    all_indicators = indicators()

    def totals(bucket: str) -> dict:
        summed: dict = defaultdict(float)
        for values in ctx.measures.get(bucket, {}).values():
            for name, v in values.items():
                summed[name] += v
        return summed

    cur, prev = totals("cur"), totals("prev")
    rows = []
    for ind in all_indicators:
        value = ind.value(cur)
        previous = None if ind.live else ind.value(prev)
        if ind.live and not ctx.live:
            value = None
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
            }
        )
    trend = {}
    for ind in all_indicators:
        if ind.live:
            continue
        trend[ind.key] = [{"period": m.name, "value": ind.value(totals(m.name))} for m in ctx.months]

    children = _children(ctx, region, subtree, child_regions, all_indicators)
    return {
        "region": region_json(region),
        "period": {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "previous_start": ctx.prev.start.isoformat(),
            "previous_end": ctx.prev.end.isoformat(),
            "live": ctx.live,
        },
        "indicators": rows,
        "distributions": ctx.distributions,
        "trend": trend,
        "children": children,
        "children_kind": unit,
        "labels": {ind.key: str(ind.label) for ind in all_indicators},
    }


def _children(ctx: Context, region, subtree, child_regions, all_indicators) -> list[dict]:
    per_unit = ctx.measures.get("cur", {})
    if ctx.unit == "enterprise":
        from enterprises.models import Enterprise

        units = [u for u in per_unit if u is not None]
        names = dict(Enterprise.objects.filter(pk__in=units[: MAX_ENTERPRISE_ROWS * 4]).values_list("pk", "name"))
        ranked = sorted(units, key=lambda u: (-per_unit[u].get("enterprises_total", 0), names.get(u, "")))
        ranked = [u for u in ranked if u in names][:MAX_ENTERPRISE_ROWS]
        ranked.sort(key=lambda u: names[u])
        return [
            {
                "kind": "enterprise",
                "enterprise": {"id": u, "name": names[u]},
                "indicators": {ind.key: _live_value(ctx, ind, per_unit[u]) for ind in all_indicators},
            }
            for u in ranked
        ]
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
        result.append(
            {
                "kind": "region",
                "region": {
                    "code": child[2],
                    "name": child[3] if child[0] != region.pk else _("本级"),
                    "level": child[4],
                },
                "indicators": {ind.key: _live_value(ctx, ind, measures) for ind in all_indicators},
            }
        )
    return result


def _live_value(ctx: Context, ind: Indicator, measures: dict):
    if ind.live and not ctx.live:
        return None
    return ind.value(measures)


# Group labels used by the page (the app groups register their own indicators).
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
    )
    counts = dict(
        Enterprise.objects.filter(ctx.enterprise_q()).values_list("risk_grade").annotate(n=Count("pk")).order_by()
    )
    ctx.queries += 1
    dist = {grade: counts.get(grade, 0) for grade in RISK_GRADES}
    dist["none"] = sum(n for g, n in counts.items() if g not in RISK_GRADES)
    ctx.distribution("risk_grade", dist)


def register_enterprise_indicators() -> None:
    register(
        IndicatorGroup(
            key="enterprises",
            label=gettext_lazy("企业与风险"),
            order=10,
            measure=enterprise_measures,
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
                        "当前风险等级为重大（红）或较大（橙）的企业数 ÷ 已评定风险等级的企业数 × 100%。实时数据。"
                    ),
                    "high_risk",
                    "graded",
                    scale=100,
                    digits=1,
                    live=True,
                ),
            ],
        )
    )
