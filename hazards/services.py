"""Every write of the hazard closed loop: report, the workflow transitions, photos, extensions,
listed supervision, escalation of overdue hazards and self-inspection runs.

Each transition locks the row, checks the allowed-transition map (hazards/choices.py) and the
actor (hazards/policy.py), compares-and-sets the status and version, writes a HazardTransition
row and pushes ``hazard.updated`` after commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from hazards import photos as photo_store
from hazards import policy
from hazards.choices import (
    OPEN_STATES,
    OVERDUE_STATES,
    REGULATOR_SOURCES,
    TRANSITIONS,
    CheckResult,
    EscalationTier,
    ExtensionStatus,
    HazardAction,
    HazardCategory,
    HazardGrade,
    HazardSource,
    HazardStatus,
    MajorLevel,
    PhotoKind,
    RunStatus,
)
from hazards.models import (
    ChecklistAnswer,
    ChecklistRun,
    ChecklistTemplate,
    ExtensionRequest,
    Hazard,
    HazardEscalation,
    HazardPhoto,
    HazardTransition,
)
from regulator.audit import record_event
from regulator.choices import REGULATOR_ROLES, EnterpriseRole, RegionLevel, Role
from regulator.errors import DomainError, InvalidInput, TransitionNotAllowed
from regulator.notifications import notify, notify_many
from regulator.realtime import groups_for_enterprise, push_on_commit

logger = logging.getLogger(__name__)

PLAN_FIELDS = ("measures", "funds", "responsible_person", "deadline", "emergency_plan")
_REPORT_EXTRA_FIELDS = ("source_ref", "installation", "checklist_answer")


# --- helpers ---------------------------------------------------------------------------------


def _hazard_url(hazard: Hazard) -> str:
    try:
        return reverse("hazards:detail", args=[hazard.pk])
    except Exception:  # URLs not loaded (e.g. a bare script); the notification still goes out
        return ""


def _payload(hazard: Hazard, action: str) -> dict:
    return {
        "id": hazard.pk,
        "enterprise_id": hazard.enterprise_id,
        "status": hazard.status,
        "grade": hazard.grade,
        "action": action,
        "listed": hazard.listed,
        "due_date": hazard.due_date.isoformat() if hazard.due_date else None,
    }


def _push(hazard: Hazard, action: str) -> None:
    push_on_commit(groups_for_enterprise(hazard.enterprise), "hazard.updated", _payload(hazard, action))


def _parse_date(value, field: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return timezone.localdate(value) if timezone.is_aware(value) else value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(_("日期格式应为 YYYY-MM-DD"), field=field)


def _parse_money(value, field: str) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput(_("金额格式不正确"), field=field)
    if amount < 0 or amount >= Decimal("1e10") or not amount.is_finite():
        raise InvalidInput(_("金额超出范围"), field=field)
    return amount.quantize(Decimal("0.01"))


def _require_text(value, field: str, message: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput(message, field=field)
    return text


def _not_allowed(hazard: Hazard, user, action: str) -> TransitionNotAllowed:
    return TransitionNotAllowed(
        _("当前状态“%(status)s”下不能执行“%(action)s”")
        % {"status": hazard.get_status_display(), "action": HazardAction(action).label},
        current=hazard.status,
        allowed=policy.allowed_actions(hazard, user) if user is not None else policy.state_actions(hazard),
    )


def _lock(hazard: Hazard | int) -> Hazard:
    pk = hazard.pk if isinstance(hazard, Hazard) else hazard
    return Hazard.objects.select_for_update().select_related("enterprise", "enterprise__region").get(pk=pk)


def _record(hazard: Hazard, *, action: str, user, from_status: str, comment: str = "", data: dict | None = None):
    return HazardTransition.objects.create(
        hazard=hazard,
        action=action,
        from_status=from_status,
        to_status=hazard.status,
        user=user if user is not None and user.pk else None,
        at=timezone.now(),
        comment=comment,
        data=data or {},
    )


def _transition(
    hazard: Hazard | int,
    user,
    action: str,
    apply: Callable[[Hazard], dict | None],
    *,
    comment: str = "",
) -> Hazard:
    """The one door for a workflow step. ``apply`` validates and mutates the locked row (and may
    return extra data for the timeline); the status comes from the transition map."""
    with transaction.atomic():
        locked = _lock(hazard)
        sources, target = TRANSITIONS[action]
        if locked.status not in sources or not policy.extra_condition(action, locked):
            raise _not_allowed(locked, user, action)
        if user is not None and not policy.can_take(user, action, locked):
            raise PermissionDenied(_("您无权对该隐患执行“%(action)s”") % {"action": HazardAction(action).label})
        from_status, version = locked.status, locked.version
        data = apply(locked) or {}
        if target is not None:
            locked.status = target
        locked.version = version + 1
        # Compare-and-set: a concurrent writer that got here first (or a stale lock on a database
        # without row locks) makes this update match nothing, and this step fails cleanly.
        fields = {f.attname: getattr(locked, f.attname) for f in Hazard._meta.concrete_fields if f.attname != "id"}
        fields["updated_at"] = timezone.now()
        matched = Hazard.objects.filter(pk=locked.pk, status=from_status, version=version).update(**fields)
        if matched != 1:
            locked.refresh_from_db()
            raise _not_allowed(locked, user, action)
        _record(locked, action=action, user=user, from_status=from_status, comment=comment, data=data)
        _push(locked, action)
    return locked


def compare_and_set_status(hazard: Hazard, *, expected_status: str, expected_version: int, new_status: str) -> bool:
    """Low-level CAS used by ``_transition``; exposed for tests of stale writers."""
    return (
        Hazard.objects.filter(pk=hazard.pk, status=expected_status, version=expected_version).update(
            status=new_status, version=F("version") + 1
        )
        == 1
    )


def _validate_plan(plan: dict, *, major: bool, require_deadline: bool) -> dict:
    unknown = set(plan) - set(PLAN_FIELDS)
    if unknown:
        raise InvalidInput(_("未知字段：%(f)s") % {"f": ", ".join(sorted(unknown))})
    clean = {
        "measures": (plan.get("measures") or "").strip(),
        "funds": _parse_money(plan.get("funds"), "funds"),
        "responsible_person": (plan.get("responsible_person") or "").strip()[:64],
        "deadline": _parse_date(plan.get("deadline"), "deadline"),
        "emergency_plan": (plan.get("emergency_plan") or "").strip(),
    }
    if major:
        missing = [name for name in PLAN_FIELDS if clean[name] in (None, "")]
        if missing:
            raise InvalidInput(
                _("重大隐患须落实“五到位”（措施、资金、责任人、时限、预案），缺少：%(m)s")
                % {"m": "、".join(str(Hazard._meta.get_field(m).verbose_name) for m in missing)},
                missing=missing,
            )
    if require_deadline and clean["deadline"] is None:
        raise InvalidInput(_("请填写整改期限"), field="deadline")
    return clean


def _validate_classification(grade: str, major_level, category: str, source: str | None = None):
    if grade not in HazardGrade.values:
        raise InvalidInput(_("隐患等级不正确"), field="grade")
    if major_level in ("", None):
        major_level = None
    else:
        try:
            major_level = int(major_level)
        except (TypeError, ValueError):
            raise InvalidInput(_("重大隐患级别不正确"), field="major_level")
        if major_level not in MajorLevel.values:
            raise InvalidInput(_("重大隐患级别不正确"), field="major_level")
        if grade != HazardGrade.MAJOR:
            raise InvalidInput(_("只有重大隐患才有级别"), field="major_level")
    if category and category not in HazardCategory.values:
        raise InvalidInput(_("隐患类别不正确"), field="category")
    if source is not None and source not in HazardSource.values:
        raise InvalidInput(_("隐患来源不正确"), field="source")
    return major_level


# --- recipients ------------------------------------------------------------------------------


def enterprise_users(enterprise_ids: Iterable[int], roles: Iterable[str] | None = None) -> dict[int, list]:
    """Active enterprise users granted on each enterprise, optionally by enterprise role."""
    from django.contrib.contenttypes.models import ContentType
    from guardian.models import UserObjectPermission

    from enterprises.models import Enterprise

    ids = [str(i) for i in set(enterprise_ids)]
    if not ids:
        return {}
    qs = (
        UserObjectPermission.objects.filter(
            content_type=ContentType.objects.get_for_model(Enterprise),
            permission__codename="view_enterprise",
            object_pk__in=ids,
            user__is_active=True,
            user__role=Role.ENTERPRISE_USER,
        )
        .select_related("user")
        .only(
            "object_pk",
            "user__id",
            "user__username",
            "user__email",
            "user__is_active",
            "user__role",
            "user__enterprise_role",
        )
    )
    if roles is not None:
        qs = qs.filter(user__enterprise_role__in=list(roles))
    result: dict[int, list] = defaultdict(list)
    for row in qs:
        result[int(row.object_pk)].append(row.user)
    return result


def park_managers(park_ids: Iterable[int]) -> dict[int, list]:
    from regulator.models import User

    result: dict[int, list] = defaultdict(list)
    ids = {p for p in park_ids if p}
    for user in User.objects.filter(role=Role.PARK_MANAGER, park_id__in=ids, is_active=True):
        result[user.park_id].append(user)
    return result


def county_regulators(region_ids: Iterable[int]) -> dict[int, list]:
    """Regulator staff whose jurisdiction is the enterprise's county or a node between it and the
    enterprise's region (township), keyed by the enterprise's region id."""
    from regulator.models import Region, User

    regions = {r.pk: r for r in Region.objects.filter(pk__in=set(region_ids))}
    wanted: dict[int, set[str]] = {}
    all_codes: set[str] = set()
    for rid, region in regions.items():
        codes = [c for c in region.path.strip("/").split("/") if c]
        wanted[rid] = set(codes)
        all_codes.update(codes)
    local = dict(Region.objects.filter(code__in=all_codes, level__gte=RegionLevel.COUNTY).values_list("code", "pk"))
    staff_by_region: dict[int, list] = defaultdict(list)
    for user in User.objects.filter(role__in=list(REGULATOR_ROLES), is_active=True, jurisdiction_id__in=local.values()):
        staff_by_region[user.jurisdiction_id].append(user)
    result: dict[int, list] = {}
    for rid, codes in wanted.items():
        users = []
        for code in codes:
            if code in local:
                users.extend(staff_by_region.get(local[code], []))
        result[rid] = users
    return result


# --- report ----------------------------------------------------------------------------------


def hazard_report(
    *,
    enterprise,
    user,
    source: str,
    description: str,
    location: str = "",
    category: str = "",
    grade: str = "ordinary",
    major_level=None,
    found_at=None,
    photos=(),
    **plan_fields,
) -> Hazard:
    """Record a hazard found by anyone (``user`` None = the system, e.g. a device alert).

    A hazard found by the regulator itself (inspection, spot check) is confirmed at once: the
    inspector's finding needs no confirmation by the enterprise. Extra keywords: the plan
    (measures, funds, responsible_person, deadline, emergency_plan) and source_ref,
    installation, checklist_answer.
    """
    extra = {k: plan_fields.pop(k) for k in _REPORT_EXTRA_FIELDS if k in plan_fields}
    if user is not None and not policy.can_report(user, enterprise):
        raise PermissionDenied(_("您无权为该企业上报隐患"))
    description = _require_text(description, "description", _("请填写隐患描述"))
    major_level = _validate_classification(grade, major_level, category, source)
    plan = _validate_plan(plan_fields, major=False, require_deadline=False)
    if found_at is not None and timezone.is_naive(found_at):
        found_at = timezone.make_aware(found_at)
    now = timezone.now()
    if found_at is not None and found_at > now + timedelta(minutes=5):
        raise InvalidInput(_("发现时间不能晚于当前时间"), field="found_at")
    processed = [photo_store.process(p) for p in list(photos)[: settings.HAZARD_PHOTOS_PER_UPLOAD + 1]]
    if len(processed) > settings.HAZARD_PHOTOS_PER_UPLOAD:
        raise InvalidInput(_("一次最多上传 %(n)s 张照片") % {"n": settings.HAZARD_PHOTOS_PER_UPLOAD})
    written: list[str] = []
    try:
        with transaction.atomic():
            hazard = Hazard.objects.create(
                enterprise=enterprise,
                description=description,
                location=(location or "").strip()[:200],
                category=category or "",
                grade=grade,
                major_level=major_level,
                source=source,
                source_ref=str(extra.get("source_ref") or "")[:64],
                installation=extra.get("installation"),
                checklist_answer=extra.get("checklist_answer"),
                found_by=user if user is not None and user.pk else None,
                found_at=found_at or now,
                reported_at=now,
                due_date=plan["deadline"],
                **plan,
            )
            _record(hazard, action=HazardAction.REPORT, user=user, from_status="", data={"source": source})
            for item in processed:
                written.extend(_save_photo(hazard, item, user, PhotoKind.BEFORE))
            regulator_found = (
                user is not None and policy.is_regulator_for(user, enterprise) and source in REGULATOR_SOURCES
            )
            if regulator_found:
                hazard.status = HazardStatus.CONFIRMED
                hazard.confirmed_at = now
                hazard.version += 1
                hazard.save(update_fields=["status", "confirmed_at", "version", "updated_at"])
                _record(
                    hazard,
                    action=HazardAction.CONFIRM,
                    user=user,
                    from_status=HazardStatus.REPORTED,
                    comment=_("监管部门检查发现，自动确认"),
                )
                if hazard.is_major:
                    _notify_major_confirmed(hazard)
            _notify_reported(hazard, user)
            _push(hazard, HazardAction.REPORT)
            if hazard.is_major:
                record_event(event="hazard.major_reported", user=user, obj=hazard, detail={"source": source})
    except Exception:
        photo_store.remove_files(written)
        raise
    return hazard


def _save_photo(hazard: Hazard, processed, user, kind: str) -> list[str]:
    rel, rel_thumb = photo_store.store(processed)
    try:
        HazardPhoto.objects.create(
            hazard=hazard,
            kind=kind,
            path=rel,
            thumb_path=rel_thumb,
            content_type=processed.content_type,
            width=processed.width,
            height=processed.height,
            size=len(processed.data),
            original_name=processed.original_name,
            uploaded_by=user if user is not None and user.pk else None,
        )
    except Exception:
        photo_store.remove_files([rel, rel_thumb])
        raise
    return [rel, rel_thumb]


def hazard_add_photos(*, hazard: Hazard, user, files, kind: str = PhotoKind.BEFORE) -> list[HazardPhoto]:
    """Attach photos (before: the defect; after: rectification evidence). All or nothing."""
    if kind not in PhotoKind.values:
        raise InvalidInput(_("照片类型不正确"), field="kind")
    if user is not None and not policy.can_upload_photo(user, hazard):
        raise PermissionDenied(_("您无权为该隐患上传照片"))
    files = list(files)
    if not files:
        raise InvalidInput(_("请选择照片"), field="photos")
    if len(files) > settings.HAZARD_PHOTOS_PER_UPLOAD:
        raise InvalidInput(_("一次最多上传 %(n)s 张照片") % {"n": settings.HAZARD_PHOTOS_PER_UPLOAD})
    processed = [photo_store.process(f) for f in files]
    written: list[str] = []
    try:
        with transaction.atomic():
            before = set(hazard.photos.values_list("pk", flat=True))
            for item in processed:
                written.extend(_save_photo(hazard, item, user, kind))
            created = list(hazard.photos.exclude(pk__in=before))
            # Evidence attached to a hazard is a write like any other: who added what, and when.
            record_event(
                event="hazard.photos_added",
                user=user,
                obj=hazard,
                detail={"kind": kind, "photos": [str(photo.uid) for photo in created]},
            )
    except Exception:
        photo_store.remove_files(written)
        raise
    return created


# --- workflow steps --------------------------------------------------------------------------


def hazard_confirm(*, hazard, user, comment: str = "", grade: str | None = None, major_level=None) -> Hazard:
    """Confirm a reported hazard, optionally re-grading it; a major one is reported to the regulator."""

    def apply(h: Hazard):
        data = {}
        if grade is not None:
            level = _validate_classification(grade, major_level, h.category)
            if (grade, level) != (h.grade, h.major_level):
                data = {"grade": [h.grade, grade], "major_level": [h.major_level, level]}
            h.grade, h.major_level = grade, level
        h.confirmed_at = timezone.now()
        return data

    result = _transition(hazard, user, HazardAction.CONFIRM, apply, comment=comment)
    if result.is_major:
        with transaction.atomic():
            _notify_major_confirmed(result)
            record_event(event="hazard.major_confirmed", user=user, obj=result)
    return result


def hazard_dismiss(*, hazard, user, reason: str) -> Hazard:
    reason = _require_text(reason, "reason", _("请填写驳回理由"))

    def apply(h: Hazard):
        h.dismissed_reason = reason

    result = _transition(hazard, user, HazardAction.DISMISS, apply, comment=reason)
    record_event(event="hazard.dismissed", user=user, obj=result, detail={"reason": reason})
    return result


def hazard_start_rectification(*, hazard, user, comment: str = "", **plan) -> Hazard:
    """Fix the rectification plan (五到位 for a major hazard) and start rectifying."""

    def apply(h: Hazard):
        merged = {name: getattr(h, name) for name in PLAN_FIELDS}
        merged.update({k: v for k, v in plan.items() if v not in (None, "")})
        unknown = set(plan) - set(PLAN_FIELDS)
        if unknown:
            raise InvalidInput(_("未知字段：%(f)s") % {"f": ", ".join(sorted(unknown))})
        clean = _validate_plan(merged, major=h.is_major, require_deadline=True)
        if h.deadline and clean["deadline"] > h.deadline:
            raise InvalidInput(
                _("整改期限不能晚于已确定的期限 %(d)s，如需更多时间请申请延期") % {"d": h.deadline}, field="deadline"
            )
        if clean["deadline"] < timezone.localdate() and clean["deadline"] != h.deadline:
            raise InvalidInput(_("整改期限不能早于今天"), field="deadline")
        for name, value in clean.items():
            setattr(h, name, value)
        h.due_date = clean["deadline"]
        return {"plan": {k: str(v) if v is not None else None for k, v in clean.items()}}

    return _transition(hazard, user, HazardAction.START_RECTIFICATION, apply, comment=comment)


def hazard_submit_rectification(*, hazard, user, note: str, cost_spent=None, photos=()) -> Hazard:
    """Submit the rectification for verification, with a description and evidence photos."""
    note = _require_text(note, "note", _("请填写整改情况说明"))
    cost = _parse_money(cost_spent, "cost_spent")
    processed = [photo_store.process(p) for p in photos]
    written: list[str] = []

    def apply(h: Hazard):
        has_after = h.photos.filter(kind=PhotoKind.AFTER).exists() or processed
        if h.is_major and not has_after:
            raise InvalidInput(_("重大隐患提交验收须上传整改后照片"), field="photos")
        for item in processed:
            written.extend(_save_photo(h, item, user, PhotoKind.AFTER))
        h.rectification_note = note
        if cost is not None:
            h.cost_spent = cost
        h.submitted_at = timezone.now()
        return {"photos": len(processed), "cost_spent": str(cost) if cost is not None else None}

    try:
        result = _transition(hazard, user, HazardAction.SUBMIT_RECTIFICATION, apply, comment=note)
    except Exception:
        photo_store.remove_files(written)
        raise
    _notify_verifiers(result)
    return result


def hazard_verify(*, hazard, user, comment: str = "") -> Hazard:
    """Verification passed: the hazard is closed (销号)."""

    def apply(h: Hazard):
        now = timezone.now()
        h.closed_at = now
        h.closed_by = user if user is not None and user.pk else None
        submitted_day = timezone.localdate(h.submitted_at) if h.submitted_at else timezone.localdate(now)
        h.closed_on_time = h.due_date is None or submitted_day <= h.due_date
        h.is_overdue = False
        h.last_failure_reason = ""

    result = _transition(hazard, user, HazardAction.VERIFY, apply, comment=comment)
    record_event(event="hazard.verified", user=user, obj=result, detail={"grade": result.grade})
    return result


def hazard_fail_verification(*, hazard, user, reason: str) -> Hazard:
    reason = _require_text(reason, "reason", _("请填写验收不通过的理由"))

    def apply(h: Hazard):
        h.last_failure_reason = reason
        h.submitted_at = None

    result = _transition(hazard, user, HazardAction.FAIL_VERIFICATION, apply, comment=reason)
    record_event(event="hazard.verification_failed", user=user, obj=result, detail={"reason": reason})
    notify(
        users=[u for us in enterprise_users([result.enterprise_id]).values() for u in us],
        title=_("隐患验收未通过：%(code)s") % {"code": result.code},
        body=reason,
        url=_hazard_url(result),
        level="warning",
        dedupe_key=f"hazard:{result.pk}:failed:{result.version}",
    )
    return result


def hazard_request_extension(*, hazard, user, new_deadline, reason: str) -> ExtensionRequest:
    reason = _require_text(reason, "reason", _("请填写延期理由"))
    new_deadline = _parse_date(new_deadline, "new_deadline")
    if new_deadline is None:
        raise InvalidInput(_("请填写申请延期至的日期"), field="new_deadline")
    holder: dict = {}

    def apply(h: Hazard):
        if h.due_date and new_deadline <= h.due_date:
            raise InvalidInput(_("延期后的期限须晚于当前期限 %(d)s") % {"d": h.due_date}, field="new_deadline")
        if new_deadline < timezone.localdate():
            raise InvalidInput(_("延期后的期限不能早于今天"), field="new_deadline")
        try:
            with transaction.atomic():
                holder["request"] = ExtensionRequest.objects.create(
                    hazard=h, requested_by=user, old_deadline=h.due_date, new_deadline=new_deadline, reason=reason
                )
        except IntegrityError:
            raise DomainError(_("该隐患已有待审批的延期申请"), code="extension_pending")
        return {
            "new_deadline": new_deadline.isoformat(),
            "old_deadline": h.due_date.isoformat() if h.due_date else None,
        }

    result = _transition(hazard, user, HazardAction.REQUEST_EXTENSION, apply, comment=reason)
    _notify_extension_deciders(result, holder["request"])
    return holder["request"]


def hazard_decide_extension(*, hazard, user, approve: bool, comment: str = "") -> ExtensionRequest:
    """Approve or refuse the pending extension; an approval moves the effective deadline."""
    if not approve:
        comment = _require_text(comment, "comment", _("不批准时请填写理由"))
    holder: dict = {}

    def apply(h: Hazard):
        request = ExtensionRequest.objects.select_for_update().get(hazard=h, status=ExtensionStatus.PENDING)
        request.status = ExtensionStatus.APPROVED if approve else ExtensionStatus.REFUSED
        request.decided_by = user if user is not None and user.pk else None
        request.decided_at = timezone.now()
        request.decision_comment = comment
        request.save()
        holder["request"] = request
        if approve:
            h.due_date = request.new_deadline
            if h.due_date >= timezone.localdate():
                h.is_overdue = False
                h.escalation_tier = 0
        return {"approved": approve, "new_deadline": request.new_deadline.isoformat(), "request": request.pk}

    result = _transition(hazard, user, HazardAction.DECIDE_EXTENSION, apply, comment=comment)
    request = holder["request"]
    record_event(
        event="hazard.extension_decided",
        user=user,
        obj=result,
        detail={"approved": approve, "new_deadline": request.new_deadline.isoformat()},
    )
    if request.requested_by_id:
        notify(
            users=[request.requested_by],
            title=(_("延期申请已批准：%(code)s") if approve else _("延期申请未批准：%(code)s")) % {"code": result.code},
            body=comment,
            url=_hazard_url(result),
            dedupe_key=f"hazard:{result.pk}:extension:{request.pk}:decided",
        )
    return request


def hazard_list_supervision(*, hazard, user, supervisor=None, due=None, comment: str = "") -> Hazard:
    """挂牌督办: the regulator formally tracks a major hazard until it is closed."""
    due = _parse_date(due, "due")
    if due is None:
        raise InvalidInput(_("请填写督办期限"), field="due")
    if supervisor is not None and not (supervisor.is_regulator and supervisor.is_active):
        raise InvalidInput(_("督办人员须为监管部门人员"), field="supervisor")

    def apply(h: Hazard):
        if supervisor is not None and not policy.is_regulator_for(supervisor, h.enterprise):
            raise InvalidInput(_("督办人员须为该企业所在辖区的监管人员"), field="supervisor")
        h.listed = True
        h.listed_at = timezone.now()
        h.listed_by = user if user is not None and user.pk else None
        h.supervisor = supervisor or (user if user is not None and user.is_regulator else None)
        h.supervision_due = due
        return {"supervisor": h.supervisor_id, "due": due.isoformat()}

    result = _transition(hazard, user, HazardAction.LIST_SUPERVISION, apply, comment=comment)
    record_event(event="hazard.listed_supervision", user=user, obj=result, detail={"due": due.isoformat()})
    recipients = [u for us in enterprise_users([result.enterprise_id]).values() for u in us]
    if result.supervisor:
        recipients.append(result.supervisor)
    notify(
        users=recipients,
        title=_("重大隐患挂牌督办：%(code)s") % {"code": result.code},
        body=_("督办期限：%(d)s") % {"d": due},
        url=_hazard_url(result),
        level="warning",
        dedupe_key=f"hazard:{result.pk}:listed",
    )
    return result


# --- notifications around the workflow -------------------------------------------------------


def _notify_reported(hazard: Hazard, user) -> None:
    # The enterprise's managers learn about hazards they did not report themselves.
    managers = enterprise_users([hazard.enterprise_id], roles=[EnterpriseRole.SAFETY_MANAGER, EnterpriseRole.PRINCIPAL])
    recipients = [u for u in managers.get(hazard.enterprise_id, []) if user is None or u.pk != user.pk]
    if recipients:
        notify(
            users=recipients,
            title=_("新隐患：%(code)s %(desc)s") % {"code": hazard.code, "desc": hazard.description[:30]},
            body=hazard.description,
            url=_hazard_url(hazard),
            dedupe_key=f"hazard:{hazard.pk}:reported",
            email=hazard.is_major,
        )


def _notify_major_confirmed(hazard: Hazard) -> None:
    staff = county_regulators([hazard.enterprise.region_id]).get(hazard.enterprise.region_id, [])
    notify(
        users=staff,
        title=_("重大隐患报告：%(ent)s %(code)s") % {"ent": hazard.enterprise.name, "code": hazard.code},
        body=hazard.description,
        url=_hazard_url(hazard),
        level="warning",
        dedupe_key=f"hazard:{hazard.pk}:major_confirmed",
    )


def _notify_verifiers(hazard: Hazard) -> None:
    if hazard.is_major:
        users = county_regulators([hazard.enterprise.region_id]).get(hazard.enterprise.region_id, [])
        if hazard.supervisor:
            users = [*users, hazard.supervisor]
    else:
        users = enterprise_users([hazard.enterprise_id], roles=list(policy.MANAGER_ROLES)).get(hazard.enterprise_id, [])
    notify(
        users=users,
        title=_("隐患待验收：%(code)s") % {"code": hazard.code},
        body=hazard.rectification_note,
        url=_hazard_url(hazard),
        dedupe_key=f"hazard:{hazard.pk}:submitted:{hazard.version}",
        email=hazard.is_major,
    )


def _notify_extension_deciders(hazard: Hazard, request: ExtensionRequest) -> None:
    if hazard.is_major:
        users = county_regulators([hazard.enterprise.region_id]).get(hazard.enterprise.region_id, [])
    else:
        users = enterprise_users([hazard.enterprise_id], roles=list(policy.MANAGER_ROLES)).get(hazard.enterprise_id, [])
    notify(
        users=users,
        title=_("延期申请待审批：%(code)s") % {"code": hazard.code},
        body=request.reason,
        url=_hazard_url(hazard),
        dedupe_key=f"hazard:{hazard.pk}:extension:{request.pk}",
    )


# --- escalation ------------------------------------------------------------------------------


def escalation_thresholds() -> list[tuple[int, int]]:
    """(tier, days overdue) in escalation order."""
    return [
        (EscalationTier.PRINCIPAL, settings.HAZARD_ESCALATION_PRINCIPAL_DAYS),
        (EscalationTier.PARK, settings.HAZARD_ESCALATION_PARK_DAYS),
        (EscalationTier.COUNTY, settings.HAZARD_ESCALATION_COUNTY_DAYS),
    ]


def escalate_overdue(*, now: datetime | None = None, batch_size: int = 5000) -> dict:
    """Mark overdue hazards, escalate each once per tier and effective deadline, then notify.

    Two phases, like an outbox: (1) in short transactions, lock a batch of due hazards (others
    skip locked rows), record a HazardEscalation per step and raise the hazard's tier; (2) drain
    the escalations not yet notified: resolve recipients in bulk, notify (one message per hazard,
    or one digest per recipient when many arrive at once), stamp them notified. Running it twice,
    or twice at the same time, escalates and notifies once: (hazard, tier, due_date) is unique,
    the tier only grows, and notification dedupe keys are derived from the escalation ids.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    started = time.monotonic()
    summary = {"marked": 0, "unmarked": 0, "escalated": {int(t): 0 for t, _d in escalation_thresholds()}, "notified": 0}
    with transaction.atomic():
        summary["marked"] = Hazard.objects.overdue(today).filter(is_overdue=False).update(is_overdue=True)
        summary["unmarked"] = (
            Hazard.objects.filter(is_overdue=True)
            .exclude(pk__in=Hazard.objects.overdue(today).values("pk"))
            .update(is_overdue=False, escalation_tier=0)
        )
    marked_at = time.monotonic()
    for tier, days in escalation_thresholds():
        cutoff = today - timedelta(days=days)
        if connection.vendor == "postgresql":
            summary["escalated"][int(tier)] += _escalate_tier_sql(tier, cutoff, today, now)
            continue
        after = None
        while True:
            after, count = _escalate_batch(tier, cutoff, today, now, batch_size, after)
            summary["escalated"][int(tier)] += count
            if after is None:
                break
    recorded_at = time.monotonic()
    summary["notified"] = notify_pending_escalations(today=today)
    summary["seconds"] = {
        "mark": round(marked_at - started, 2),
        "record": round(recorded_at - marked_at, 2),
        "notify": round(time.monotonic() - recorded_at, 2),
    }
    return summary


