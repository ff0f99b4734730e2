"""Reads of the hazards app, always scoped to the user: lists, the timeline, indicators the
dashboard reuses, and self-inspection checklists that are due or overdue."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import (
    Avg,
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone

from hazards.choices import OPEN_STATES, OVERDUE_STATES, HazardStatus, RunStatus
from hazards.models import ChecklistRun, ChecklistTemplate, Hazard
from regulator.scoping import scope

logger = logging.getLogger(__name__)


def hazards_visible_to(user):
    """Every hazard the user may see (404 for the rest)."""
    return scope(Hazard.objects.all(), user, prefix="enterprise__")


def hazard_list(user, *, filters: dict | None = None, today: date | None = None):
    """The regulator/enterprise list with the usual filters, newest first."""
    from hazards.filtersets import HazardFilterSet

    qs = hazards_visible_to(user).select_related("enterprise", "enterprise__region")
    if filters is not None:
        qs = HazardFilterSet(filters, queryset=qs, request=None).qs
    return qs.order_by("-reported_at", "-id")


def overdue_q(today: date | None = None) -> Q:
    today = today or timezone.localdate()
    return Q(status__in=OVERDUE_STATES, due_date__lt=today)


def hazards_by_state(user, enterprise_ids=None):
    """Open hazards of an enterprise user's enterprises grouped by state (the phone view)."""
    qs = hazards_visible_to(user).select_related("enterprise")
    if enterprise_ids is not None:
        qs = qs.filter(enterprise_id__in=enterprise_ids)
    groups = {}
    for status in (HazardStatus.REPORTED, HazardStatus.CONFIRMED, HazardStatus.RECTIFYING, HazardStatus.SUBMITTED):
        groups[status] = list(qs.filter(status=status).order_by("due_date", "-reported_at")[:200])
    return groups


def hazard_timeline(hazard):
    return hazard.transitions.select_related("user").order_by("at", "id")


# --- indicators ------------------------------------------------------------------------------

_DIMENSIONS = {
    "region": ("enterprise__region_id", "enterprise__region__name"),
    "industry": ("enterprise__industry_id", "enterprise__industry__name"),
    "source": ("source", None),
    "month": ("month", None),
    "grade": ("grade", None),
}


@dataclass
class Indicators:
    found: int
    closed: int
    open: int
    overdue: int
    rectification_rate: float | None  # closed / (found - dismissed)
    on_time_rate: float | None  # closed on time / closed
    avg_rectification_days: float | None  # reported -> closed

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def _ratio(num, den):
    return round(num / den, 4) if den else None


def _aggregates(today: date):
    overdue = Q(status__in=list(OVERDUE_STATES), due_date__lt=today)
    return {
        "found": Count("id"),
        "dismissed": Count("id", filter=Q(status=HazardStatus.DISMISSED)),
        "closed": Count("id", filter=Q(status=HazardStatus.CLOSED)),
        "open": Count("id", filter=Q(status__in=list(OPEN_STATES))),
        "overdue": Count("id", filter=overdue),
        "on_time": Count("id", filter=Q(status=HazardStatus.CLOSED, closed_on_time=True)),
        "avg_duration": Avg(
            ExpressionWrapper(F("closed_at") - F("reported_at"), output_field=DurationField()),
            filter=Q(status=HazardStatus.CLOSED),
        ),
    }


def _to_indicators(row: dict) -> Indicators:
    duration = row.get("avg_duration")
    days = None
    if duration is not None:
        # SQLite returns microseconds as a number, PostgreSQL a timedelta.
        seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration) / 1e6
        days = round(seconds / 86400, 1)
    effective = row["found"] - row["dismissed"]
    return Indicators(
        found=row["found"],
        closed=row["closed"],
        open=row["open"],
        overdue=row["overdue"],
        rectification_rate=_ratio(row["closed"], effective),
        on_time_rate=_ratio(row["on_time"], row["closed"]),
        avg_rectification_days=days,
    )


