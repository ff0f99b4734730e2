"""Every write of enforcement: plans, draws, inspections, documents, credit and the dishonesty list."""

from __future__ import annotations

import json
import logging
import secrets
import sys
from contextlib import ExitStack
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from enforcement import drawing
from enforcement import signing as sm2
from enforcement.bulk import insert_new, insert_rows, insert_select_columns
from enforcement.choices import (
    DEFAULT_FREQUENCY,
    DOCUMENT_ABBREVIATIONS,
    INSPECTION_TRANSITIONS,
    PLAN_TRANSITIONS,
    REPAIR_TRANSITIONS,
    SENIOR_LEVELS,
    ChecklistResult,
    CreditEventKind,
    CreditGrade,
    DocumentType,
    DrawStatus,
    FindingGrade,
    InspectionStatus,
    InspectorStatus,
    ListingStatus,
    Outcome,
    PlanStatus,
    RepairStatus,
    RiskKey,
)
from enforcement.models import (
    ConflictOfInterest,
    CreditEvent,
    CreditScore,
    DishonestyListing,
    Document,
    DocumentCounter,
    Draw,
    FrequencyRule,
    Inspection,
    InspectionFinding,
    InspectionPhoto,
    InspectionPlan,
    InspectorProfile,
    RepairApplication,
)
from enforcement.selectors import can_issue_for, can_manage_plans
from regulator import uploads
from regulator.audit import record_event
from regulator.errors import DomainError, Forbidden, InvalidInput, TransitionNotAllowed
from regulator.notifications import notify
from regulator.realtime import group_for_region, push_on_commit

logger = logging.getLogger(__name__)

LISTING_TERM_YEARS = 3
REPAIR_WAIT_DAYS = 365


def _require_manager(user) -> None:
    if user is not None and not can_manage_plans(user):
        raise Forbidden(_("只有科室负责人或监管部门管理员可以执行此操作"))


# --- inspector pool ------------------------------------------------------------------------------


def inspector_profile_save(
    *, user, certification_level: str, specialties=(), status=InspectorStatus.ACTIVE, actor=None
):
    if not user.is_regulator:
        raise InvalidInput(_("只有监管部门人员可以进入执法人员名录库"))
    profile, _created = InspectorProfile.objects.update_or_create(
        user=user, defaults={"certification_level": certification_level, "status": status}
    )
    profile.specialties.set(specialties)
    record_event(event="enforcement.inspector_saved", user=actor, obj=profile, detail={"level": certification_level})
    return profile


def conflict_declare(*, inspector: InspectorProfile, enterprise, reason: str, actor=None) -> ConflictOfInterest:
    if not reason.strip():
        raise InvalidInput(_("请填写回避事由"))
    conflict, _created = ConflictOfInterest.objects.update_or_create(
        inspector=inspector, enterprise=enterprise, defaults={"reason": reason.strip()}
    )
    record_event(event="enforcement.conflict_declared", user=actor, obj=conflict, detail={"enterprise": enterprise.pk})
    return conflict


# --- plans and draws -----------------------------------------------------------------------------


def _clean_strata(strata) -> list[dict]:
    cleaned = []
    for index, raw in enumerate(strata or []):
        if not isinstance(raw, dict):
            raise InvalidInput(_("分层定义格式错误"))
        item = {"label": str(raw.get("label") or f"分层{index + 1}")}
        for key in ("credit", "risk"):
            values = sorted({str(v) for v in raw.get(key) or []})
            allowed = CreditGrade.values if key == "credit" else RiskKey.values
            if any(v not in allowed for v in values):
                raise InvalidInput(_("分层中的等级无效：%(v)s") % {"v": values})
            item[key] = values
        item["industry"] = str(raw.get("industry") or "")
        if raw.get("count") not in (None, ""):
            count = int(raw["count"])
            if count < 0:
                raise InvalidInput(_("抽查数量不能为负"))
            item["count"] = count
        else:
            try:
                ratio = Decimal(str(raw.get("ratio")))
            except (InvalidOperation, TypeError):
                raise InvalidInput(_("每个分层需要抽查比例或抽查数量"))
            if not (0 <= ratio <= 1):
                raise InvalidInput(_("抽查比例应在0到1之间"))
            item["ratio"] = str(ratio)
        cleaned.append(item)
    return cleaned


def plan_create(*, user, name: str, jurisdiction, period_start: date, period_end: date, **fields) -> InspectionPlan:
    _require_manager(user)
    if user is not None and not user.is_superuser:
        from regulator.scoping import jurisdiction_region_ids

        if jurisdiction.pk not in jurisdiction_region_ids(user):
            raise InvalidInput(_("只能在本辖区内制定检查计划"))
    if period_end < period_start:
        raise InvalidInput(_("结束日期不能早于开始日期"))
    team_size = int(fields.get("team_size", 2))
    if team_size < 2:
        raise InvalidInput(_("检查组至少2人"))
    for item in fields.get("items") or []:
        if not isinstance(item, dict) or not item.get("content"):
            raise InvalidInput(_("检查事项需要填写检查内容"))
    plan = InspectionPlan.objects.create(
        name=name,
        jurisdiction=jurisdiction,
        period_start=period_start,
        period_end=period_end,
        items=list(fields.get("items") or []),
        industry_prefixes=sorted({str(p) for p in fields.get("industry_prefixes") or []}),
        risk_filter=sorted({str(p) for p in fields.get("risk_filter") or []}),
        credit_filter=sorted({str(p) for p in fields.get("credit_filter") or []}),
        strata=_clean_strata(fields.get("strata")),
        default_ratio=Decimal(str(fields.get("default_ratio", "0.05"))),
        team_size=team_size,
        require_specialty=bool(fields.get("require_specialty", True)),
        created_by=user,
    )
    record_event(event="enforcement.plan_created", user=user, obj=plan)
    return plan