def _escalate_tier_sql(tier: int, cutoff: date, today: date, now: datetime) -> int:
    """The same step as ``_escalate_batch``, set-based in one PostgreSQL statement: lock the due
    hazards (skipping rows another run holds), record the steps, raise the tiers."""
    hazards = connection.ops.quote_name(Hazard._meta.db_table)
    steps = connection.ops.quote_name(HazardEscalation._meta.db_table)
    sql = f"""
        WITH due AS (
            SELECT id, due_date FROM {hazards}
            WHERE status = ANY(%(states)s) AND due_date < %(today)s AND due_date <= %(cutoff)s
              AND escalation_tier < %(tier)s
            FOR UPDATE SKIP LOCKED
        ), recorded AS (
            INSERT INTO {steps} (hazard_id, tier, due_date, days_overdue, at, recipients, notified_at)
            SELECT id, %(tier)s, due_date, %(today)s::date - due_date, %(now)s, '[]'::jsonb, NULL FROM due
            ON CONFLICT (hazard_id, tier, due_date) DO NOTHING
            RETURNING hazard_id
        ), raised AS (
            UPDATE {hazards} AS h SET escalation_tier = %(tier)s
            FROM due WHERE h.id = due.id AND h.escalation_tier < %(tier)s
            RETURNING h.id
        )
        SELECT (SELECT count(*) FROM recorded), (SELECT count(*) FROM raised)
    """  # noqa: S608 - table names from model metadata, values bound as parameters
    params = {"states": list(OVERDUE_STATES), "today": today, "cutoff": cutoff, "tier": int(tier), "now": now}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _escalate_batch(tier: int, cutoff: date, today: date, now: datetime, batch_size: int, after):
    """Escalate the next batch, keyset on (due_date, id) along the partial index of open
    deadlines; returns (position to continue after, or None when done; rows escalated)."""
    with transaction.atomic():
        qs = Hazard.objects.overdue(today).filter(due_date__lte=cutoff, escalation_tier__lt=tier)
        if after is not None:
            last_due, last_pk = after
            qs = qs.filter(Q(due_date__gt=last_due) | Q(due_date=last_due, pk__gt=last_pk))
        rows = list(
            qs.order_by("due_date", "pk").select_for_update(skip_locked=True).values_list("pk", "due_date")[:batch_size]
        )
        if not rows:
            return None, 0
        HazardEscalation.objects.bulk_create(
            [
                HazardEscalation(hazard_id=pk, tier=tier, due_date=due, days_overdue=(today - due).days, at=now)
                for pk, due in rows
            ],
            ignore_conflicts=True,
        )
        Hazard.objects.filter(pk__in=[pk for pk, _due in rows], escalation_tier__lt=tier).update(escalation_tier=tier)
    last_pk, last_due = rows[-1]
    return ((last_due, last_pk) if len(rows) == batch_size else None), len(rows)