def hazard_indicators(user, *, since=None, until=None, qs=None, today: date | None = None) -> Indicators:
    """Totals for what the user sees, for hazards reported in [since, until)."""
    today = today or timezone.localdate()
    qs = hazards_visible_to(user) if qs is None else qs
    if since is not None:
        qs = qs.filter(reported_at__gte=since)
    if until is not None:
        qs = qs.filter(reported_at__lt=until)
    return _to_indicators(qs.aggregate(**_aggregates(today)))


def cached_indicators(user, ttl: int = 120) -> Indicators:
    """The list page's headline figures; cached briefly, they aggregate the whole scope."""
    from django.core.cache import cache

    key = f"hazards:indicators:{user.pk}:{timezone.localdate().isoformat()}"
    try:
        cached = cache.get(key)
    except Exception:  # a cache outage must not take the list page down
        cached = None
    if cached is None:
        cached = hazard_indicators(user).as_dict()
        try:
            cache.set(key, cached, ttl)
        except Exception:
            logger.warning("could not cache hazard indicators", exc_info=True)
    return Indicators(**cached)


def hazard_indicators_by(user, dimension: str, *, since=None, until=None, today: date | None = None) -> list[dict]:
    """Indicators grouped by region, industry, source, grade or month (of reporting)."""
    if dimension not in _DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}")
    today = today or timezone.localdate()
    qs = hazards_visible_to(user)
    if since is not None:
        qs = qs.filter(reported_at__gte=since)
    if until is not None:
        qs = qs.filter(reported_at__lt=until)
    key, label = _DIMENSIONS[dimension]
    if dimension == "month":
        qs = qs.annotate(month=TruncMonth("reported_at"))
    values = [key] + ([label] if label else [])
    rows = qs.values(*values).annotate(**_aggregates(today)).order_by(key)
    result = []
    for row in rows:
        item = _to_indicators(row).as_dict()
        value = row[key]
        if dimension == "month" and value is not None:
            value = (timezone.localtime(value) if hasattr(value, "tzinfo") and value.tzinfo else value).strftime(
                "%Y-%m"
            )
        item["key"] = value
        item["label"] = row[label] if label else _label_for(dimension, value)
        result.append(item)
    return result


def _label_for(dimension: str, value) -> str:
    from hazards.choices import HazardGrade, HazardSource

    if dimension == "source":
        return str(HazardSource(value).label) if value in HazardSource.values else str(value)
    if dimension == "grade":
        return str(HazardGrade(value).label) if value in HazardGrade.values else str(value)
    return str(value)


def enterprise_hazard_summary(enterprise, today: date | None = None) -> dict:
    """The dossier section: open, overdue, closed this year, rectification rate."""
    today = today or timezone.localdate()
    qs = Hazard.objects.filter(enterprise=enterprise)
    year_start = timezone.make_aware(timezone.datetime(today.year, 1, 1))
    row = qs.aggregate(
        open=Count("id", filter=Q(status__in=list(OPEN_STATES))),
        overdue=Count("id", filter=Q(status__in=list(OVERDUE_STATES), due_date__lt=today)),
        major_open=Count("id", filter=Q(status__in=list(OPEN_STATES), grade="major")),
        listed=Count("id", filter=Q(status__in=list(OPEN_STATES), listed=True)),
        closed_this_year=Count("id", filter=Q(status=HazardStatus.CLOSED, closed_at__gte=year_start)),
        found=Count("id", filter=~Q(status=HazardStatus.DISMISSED)),
        closed=Count("id", filter=Q(status=HazardStatus.CLOSED)),
    )
    checklist_overdue = len(checklist_status_for_enterprise(enterprise, today=today, only_overdue=True))
    return {
        "open": row["open"],
        "overdue": row["overdue"],
        "major_open": row["major_open"],
        "listed": row["listed"],
        "closed_this_year": row["closed_this_year"],
        "rectification_rate": _ratio(row["closed"], row["found"]),
        "checklists_overdue": checklist_overdue,
    }