def frequency_table() -> dict[tuple[str, str], tuple[int, int]]:
    table = dict(DEFAULT_FREQUENCY)
    for row in FrequencyRule.objects.all():
        table[(row.credit_grade, row.risk)] = (row.min_per_year, row.max_per_year)
    return table


def credit_grades_for(enterprise_ids=None, region_path: str | None = None) -> dict[int, str]:
    """Current credit grade per enterprise; listed enterprises are D; unscored ones default to B."""
    scores = CreditScore.objects.all()
    listings = DishonestyListing.objects.filter(status=ListingStatus.LISTED)
    if region_path is not None:
        from regulator.models import Region

        regions = Region.objects.filter(path__startswith=region_path).values("id")
        scores = scores.filter(enterprise__region_id__in=regions)
        listings = listings.filter(enterprise__region_id__in=regions)
    if enterprise_ids is not None:
        scores = scores.filter(enterprise_id__in=enterprise_ids)
        listings = listings.filter(enterprise_id__in=enterprise_ids)
    grades = dict(scores.values_list("enterprise_id", "grade"))
    for eid in listings.values_list("enterprise_id", flat=True):
        grades[eid] = CreditGrade.D
    return grades


@drawing.gc_paused()
def build_snapshot(plan: InspectionPlan, *, as_of: date | None = None) -> dict:
    from enterprises.models import Industry
    from regulator.models import Region

    as_of = as_of or plan.period_start
    path = plan.jurisdiction.path
    region_ids = list(Region.objects.filter(path__startswith=path).values_list("id", flat=True))
    if connection.vendor == "postgresql":
        targets, last_team = _targets_postgresql(region_ids, as_of)
    else:
        targets, last_team = _targets_orm(region_ids, path, as_of)

    previous = (
        Draw.objects.filter(plan__jurisdiction=plan.jurisdiction, status=DrawStatus.CURRENT)
        .exclude(plan=plan)
        .order_by("-drawn_at", "-id")
        .values_list("result", flat=True)  # not the snapshot: megabytes
        .first()
    )
    previous_teams = []
    if previous is not None:
        previous_teams = sorted({tuple(t) for _e, t in json.loads(previous)["assignments"]})
        previous_teams = [list(t) for t in previous_teams]

    from regulator.choices import REGULATOR_ROLES

    profiles = InspectorProfile.objects.filter(
        status=InspectorStatus.ACTIVE,
        user__is_active=True,
        user__role__in=REGULATOR_ROLES,  # User.is_regulator
        user__jurisdiction__path__startswith=path,
    )
    specialties: dict[int, list[str]] = {}
    for pid, code in InspectorProfile.specialties.through.objects.filter(inspectorprofile__in=profiles).values_list(
        "inspectorprofile_id", "industry__code"
    ):
        specialties.setdefault(pid, []).append(code)
    conflicts: dict[int, list[int]] = {}
    for pid, eid in ConflictOfInterest.objects.filter(inspector__in=profiles).values_list(
        "inspector_id", "enterprise_id"
    ):
        conflicts.setdefault(pid, []).append(eid)
    # Plain values, not ~3,000 model instances (profile, user, region): the server is idle meanwhile.
    inspectors = [
        [user_id, level, jurisdiction, sorted(specialties.get(pid, [])), sorted(conflicts.get(pid, []))]
        for pid, user_id, level, jurisdiction in profiles.order_by("user_id").values_list(
            "pk", "user_id", "certification_level", "user__jurisdiction__path"
        )
    ]
    industries = sorted([code, parent or ""] for code, parent in Industry.objects.values_list("code", "parent__code"))
    frequency = sorted([c, r, lo, hi] for (c, r), (lo, hi) in frequency_table().items())
    return {
        "v": drawing.SNAPSHOT_VERSION,
        "as_of": as_of.isoformat(),
        "plan": {
            "id": plan.pk,
            "name": plan.name,
            "jurisdiction": plan.jurisdiction.code,
            "period": [plan.period_start.isoformat(), plan.period_end.isoformat()],
            "team_size": plan.team_size,
            "require_specialty": plan.require_specialty,
            "default_ratio": str(plan.default_ratio),
            "industry_prefixes": plan.industry_prefixes,
            "risk_filter": plan.risk_filter,
            "credit_filter": plan.credit_filter,
            "strata": plan.strata,
        },
        "frequency": frequency,
        "industries": industries,
        "targets": targets,
        "inspectors": inspectors,
        "last_team": last_team,
        "previous_teams": previous_teams,
    }


def _targets_orm(region_ids: list[int], path: str, as_of: date) -> tuple[list, list]:
    """Targets and last teams, portable ORM version (SQLite and others)."""
    from enterprises.choices import OperatingStatus
    from enterprises.models import Enterprise

    in_region = {"enterprise__region_id__in": region_ids}
    rows = list(
        Enterprise.objects.filter(region_id__in=region_ids)
        .exclude(operating_status=OperatingStatus.CLOSED)
        .order_by("id")
        .values_list("id", "industry__code", "region__path", "risk_grade")
    )
    grades = credit_grades_for(region_path=path)
    live = Inspection.objects.filter(**in_region).exclude(status=InspectionStatus.CANCELLED)
    # One pass over the history: inspections in the last year, the latest visit and its id.
    year_ago = as_of - timedelta(days=365)
    done: dict[int, int] = {}
    latest: dict[int, tuple] = {}
    for iid, eid, day in live.order_by("date", "id").values_list("id", "enterprise_id", "date"):
        latest[eid] = (iid, day)
        if day >= year_ago:
            done[eid] = done.get(eid, 0) + 1
    targets = []
    for eid, industry, region_path, risk in rows:
        last = latest.get(eid)
        days_since = -1 if last is None else max(0, (as_of - last[1]).days)
        targets.append(
            [
                eid,
                industry,
                region_path,
                risk or RiskKey.UNRATED,
                grades.get(eid, CreditGrade.B),
                done.get(eid, 0),
                days_since,
            ]
        )

    latest_ids = {iid for iid, _day in latest.values()}
    members: dict[int, list[int]] = {}
    through = Inspection.team.through
    for iid, uid in through.objects.filter(inspection__enterprise__region_id__in=region_ids).values_list(
        "inspection_id", "user_id"
    ):
        if iid in latest_ids:
            members.setdefault(iid, []).append(uid)
    last_team = []
    for eid in sorted(latest):
        team = members.get(latest[eid][0])
        if team:
            team.sort()
            last_team.append([eid, team])
    return targets, last_team