def _recipients_for(tier: int, steps: list[_PendingStep]) -> dict[int, list]:
    """Recipients of one tier for each hazard (by hazard id)."""
    if tier == EscalationTier.PRINCIPAL:
        users = enterprise_users(s.enterprise_id for s in steps)
        result = {}
        for s in steps:
            everyone = users.get(s.enterprise_id, [])
            principals = [u for u in everyone if u.enterprise_role == EnterpriseRole.PRINCIPAL]
            # No principal account: the enterprise's other users stand in, so the step is not lost.
            result[s.hazard_id] = principals or everyone
        return result
    if tier == EscalationTier.PARK:
        managers = park_managers(s.park_id for s in steps)
        return {s.hazard_id: managers.get(s.park_id, []) if s.park_id else [] for s in steps}
    staff = county_regulators(s.region_id for s in steps)
    return {s.hazard_id: staff.get(s.region_id, []) for s in steps}


def _stamp_notified(rows: list[tuple[int, list[str]]], stamp: datetime) -> None:
    """Mark escalations notified with their recipients: one statement per 5,000 rows on
    PostgreSQL (UPDATE ... FROM VALUES); grouped by recipient list elsewhere."""
    table = connection.ops.quote_name(HazardEscalation._meta.db_table)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for start in range(0, len(rows), 5000):
                part = rows[start : start + 5000]
                values = ", ".join(["(%s::bigint, %s::jsonb)"] * len(part))
                params: list = [stamp]
                for pk, names in part:
                    params += [pk, json.dumps(names, ensure_ascii=False)]
                cursor.execute(
                    f"UPDATE {table} AS e SET notified_at = %s, recipients = v.r "  # noqa: S608 - no user input
                    f"FROM (VALUES {values}) AS v(id, r) WHERE e.id = v.id",
                    params,
                )
        return
    groups: dict[tuple, list[int]] = defaultdict(list)
    for pk, names in rows:
        groups[tuple(names)].append(pk)
    for names, ids in groups.items():
        for start in range(0, len(ids), 500):
            HazardEscalation.objects.filter(pk__in=ids[start : start + 500]).update(
                notified_at=stamp, recipients=list(names)
            )