# --- self-inspection -------------------------------------------------------------------------


def templates_for_enterprise(enterprise):
    """Active templates of the enterprise's industry or any ancestor of it (or for all industries)."""
    codes = []
    node = enterprise.industry
    while node is not None:
        codes.append(node.code)
        node = node.parent
    return ChecklistTemplate.objects.filter(active=True).filter(Q(industry__isnull=True) | Q(industry__code__in=codes))


def checklist_status_for_enterprise(enterprise, *, today: date | None = None, only_overdue: bool = False) -> list[dict]:
    """Each applicable template with its last completed run and next due date.

    A template never run is due ``cycle_days`` after it (or the enterprise) entered the system.
    """
    today = today or timezone.localdate()
    result = []
    last_runs = dict(
        ChecklistRun.objects.filter(enterprise=enterprise, status=RunStatus.COMPLETED)
        .values("template_id")
        .annotate(last=Max("completed_at"))
        .values_list("template_id", "last")
    )
    open_runs = dict(
        ChecklistRun.objects.filter(enterprise=enterprise, status=RunStatus.IN_PROGRESS).values_list(
            "template_id", "pk"
        )
    )
    for template in templates_for_enterprise(enterprise).prefetch_related("items"):
        last = last_runs.get(template.pk)
        if last is not None:
            next_due = timezone.localdate(last) + timedelta(days=template.cycle_days)
        else:
            start = max(template.created_at, enterprise.created_at)
            next_due = timezone.localdate(start) + timedelta(days=template.cycle_days)
        overdue = next_due < today
        if only_overdue and not overdue:
            continue
        result.append(
            {
                "template": template,
                "last_completed": last,
                "next_due": next_due,
                "overdue": overdue,
                "open_run_id": open_runs.get(template.pk),
            }
        )
    return result


def overdue_checklists(user, *, today: date | None = None):
    """(enterprise, template, last completed, next due) for every overdue checklist in scope.

    One query per active template: enterprises of a matching industry annotated with their last
    completed run, keeping those never run in time.
    """
    from enterprises.models import Enterprise

    today = today or timezone.localdate()
    rows = []
    for template in ChecklistTemplate.objects.filter(active=True).select_related("industry"):
        enterprises = scope(Enterprise.objects.all(), user)
        if template.industry_id:
            code = template.industry.code
            enterprises = enterprises.filter(
                Q(industry__code__startswith=code) if code[0].isdigit() else _section_q(code)
            )
        last = (
            ChecklistRun.objects.filter(enterprise=OuterRef("pk"), template=template, status=RunStatus.COMPLETED)
            .order_by("-completed_at")
            .values("completed_at")[:1]
        )
        cutoff = timezone.make_aware(
            timezone.datetime.combine(today - timedelta(days=template.cycle_days), timezone.datetime.min.time())
        )
        template_start = template.created_at
        qs = (
            enterprises.annotate(last_completed=Subquery(last))
            .annotate(
                baseline=Coalesce(
                    "last_completed",
                    Case(When(created_at__gt=template_start, then=F("created_at")), default=Value(template_start)),
                )
            )
            .filter(baseline__lt=cutoff)
            .select_related("region")
            .order_by("region__code", "name")
        )
        for ent in qs[:500]:
            base = ent.last_completed or max(ent.created_at, template_start)
            rows.append(
                {
                    "enterprise": ent,
                    "template": template,
                    "last_completed": ent.last_completed,
                    "next_due": timezone.localdate(base) + timedelta(days=template.cycle_days),
                }
            )
    rows.sort(key=lambda r: r["next_due"])
    return rows


def _section_q(code: str) -> Q:
    # A section letter (e.g. "C"): its divisions are the 2-digit children; match by the tree.
    from enterprises.models import Industry

    division_codes = list(Industry.objects.filter(parent__code=code).values_list("code", flat=True))
    q = Q(industry__code=code)
    for dc in division_codes:
        q |= Q(industry__code__startswith=dc)
    return q