def _targets_postgresql(region_ids: list[int], as_of: date) -> tuple[list, list]:
    """The same as ``_targets_orm``, aggregated by PostgreSQL: two queries, no per-row Python work.

    targets: non-closed enterprises of the region by id, with the credit grade (listed: D, unscored: B),
    the live (not cancelled) inspections of the last 365 days and the days since the latest one.
    last_team: for every enterprise of the region with a live inspection, the sorted team of the
    latest one (latest date, then highest id), when it has a team.
    """
    from enterprises.choices import OperatingStatus
    from enterprises.models import Enterprise, Industry
    from regulator.models import Region

    q = connection.ops.quote_name
    enterprise = q(Enterprise._meta.db_table)
    inspection = q(Inspection._meta.db_table)
    team = q(Inspection.team.through._meta.db_table)
    params = {
        "regions": region_ids,
        "as_of": as_of,
        "year_ago": as_of - timedelta(days=365),
        "cancelled": str(InspectionStatus.CANCELLED),
        "closed": str(OperatingStatus.CLOSED),
        "listed": str(ListingStatus.LISTED),
        "unrated": str(RiskKey.UNRATED),
        "grade_b": str(CreditGrade.B),
        "grade_d": str(CreditGrade.D),
    }
    # The latest live inspection per enterprise (latest date, then highest id) is the first row of its
    # enterprise in (enterprise, date DESC, id DESC) order, and the visits of the last year are a
    # window count over the same rows: one index-only scan of inspection_live_latest, already in that
    # order, with no sort and no hash aggregate (half the time of grouping 100,000 enterprises).
    sql = f"""
        WITH history AS (
            SELECT DISTINCT ON (i.enterprise_id) i.enterprise_id, i.id AS latest_id, i.date AS last_day,
                count(*) FILTER (WHERE i.date >= %(year_ago)s) OVER (
                    PARTITION BY i.enterprise_id ORDER BY i.date DESC, i.id DESC
                    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
                ) AS done
            FROM {inspection} i
            WHERE i.status <> %(cancelled)s
                AND i.enterprise_id IN (SELECT id FROM {enterprise} WHERE region_id = ANY(%(regions)s))
            ORDER BY i.enterprise_id, i.date DESC, i.id DESC
        ),
        teams AS (
            SELECT t.inspection_id, array_agg(t.user_id) AS members
            FROM {team} t JOIN history h ON h.latest_id = t.inspection_id
            GROUP BY t.inspection_id
        ),
        listed AS (
            SELECT DISTINCT enterprise_id FROM {q(DishonestyListing._meta.db_table)} WHERE status = %(listed)s
        )
        SELECT e.id, ind.code, r.path, COALESCE(NULLIF(e.risk_grade, ''), %(unrated)s),
            CASE WHEN l.enterprise_id IS NOT NULL THEN %(grade_d)s
                 WHEN cs.enterprise_id IS NOT NULL THEN cs.grade ELSE %(grade_b)s END,
            COALESCE(h.done, 0),
            CASE WHEN h.last_day IS NULL THEN -1 ELSE GREATEST(0, %(as_of)s::date - h.last_day) END,
            e.operating_status <> %(closed)s,
            teams.members
        FROM {enterprise} e
        JOIN {q(Industry._meta.db_table)} ind ON ind.id = e.industry_id
        JOIN {q(Region._meta.db_table)} r ON r.id = e.region_id
        LEFT JOIN {q(CreditScore._meta.db_table)} cs ON cs.enterprise_id = e.id
        LEFT JOIN listed l ON l.enterprise_id = e.id
        LEFT JOIN history h ON h.enterprise_id = e.id
        LEFT JOIN teams ON teams.inspection_id = h.latest_id
        WHERE e.region_id = ANY(%(regions)s)
        ORDER BY e.id
    """  # noqa: S608  (identifiers from the models, values as parameters)
    import psycopg

    targets, last_team = [], []
    with transaction.atomic(), connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        # With fresh statistics the planner overestimates the joins of the aggregates by orders of
        # magnitude and JIT-compiles the query: ~1 s of compiling for a ~0.3 s query. Both settings
        # hold for the rest of this transaction only (SET LOCAL); nothing in a draw profits from JIT.
        cursor.execute("SET LOCAL jit = off")
        # Sorts and hashes of ~100,000 rows: in memory rather than spilled to disk (default 4 MB).
        cursor.execute("SET LOCAL work_mem = '64MB'")
        # The rows are taken as the server sends them, a few thousand at a time: their conversion
        # here overlaps the rest of the query (the last third of it streams out in id order).
        for row in cursor.stream(sql, params, size=5000):
            if row[7]:  # closed enterprises are not targets, but their last team still counts (as in _targets_orm)
                targets.append(list(row[:7]))
            if row[8]:
                last_team.append([row[0], sorted(row[8])])
    return targets, last_team