@dataclass(frozen=True, slots=True)
class _PendingStep:
    """One escalation waiting to be notified, as plain values (thousands per run)."""

    pk: int
    tier: int
    due_date: date
    days_overdue: int
    hazard_id: int
    description: str
    reported_at: datetime
    enterprise_id: int
    enterprise_name: str
    region_id: int
    park_id: int | None

    @property
    def code(self) -> str:
        return f"YH{timezone.localtime(self.reported_at):%Y}{self.hazard_id:07d}"


_PENDING_VALUES = (
    "pk",
    "tier",
    "due_date",
    "days_overdue",
    "hazard_id",
    "hazard__description",
    "hazard__reported_at",
    "hazard__enterprise_id",
    "hazard__enterprise__name",
    "hazard__enterprise__region_id",
    "hazard__enterprise__park_id",
)


def notify_pending_escalations(*, today: date | None = None, chunk: int = 20000) -> int:
    """Drain escalations not yet notified. Safe to run concurrently (skip locked) and to re-run
    after a crash between notifying and stamping (the dedupe keys are the same)."""
    today = today or timezone.localdate()
    sent = 0
    while True:
        with transaction.atomic():
            pending = [
                _PendingStep(*row)
                for row in HazardEscalation.objects.filter(notified_at__isnull=True)
                .order_by("pk")
                .select_for_update(skip_locked=True, of=("self",))
                .values_list(*_PENDING_VALUES)[:chunk]
            ]
            if not pending:
                return sent
            per_user: dict[tuple[int, int], tuple] = {}
            names: dict[int, list[str]] = {}
            for tier in {e.tier for e in pending}:
                steps = [e for e in pending if e.tier == tier]
                recipients = _recipients_for(tier, steps)
                for step in steps:
                    users = recipients.get(step.hazard_id, [])
                    names[step.pk] = sorted({u.username for u in users})
                    for user in users:
                        per_user.setdefault((user.pk, tier), (user, []))[1].append(step)
            messages = [_escalation_message(user, steps, tier) for (_uid, tier), (user, steps) in per_user.items()]
            sent += notify_many(messages, level="warning")
            _stamp_notified([(step.pk, names.get(step.pk, [])) for step in pending], timezone.now())
        if len(pending) < chunk:
            return sent