def _day_offsets(plan: InspectionPlan, selected: list[int]) -> dict[int, int]:
    """Days after the plan's start of each selected enterprise's visit: spread evenly over the
    period in enterprise order (deterministic). Spread over the selection rather than over the
    assignments, so a visit's day is known before the teams are drawn: an enterprise left without
    a team leaves its day free."""
    days = (plan.period_end - plan.period_start).days + 1
    total = max(len(selected), 1)
    return {eid: (index * days) // total for index, eid in enumerate(selected)}


def _compress_fast() -> None:
    """PostgreSQL 14+ built with lz4: store this transaction's big values (the snapshot) lz4-compressed.

    The default pglz takes ~0.2 s on an 8 MB snapshot, lz4 a fraction of that. Only how the value is
    stored on disk changes; reading it back (and so its hash) is the same, old draws included.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)")
        if cursor.fetchone():
            cursor.execute("SET LOCAL default_toast_compression = 'lz4'")


@drawing.gc_paused()  # the snapshot's lists are freed (by reference counting) before collection resumes
def draw_plan(*, plan: InspectionPlan, user=None, reason: str = "", seed: str | None = None) -> Draw:
    """Draw (or re-draw) a plan. A re-draw keeps the earlier draw, marked superseded with the reason."""
    _require_manager(user)
    with transaction.atomic():
        plan = InspectionPlan.objects.select_for_update().select_related("jurisdiction").get(pk=plan.pk)
        if PlanStatus.DRAWN not in PLAN_TRANSITIONS[plan.status]:
            raise TransitionNotAllowed(
                _("计划已结束，不能再抽取"), current=plan.status, allowed=sorted(PLAN_TRANSITIONS[plan.status])
            )
        current = plan.draws.filter(status=DrawStatus.CURRENT).defer("snapshot", "result").first()
        if current is not None:
            if not reason.strip():
                raise InvalidInput(_("重新抽取必须填写原因"))
            if current.inspections.filter(status=InspectionStatus.COMPLETED).exists():
                raise DomainError(_("已有检查完成，不能重新抽取"), code="inspections_done")
            current.status = DrawStatus.SUPERSEDED
            current.superseded_reason = reason.strip()
            current.save(update_fields=["status", "superseded_reason"])
            current.inspections.filter(status=InspectionStatus.PLANNED).update(
                status=InspectionStatus.CANCELLED, cancel_reason=_("重新抽取：%(r)s") % {"r": reason.strip()}
            )
        _compress_fast()
        snapshot = build_snapshot(plan)
        seed = seed or secrets.token_hex(16)
        from regulator.crypto import sm3_hex

        sequence = (plan.draws.aggregate(m=Max("sequence"))["m"] or 0) + 1
        # The row first (the inspections refer to it), its snapshot and result once they are made.
        draw = Draw.objects.create(
            plan=plan,
            sequence=sequence,
            seed=seed,
            snapshot="",
            snapshot_hash="",
            result="",
            result_hash="",
            reason=reason.strip(),
            drawn_by=user,
        )
        seniors = {row[0] for row in snapshot["inspectors"] if row[1] in SENIOR_LEVELS}
        # Each team is written as soon as compute_draw has made it: on PostgreSQL the server stores
        # the inspections while this process goes on drawing and then serialises the snapshot.
        with _DrawWriter(plan, draw, seniors) as writer:
            result = drawing.compute_draw(seed, snapshot, on_selected=writer.selected, on_team=writer.add)
            writer.send()  # the last teams, before the snapshot is serialised
            snapshot_text = drawing.canonical_bytes(snapshot).decode("utf-8")
            result_text = drawing.canonical_bytes(result).decode("utf-8")
            draw.snapshot = snapshot_text
            draw.snapshot_hash = sm3_hex(snapshot_text.encode("utf-8"))
            draw.result = result_text
            draw.result_hash = sm3_hex(result_text.encode("utf-8"))
            draw.selected_count = len(result["assignments"])
            draw.signature = sm2.sign(draw.signed_payload())
            # Queued behind the inspections (PostgreSQL): the server stores the snapshot next.
            writer.update(draw, ["snapshot", "snapshot_hash", "result", "result_hash", "selected_count", "signature"])
        if writer.written != len(result["assignments"]):  # (the transaction rolls back)
            raise RuntimeError("the inspections written differ from the draw result")
        # Telling the inspectors is not part of the draw: it runs after commit (a Celery task).
        from enforcement.tasks import notify_draw

        draw_id = draw.pk
        transaction.on_commit(lambda: notify_draw.delay(draw_id))
        plan.status = PlanStatus.DRAWN
        plan.save(update_fields=["status"])
        record_event(
            event="enforcement.redrawn" if current else "enforcement.drawn",
            user=user,
            obj=draw,
            detail={
                "plan": plan.pk,
                "seed": seed,
                "snapshot_hash": draw.snapshot_hash,
                "result_hash": draw.result_hash,
                "replaces": current.pk if current else None,
                "reason": reason,
            },
        )
        push_on_commit(
            [group_for_region(plan.jurisdiction_id)],
            "enforcement.drawn",
            {"plan": plan.pk, "draw": draw.pk, "selected": draw.selected_count},
        )
    return draw


def _array_text(numbers: list[int]) -> str:
    """A PostgreSQL array literal of integers: psycopg would format a list element by element."""
    return "{" + ",".join(map(str, numbers)) + "}"


class _DrawWriter:
    """Writes a draw's inspections, with team and leader (an intermediate or senior member), in
    chunks as ``compute_draw`` makes the teams (its ``on_selected`` and ``on_team`` listeners).

    On PostgreSQL the chunks (and ``update``) go out in pipeline mode on the draw's own connection
    (same transaction): sending does not wait for the server, which stores them on its own core
    while this process computes; the block's end waits for the last of them, and raises the first
    error (as Django's error, e.g. IntegrityError). The foreign keys are checked as each statement
    runs rather than at COMMIT: the same work, but done meanwhile. The block should not use the
    database otherwise. Elsewhere each chunk is inserted when it is sent.
    """

    CHUNK = 2000  # teams per statement: few statements
    FIRST_CHUNK = 400  # but a small first one: the server starts as soon as the first teams are made

    def __init__(self, plan, draw, seniors: set[int]):
        self.plan, self.draw, self.seniors = plan, draw, seniors
        self.offsets: dict[int, int] = {}
        self.pending: list[tuple[int, list[int]]] = []
        self.written = 0
        self.postgresql = connection.vendor == "postgresql"
        self._stack = ExitStack()

    def __enter__(self):
        if self.postgresql:
            import psycopg

            connection.ensure_connection()
            raw = connection.connection  # psycopg's own connection: Django's cursor does not pipeline
            self._stack.enter_context(connection.wrap_database_errors)  # psycopg's errors as Django's
            self._stack.enter_context(raw.pipeline())
            # Server-side binding (Django's cursors interpolate values into the SQL text): the
            # arrays travel as parameters, as text built by str.join, not formatted value by value.
            self.cursor = self._stack.enter_context(psycopg.Cursor(raw))
            self.cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            self.sql, self.params = self._statement()
        return self

    def __exit__(self, *exc_info):
        if exc_info[0] is None:
            try:
                self.send()
                if self.postgresql:
                    self.cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # Django's default again
            except BaseException:
                # The pipeline ends (its own error only logged), psycopg's error becomes Django's.
                if not self._stack.__exit__(*sys.exc_info()):
                    raise
                return False
        return self._stack.__exit__(*exc_info)

    def selected(self, selected: list[int]) -> None:
        self.offsets = _day_offsets(self.plan, selected)

    def add(self, eid: int, team: list[int]) -> None:
        self.pending.append((eid, team))
        if len(self.pending) >= (self.CHUNK if self.written else self.FIRST_CHUNK):
            self.send()

    def send(self) -> None:
        chunk, self.pending = self.pending, []
        if not chunk:
            return
        self.written += len(chunk)
        seniors, offsets = self.seniors, self.offsets
        leaders = [next((u for u in team if u in seniors), team[0]) for _eid, team in chunk]
        if not self.postgresql:
            start = self.plan.period_start
            ids = insert_new(
                Inspection,
                [
                    {
                        "enterprise_id": eid,
                        "plan_id": self.plan.pk,
                        "draw_id": self.draw.pk,
                        "date": start + timedelta(days=offsets[eid]),
                        "leader_id": leader,
                    }
                    for (eid, _team), leader in zip(chunk, leaders, strict=True)
                ],
            )
            insert_rows(
                Inspection.team.through,
                ["inspection_id", "user_id"],
                [(pk, uid) for pk, (_eid, team) in zip(ids, chunk, strict=True) for uid in team],
            )
            return
        params = dict(
            self.params,
            enterprises=_array_text([eid for eid, _team in chunk]),
            offsets=_array_text([offsets[eid] for eid, _team in chunk]),
            leaders=_array_text(leaders),
            member_of=_array_text([eid for eid, team in chunk for _uid in team]),
            members=_array_text([uid for _eid, team in chunk for uid in team]),
        )
        self.cursor.execute(self.sql, params)  # sent, not waited for

    def update(self, instance, fields: list[str]) -> None:
        """``instance.save(update_fields=fields)``; on PostgreSQL queued in the pipeline, with the
        values as parameters (the snapshot is megabytes: not quoted into the SQL text)."""
        if not self.postgresql:
            instance.save(update_fields=fields)
            return
        meta, q = instance._meta, connection.ops.quote_name
        assignments, params = [], []
        for name in fields:
            field = meta.get_field(name)
            assignments.append(f"{q(field.column)} = %s")
            params.append(field.get_db_prep_save(getattr(instance, field.attname), connection))
        sql = f"UPDATE {q(meta.db_table)} SET {', '.join(assignments)} WHERE {q(meta.pk.column)} = %s"  # noqa: S608
        self.cursor.execute(sql, [*params, instance.pk])

    def _statement(self) -> tuple[str, dict]:
        """One INSERT ... SELECT from arrays for a chunk's inspections and their team rows.

        Only plain arrays of numbers travel (no per-row formatting in Python); the team rows join
        the new inspections on the enterprise, which a draw selects once.
        """
        through = Inspection.team.through
        q = connection.ops.quote_name
        given = {
            "enterprise_id": "u.enterprise_id",
            "plan_id": "%(plan)s",
            "draw_id": "%(draw)s",
            "date": "%(start)s::date + u.day",
            "leader_id": "u.leader_id",
        }
        columns, values, params = insert_select_columns(Inspection, given)
        params.update(plan=self.plan.pk, draw=self.draw.pk, start=self.plan.period_start)
        sql = f"""
            WITH new AS (
                INSERT INTO {q(Inspection._meta.db_table)} ({", ".join(columns)})
                SELECT {", ".join(values)}
                FROM unnest(%(enterprises)s::bigint[], %(offsets)s::int[], %(leaders)s::bigint[])
                    AS u(enterprise_id, day, leader_id)
                RETURNING id, enterprise_id
            )
            INSERT INTO {q(through._meta.db_table)} ({q(through._meta.get_field("inspection").column)},
                {q(through._meta.get_field("user").column)})
            SELECT new.id, m.user_id
            FROM new JOIN unnest(%(member_of)s::bigint[], %(members)s::bigint[]) AS m(enterprise_id, user_id)
                USING (enterprise_id)
        """  # noqa: S608  (identifiers from the models, values as parameters)
        return sql, params


def draw_notify(*, draw: Draw) -> int:
    """One in-app notification per drawn inspector (idempotent per draw)."""
    from regulator.models import User

    by_user: dict[int, int] = {}
    for _eid, team in json.loads(draw.result)["assignments"]:
        for uid in team:
            by_user[uid] = by_user.get(uid, 0) + 1
    for member in User.objects.filter(pk__in=by_user):
        notify(
            users=[member],
            title=_("您被抽中参加“%(plan)s”执法检查（%(n)s家企业）")
            % {"plan": draw.plan.name, "n": by_user[member.pk]},
            url=reverse("enforcement:plan_detail", args=[draw.plan_id]),
            dedupe_key=f"enforcement.draw.{draw.pk}",
            email=False,
        )
    return len(by_user)


def plan_close(*, plan: InspectionPlan, user) -> InspectionPlan:
    _require_manager(user)
    with transaction.atomic():
        plan = InspectionPlan.objects.select_for_update().get(pk=plan.pk)
        if PlanStatus.CLOSED not in PLAN_TRANSITIONS[plan.status]:
            raise TransitionNotAllowed(
                _("计划当前状态不能结束"), current=plan.status, allowed=sorted(PLAN_TRANSITIONS[plan.status])
            )
        plan.status = PlanStatus.CLOSED
        plan.save(update_fields=["status"])
        # Visits not made by the end of the plan are closed out, visibly, rather than left open.
        unfinished = plan.inspections.filter(status=InspectionStatus.PLANNED).update(
            status=InspectionStatus.CANCELLED, cancel_reason=_("计划结束时尚未检查")
        )
        record_event(event="enforcement.plan_closed", user=user, obj=plan, detail={"unfinished": unfinished})
    return plan


@drawing.gc_paused()
def verify_draw(draw: Draw) -> list[str]:
    """Recompute from the stored seed and snapshot; every mismatch found, empty when the draw holds."""
    from regulator.crypto import sm3_hex

    problems: list[str] = []
    if sm3_hex(draw.snapshot.encode("utf-8")) != draw.snapshot_hash:
        problems.append("snapshot altered: its SM3 hash no longer matches the recorded snapshot hash")
    if sm3_hex(draw.result.encode("utf-8")) != draw.result_hash:
        problems.append("result altered: its SM3 hash no longer matches the recorded result hash")
    try:
        snapshot = json.loads(draw.snapshot)
        stored = json.loads(draw.result)
    except ValueError:
        return [*problems, "snapshot or result is not valid JSON"]
    if snapshot.get("v") != drawing.SNAPSHOT_VERSION:
        return [
            *problems,
            f"the draw was made by algorithm version {snapshot.get('v')}; this installation recomputes version "
            f"{drawing.SNAPSHOT_VERSION} only",
        ]
    if drawing.canonical_bytes(snapshot).decode("utf-8") != draw.snapshot:
        problems.append("snapshot is not in canonical form")
    try:
        recomputed = drawing.compute_draw(draw.seed, snapshot)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        return [*problems, f"the draw cannot be recomputed from the snapshot: {exc!r}"]
    if recomputed != stored:
        problems.append("recomputing from seed + snapshot gives a different result")
    if drawing.sm3_of(recomputed) != draw.result_hash:
        problems.append("the recomputed result's hash differs from the recorded result hash")
    ok = sm2.verify(draw.signed_payload(), draw.signature)
    if ok is False:
        problems.append("the SM2 signature does not verify")
    # Every inspection the draw created, cancelled ones too (a cancellation keeps its team and reason).
    live = dict(draw.inspections.values_list("id", "enterprise_id"))
    members: dict[int, list[int]] = {}
    for iid, uid in Inspection.team.through.objects.filter(inspection__draw=draw).values_list(
        "inspection_id", "user_id"
    ):
        if iid in live:
            members.setdefault(iid, []).append(uid)
    teams = {eid: sorted(members.get(iid, [])) for iid, eid in live.items()}
    if teams != dict(stored["assignments"]):
        problems.append("the inspection records differ from the draw result")
    return problems


# --- inspections ---------------------------------------------------------------------------------


def _transition(inspection: Inspection, target: str) -> None:
    allowed = INSPECTION_TRANSITIONS[inspection.status]
    if target not in allowed:
        raise TransitionNotAllowed(
            _("检查当前状态“%(s)s”不允许此操作") % {"s": inspection.get_status_display()},
            current=inspection.status,
            allowed=sorted(allowed),
        )


def _hazard_for_finding(finding: InspectionFinding, inspection: Inspection, user) -> int | None:
    try:
        from hazards.services import hazard_report
    except ImportError:
        logger.warning("hazards.services.hazard_report not available: finding %s kept without hazard", finding.pk)
        return None
    hazard = hazard_report(
        enterprise=inspection.enterprise,
        user=user,
        source="inspection",
        description=finding.description,
        location=finding.location,
        grade=finding.grade,
        found_at=timezone.now(),
        source_ref=f"inspection:{inspection.pk}",
        deadline=inspection.rectification_deadline,
    )
    return getattr(hazard, "pk", None)


def inspection_complete(
    *,
    inspection: Inspection,
    user,
    outcome: str,
    checklist=(),
    findings=(),
    public_summary: str = "",
    internal_notes: str = "",
    inspected_on: date | None = None,
    rectification_deadline: date | None = None,
    penalty_amount=None,
    legal_basis: str = "",
) -> Inspection:
    if outcome not in Outcome.values:
        raise InvalidInput(_("检查结论无效"))
    if not can_issue_for(user, inspection):
        raise Forbidden(_("只有检查组成员或科室负责人可以录入检查结果"))
    cleaned_checklist = []
    for row in checklist:
        if row.get("result") not in ChecklistResult.values:
            raise InvalidInput(_("检查事项结果无效"))
        cleaned_checklist.append(
            {"item": str(row.get("item", ""))[:300], "result": row["result"], "note": str(row.get("note", ""))[:500]}
        )
    findings = [f for f in findings if str(f.get("description", "")).strip()]
    if outcome == Outcome.NO_PROBLEM and findings:
        raise InvalidInput(_("有发现问题时结论不能为“未发现问题”"))
    if outcome != Outcome.NO_PROBLEM and not findings:
        raise InvalidInput(_("请录入发现的问题"))
    if outcome == Outcome.RECTIFICATION and not rectification_deadline:
        raise InvalidInput(_("责令限期整改需要整改期限"))
    if outcome == Outcome.PENALTY and not penalty_amount:
        raise InvalidInput(_("行政处罚需要罚款金额"))
    with transaction.atomic():
        inspection = Inspection.objects.select_for_update().get(pk=inspection.pk)
        _transition(inspection, InspectionStatus.COMPLETED)
        inspection.status = InspectionStatus.COMPLETED
        inspection.outcome = outcome
        inspection.checklist = cleaned_checklist
        inspection.public_summary = public_summary.strip() or str(Outcome(outcome).label)
        inspection.internal_notes = internal_notes
        inspection.date = inspected_on or timezone.localdate()
        inspection.rectification_deadline = rectification_deadline
        inspection.penalty_amount = penalty_amount
        inspection.legal_basis = legal_basis
        inspection.completed_at = timezone.now()
        inspection.save()
        for raw in findings:
            grade = raw.get("grade") or FindingGrade.ORDINARY
            if grade not in FindingGrade.values:
                raise InvalidInput(_("隐患等级无效"))
            finding = InspectionFinding.objects.create(
                inspection=inspection,
                description=str(raw["description"]).strip(),
                location=str(raw.get("location", "")),
                grade=grade,
            )
            finding.hazard_id = _hazard_for_finding(finding, inspection, user)
            if finding.hazard_id:
                finding.save(update_fields=["hazard_id"])
        kind = {
            Outcome.NO_PROBLEM: CreditEventKind.INSPECTION_CLEAN,
            Outcome.PENALTY: CreditEventKind.PENALTY,
            Outcome.SUSPENSION: CreditEventKind.SUSPENSION,
        }.get(outcome)
        if kind:
            credit_record_event(
                enterprise=inspection.enterprise,
                kind=kind,
                occurred_on=inspection.date,
                description=_("执法检查：%(o)s") % {"o": Outcome(outcome).label},
                source_key=f"inspection:{inspection.pk}",
                user=user,
            )
        record_event(event="enforcement.inspection_completed", user=user, obj=inspection, detail={"outcome": outcome})
        push_on_commit(
            [group_for_region(inspection.enterprise.region_id)],
            "enforcement.inspection_completed",
            {"inspection": inspection.pk, "enterprise": inspection.enterprise_id, "outcome": outcome},
        )
    return inspection


def inspection_cancel(*, inspection: Inspection, user, reason: str) -> Inspection:
    _require_manager(user)
    if not reason.strip():
        raise InvalidInput(_("请填写取消原因"))
    with transaction.atomic():
        inspection = Inspection.objects.select_for_update().get(pk=inspection.pk)
        _transition(inspection, InspectionStatus.CANCELLED)
        inspection.status = InspectionStatus.CANCELLED
        inspection.cancel_reason = reason.strip()
        inspection.save(update_fields=["status", "cancel_reason"])
        record_event(event="enforcement.inspection_cancelled", user=user, obj=inspection, detail={"reason": reason})
    return inspection


def inspection_add_photo(*, inspection: Inspection, user, upload, caption: str = "") -> InspectionPhoto:
    """Attach a site photo: validated and re-encoded by the platform's one upload validator, stored
    under a generated name whose extension is the decoded format's (never the client's)."""
    if not can_issue_for(user, inspection):
        raise Forbidden(_("只有检查组成员可以上传照片"))
    clean = uploads.validate_image(upload, field="image")
    photo = InspectionPhoto(inspection=inspection, caption=(caption or "").strip()[:200], uploaded_by=user)
    # upload_to (_photo_path) places it per inspection; the name we pass only carries the extension.
    photo.image.save(clean.stored_name(), ContentFile(clean.data), save=False)
    try:
        photo.save()
    except Exception:
        photo.image.delete(save=False)
        raise
    record_event(event="enforcement.photo_added", user=user, obj=inspection, detail={"photo": photo.pk})
    return photo


# --- documents -----------------------------------------------------------------------------------

_REQUIRED_OUTCOME = {
    DocumentType.RECTIFICATION_ORDER: {Outcome.RECTIFICATION, Outcome.PENALTY, Outcome.SUSPENSION},
    DocumentType.PENALTY_DECISION: {Outcome.PENALTY, Outcome.SUSPENSION},
}


def bureau_for(user, inspection: Inspection):
    """The issuing bureau is the regulator's jurisdiction (superusers issue as the enterprise's county)."""
    if user is not None and user.jurisdiction_id:
        return user.jurisdiction
    region = inspection.enterprise.region
    while region.level > 3 and region.parent_id:
        region = region.parent
    return region


def format_number(bureau, doc_type: str, year: int, seq: int) -> str:
    short = (bureau.name or "")[:1]
    return f"{short}应急{DOCUMENT_ABBREVIATIONS[doc_type]}〔{year}〕{seq}号"


def next_document_number(*, bureau, doc_type: str, year: int) -> int:
    """Take the next number; must run inside the transaction that stores the document (gapless)."""
    counter, _created = DocumentCounter.objects.get_or_create(bureau=bureau, doc_type=doc_type, year=year)
    counter = DocumentCounter.objects.select_for_update().get(pk=counter.pk)
    counter.last += 1
    counter.save(update_fields=["last"])
    return counter.last


def document_issue(*, inspection: Inspection, doc_type: str, user, content: dict | None = None) -> Document:
    from enforcement.pdf import render_document

    if doc_type not in DocumentType.values:
        raise InvalidInput(_("文书类型无效"))
    inspection = Inspection.objects.select_related("enterprise__region").get(pk=inspection.pk)
    if not can_issue_for(user, inspection):
        raise Forbidden(_("只有检查组成员或科室负责人可以签发文书"))
    if inspection.status != InspectionStatus.COMPLETED:
        raise TransitionNotAllowed(
            _("检查完成后才能制作文书"), current=inspection.status, allowed=[InspectionStatus.COMPLETED]
        )
    needed = _REQUIRED_OUTCOME.get(doc_type)
    if needed and inspection.outcome not in needed:
        raise DomainError(_("检查结论与文书类型不符"), code="document_not_applicable")
    if doc_type == DocumentType.REINSPECTION_OPINION and not (content or {}).get("opinion"):
        raise InvalidInput(_("整改复查意见书需要填写复查意见"))
    bureau = bureau_for(user, inspection)
    now = timezone.now()
    year = timezone.localtime(now).year
    path_written = None
    try:
        with transaction.atomic():
            seq = next_document_number(bureau=bureau, doc_type=doc_type, year=year)
            number = format_number(bureau, doc_type, year, seq)
            doc = Document(
                inspection=inspection,
                doc_type=doc_type,
                bureau=bureau,
                year=year,
                seq=seq,
                number=number,
                content=dict(content or {}),
                issued_by=user,
                issued_at=now,
            )
            data = render_document(doc)
            from regulator.crypto import sm3_hex

            doc.sha3 = sm3_hex(data)
            doc.signature = sm2.sign(data)
            doc.pdf.save(
                f"{bureau.code}/{year}/{doc_type}-{seq:05d}-{doc.uid.hex[:8]}.pdf", ContentFile(data), save=False
            )
            path_written = doc.pdf.name
            doc.save()
            record_event(
                event="enforcement.document_issued", user=user, obj=doc, detail={"number": number, "sm3": doc.sha3}
            )
    except Exception:
        if path_written:  # the number rolled back: do not leave an orphan file behind
            from django.core.files.storage import default_storage

            default_storage.delete(path_written)
        raise
    return doc


def document_verify(doc: Document) -> dict:
    from regulator.crypto import sm3_hex

    with doc.pdf.open("rb") as fh:
        data = fh.read()
    return {"hash_ok": sm3_hex(data) == doc.sha3, "signature_ok": sm2.verify(data, doc.signature)}


# --- credit --------------------------------------------------------------------------------------


def credit_record_event(
    *, enterprise, kind: str, occurred_on: date, description: str = "", source_key: str = "", user=None
) -> CreditEvent:
    """Record (idempotently by ``source_key``) an event that moves the credit score."""
    if kind not in CreditEventKind.values:
        raise InvalidInput(_("信用事件类型无效"))
    if occurred_on > timezone.localdate():
        raise InvalidInput(_("发生日期不能晚于今天"))
    source_key = source_key or f"manual:{secrets.token_hex(8)}"
    event, created = CreditEvent.objects.get_or_create(
        source_key=source_key,
        defaults={
            "enterprise": enterprise,
            "kind": kind,
            "occurred_on": occurred_on,
            "description": description,
            "recorded_by": user,
        },
    )
    if created:
        record_event(event="enforcement.credit_event", user=user, obj=event, detail={"kind": kind})
    return event


def credit_recompute(*, today: date | None = None, enterprise_ids=None) -> dict:
    from enforcement.credit import recompute

    return recompute(today=today or timezone.localdate(), enterprise_ids=enterprise_ids)


def listing_add(*, enterprise, reason: str, user, listed_on: date | None = None, term_years: int = LISTING_TERM_YEARS):
    _require_manager(user)
    if not reason.strip():
        raise InvalidInput(_("请填写列入事由"))
    listed_on = listed_on or timezone.localdate()
    if DishonestyListing.objects.filter(enterprise=enterprise, status=ListingStatus.LISTED).exists():
        raise DomainError(_("该企业已在严重失信名单中"), code="already_listed")
    listing = DishonestyListing.objects.create(
        enterprise=enterprise,
        reason=reason.strip(),
        listed_on=listed_on,
        expires_on=listed_on.replace(year=listed_on.year + term_years)
        if not (listed_on.month == 2 and listed_on.day == 29)
        else listed_on + timedelta(days=365 * term_years),
        decided_by=user,
    )
    record_event(event="enforcement.dishonesty_listed", user=user, obj=listing, detail={"reason": reason})
    credit_recompute(enterprise_ids=[enterprise.pk])
    return listing


def repair_apply(*, listing: DishonestyListing, user, statement: str, today: date | None = None) -> RepairApplication:
    # The listed enterprise applies and the regulator decides: a regulator filing the application
    # would decide on its own request.
    if user is not None and not (
        user.is_superuser
        or (user.is_enterprise_user and user.has_perm("enterprises.view_enterprise", listing.enterprise))
    ):
        raise Forbidden(_("只有被列入名单的企业可以申请信用修复"))
    today = today or timezone.localdate()
    if listing.status != ListingStatus.LISTED:
        raise DomainError(_("该企业不在名单中"), code="not_listed")
    if today < listing.repair_possible_from:
        raise DomainError(
            _("列入满12个月后方可申请信用修复（%(d)s起）") % {"d": listing.repair_possible_from}, code="too_early"
        )
    if listing.repairs.filter(status=RepairStatus.PENDING).exists():
        raise DomainError(_("已有待审核的修复申请"), code="pending_exists")
    if not statement.strip():
        raise InvalidInput(_("请填写修复申请说明"))
    application = RepairApplication.objects.create(listing=listing, statement=statement.strip(), applied_by=user)
    record_event(event="enforcement.repair_applied", user=user, obj=listing, detail={"application": application.pk})
    return application


def repair_decide(*, application: RepairApplication, user, approve: bool, note: str) -> RepairApplication:
    _require_manager(user)
    if not note.strip():
        raise InvalidInput(_("请填写审核意见"))
    target = RepairStatus.APPROVED if approve else RepairStatus.REJECTED
    with transaction.atomic():
        application = RepairApplication.objects.select_for_update().select_related("listing").get(pk=application.pk)
        if target not in REPAIR_TRANSITIONS[application.status]:
            raise TransitionNotAllowed(
                _("该申请已处理"), current=application.status, allowed=sorted(REPAIR_TRANSITIONS[application.status])
            )
        application.status = target
        application.decided_by = user
        application.decided_at = timezone.now()
        application.decision_note = note.strip()
        application.save()
        if approve:
            listing = application.listing
            listing.status = ListingStatus.REPAIRED
            listing.removed_on = timezone.localdate()
            listing.save(update_fields=["status", "removed_on"])
        record_event(
            event="enforcement.repair_decided",
            user=user,
            obj=application.listing,
            detail={"application": application.pk, "approved": approve, "note": note},
        )
    credit_recompute(enterprise_ids=[application.listing.enterprise_id])
    return application