def _url(name: str, *args) -> str:
    try:
        return reverse(name, args=args)
    except Exception:  # URLs not loaded (a bare script): the notification still goes out
        return ""


def _escalation_message(user, steps: list[_PendingStep], tier: int) -> dict:
    """One notification for one recipient: the hazard itself, or a digest when several arrive."""
    label = EscalationTier(tier).label
    if len(steps) == 1:
        step = steps[0]
        return {
            "user": user,
            "title": _("隐患逾期%(days)s天（升级至%(tier)s）：%(ent)s %(code)s")
            % {"days": step.days_overdue, "tier": label, "ent": step.enterprise_name, "code": step.code},
            "body": step.description,
            "url": _url("hazards:detail", step.hazard_id),
            "dedupe_key": f"hazard:{step.hazard_id}:esc:{tier}:{step.due_date.isoformat()}",
        }
    # Many at once (a first run, a big county): one digest instead of a flood of mails.
    ids = sorted(step.pk for step in steps)
    digest = hashlib.sha1(",".join(map(str, ids)).encode(), usedforsecurity=False).hexdigest()[:16]
    url = _url("hazards:list")
    return {
        "user": user,
        "title": _("%(n)s 条隐患逾期升级至%(tier)s") % {"n": len(steps), "tier": label},
        "body": "\n".join(f"{s.code} {s.enterprise_name}：{s.description[:40]}" for s in steps[:50]),
        "url": f"{url}?overdue=1" if url else "",
        "dedupe_key": f"hazard-esc:{tier}:{digest}",
    }


# --- self-inspection -------------------------------------------------------------------------


def checklist_start_run(*, template: ChecklistTemplate, enterprise, user) -> ChecklistRun:
    if not policy.is_member(user, enterprise):
        raise PermissionDenied(_("只有本企业用户可以开展自查"))
    if not template.active:
        raise DomainError(_("该检查表已停用"))
    from hazards.selectors import templates_for_enterprise

    if not templates_for_enterprise(enterprise).filter(pk=template.pk).exists():
        raise InvalidInput(_("该检查表不适用于本企业所属行业"))
    existing = ChecklistRun.objects.filter(
        template=template, enterprise=enterprise, status=RunStatus.IN_PROGRESS
    ).first()
    if existing:
        return existing
    return ChecklistRun.objects.create(template=template, enterprise=enterprise, run_by=user)


def checklist_answer(
    *, run: ChecklistRun, item, user, result: str, note: str = "", photos=(), grade: str = "ordinary"
) -> ChecklistAnswer:
    """Record one item; a failed item becomes a hazard in the same step, with its photo."""
    if not policy.is_member(user, run.enterprise):
        raise PermissionDenied(_("只有本企业用户可以填写自查"))
    if result not in CheckResult.values:
        raise InvalidInput(_("检查结果不正确"), field="result")
    if item.template_id != run.template_id:
        raise InvalidInput(_("检查项不属于该检查表"), field="item")
    with transaction.atomic():
        run = ChecklistRun.objects.select_for_update().get(pk=run.pk)
        if run.status != RunStatus.IN_PROGRESS:
            raise DomainError(_("该次自查已完成，不能再修改"), code="run_completed")
        answer = ChecklistAnswer.objects.filter(run=run, item=item).first()
        if answer and answer.hazards.exists() and result != CheckResult.FAIL:
            raise DomainError(_("该项已生成隐患，不能改为合格；请在隐患中处理"), code="hazard_exists")
        if answer is None:
            answer = ChecklistAnswer(run=run, item=item)
        answer.result, answer.note, answer.answered_at = result, note.strip(), timezone.now()
        answer.save()
        if result == CheckResult.FAIL and not answer.hazards.exists():
            description = f"{item.text}" + (f"：{note.strip()}" if note.strip() else "")
            if item.basis:
                description += f"（依据：{item.basis}）"
            hazard_report(
                enterprise=run.enterprise,
                user=user,
                source=HazardSource.SELF_CHECK,
                description=description,
                category=item.category or "",
                grade=grade,
                photos=photos,
                source_ref=f"checklist_run:{run.pk}",
                checklist_answer=answer,
            )
    return answer


def checklist_complete_run(*, run: ChecklistRun, user) -> ChecklistRun:
    if not policy.is_member(user, run.enterprise):
        raise PermissionDenied(_("只有本企业用户可以提交自查"))
    with transaction.atomic():
        run = ChecklistRun.objects.select_for_update().select_related("template").get(pk=run.pk)
        if run.status != RunStatus.IN_PROGRESS:
            raise DomainError(_("该次自查已完成"), code="run_completed")
        answered = set(run.answers.values_list("item_id", flat=True))
        missing = run.template.items.exclude(pk__in=answered).count()
        if missing:
            raise InvalidInput(_("还有 %(n)s 项未填写") % {"n": missing}, missing=missing)
        run.status = RunStatus.COMPLETED
        run.completed_at = timezone.now()
        run.next_due = run.compute_next_due()
        run.save()
        failed = run.answers.filter(result=CheckResult.FAIL).count()
        record_event(event="hazards.checklist_completed", user=user, obj=run, detail={"failed": failed})
    return run


def checklist_template_create(*, user, name: str, industry=None, cycle_days: int = 30, items=()) -> ChecklistTemplate:
    """Regulators define checklists; items are dicts with text, basis and category."""
    if not (user.is_superuser or user.is_regulator):
        raise PermissionDenied(_("只有监管部门可以制定检查表"))
    name = _require_text(name, "name", _("请填写检查表名称"))
    if not 1 <= int(cycle_days) <= 3660:
        raise InvalidInput(_("检查周期应为 1 到 3660 天"), field="cycle_days")
    from hazards.models import ChecklistItem

    with transaction.atomic():
        template = ChecklistTemplate.objects.create(
            name=name, industry=industry, cycle_days=int(cycle_days), created_by=user
        )
        for order, item in enumerate(items, start=1):
            text = _require_text(item.get("text"), "items", _("检查内容不能为空"))
            category = item.get("category") or ""
            if category and category not in HazardCategory.values:
                raise InvalidInput(_("隐患类别不正确"), field="items")
            ChecklistItem.objects.create(
                template=template, order=order, text=text, basis=(item.get("basis") or "")[:255], category=category
            )
        record_event(event="hazards.checklist_template_created", user=user, obj=template)
    return template


__all__ = [
    "OPEN_STATES",
    "checklist_answer",
    "checklist_complete_run",
    "checklist_start_run",
    "checklist_template_create",
    "escalate_overdue",
    "hazard_add_photos",
    "hazard_confirm",
    "hazard_decide_extension",
    "hazard_dismiss",
    "hazard_fail_verification",
    "hazard_list_supervision",
    "hazard_report",
    "hazard_request_extension",
    "hazard_start_rectification",
    "hazard_submit_rectification",
    "hazard_verify",
]
