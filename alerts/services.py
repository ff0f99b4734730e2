"""Every alert write: raising and clearing (from the engine), the ISA-18.2 lifecycle steps (from people),
responses, reviews, flood grouping, level-1 linkage and tiered escalation.

Each function locks the alert row, checks the transition map, writes a transition row, audits what a
person did, and pushes the new state after commit through regulator.realtime.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from alerts.choices import (
    ANNUNCIATED_STATES,
    MASKED_STATES,
    OPEN_STATES,
    REQUIRED_RESPONSE,
    RESOLVE,
    TRANSITIONS,
    UNACKED_STATES,
    AlertAction,
    AlertKind,
    AlertState,
    LinkageStatus,
    ResponseKind,
    Tier,
    allowed_actions,
)
from alerts.engine import OVER_RANGE_DETAIL
from alerts.models import (
    Alert,
    AlertChangeApplied,
    AlertComment,
    AlertEscalation,
    AlertResponse,
    AlertTransition,
    FloodGroup,
)
from alerts.payloads import alert_payload
from regulator.audit import record_event
from regulator.choices import EnterpriseRole, RegionLevel, Role
from regulator.errors import InvalidInput, TransitionNotAllowed
from regulator.notifications import notify
from regulator.realtime import groups_for_enterprise, push_on_commit

logger = logging.getLogger(__name__)

SHELVING_ROLES = frozenset({Role.SECTION_HEAD, Role.REGULATOR_ADMIN})
SHELVING_ENTERPRISE_ROLES = frozenset({EnterpriseRole.SAFETY_MANAGER, EnterpriseRole.PRINCIPAL})


# --- who may do what (scope is checked before: out-of-scope alerts are never found) -----------------
def can_act(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and not user.is_mlps_admin)


def can_shelve(user) -> bool:
    if not can_act(user):
        return False
    if user.is_superuser or user.role in SHELVING_ROLES:
        return True
    return user.is_enterprise_user and user.enterprise_role in SHELVING_ENTERPRISE_ROLES


def can_review(user) -> bool:
    return can_act(user) and (user.is_superuser or user.is_regulator)


# --- helpers --------------------------------------------------------------------------------------
def _minutes(table: dict, level: int) -> timedelta:
    return timedelta(minutes=table.get(level, table.get(4, 60)))


def ack_deadline(level: int, raised_at: datetime) -> datetime:
    return raised_at + _minutes(settings.ALERT_ACK_MINUTES, level)


def response_deadline(level: int, raised_at: datetime) -> datetime | None:
    if REQUIRED_RESPONSE.get(level) is None:
        return None
    return raised_at + _minutes(settings.ALERT_RESPONSE_MINUTES, level)


def _relations_loaded(alert: Alert) -> bool:
    """True when everything the payload and the groups need is already in memory."""
    wanted = {"enterprise": True, "device": alert.device_id, "channel": alert.channel_id}
    wanted["flood_group"] = alert.flood_group_id
    for name, needed in wanted.items():
        if needed and not Alert._meta.get_field(name).is_cached(alert):
            return False
    enterprise = alert.enterprise
    return enterprise._meta.get_field("region").is_cached(enterprise)


def _push(alert: Alert, event: str) -> None:
    if not _relations_loaded(alert):  # the raise path arrives with them loaded; saves a query there
        alert = Alert.objects.select_related("enterprise__region", "device", "channel", "flood_group").get(pk=alert.pk)
    push_on_commit(groups_for_enterprise(alert.enterprise), event, alert_payload(alert))


def _record(alert: Alert, action: str, from_state: str, to_state: str, user, comment: str, at: datetime) -> None:
    AlertTransition.objects.create(
        alert=alert, at=at, action=action, from_state=from_state, to_state=to_state, user=user, comment=comment[:255]
    )


def _pending_deadlines(alert: Alert) -> list[datetime]:
    if alert.state not in ANNUNCIATED_STATES:
        return []
    pending = []
    if alert.state in UNACKED_STATES:
        pending.append(alert.ack_due_at)
    if alert.required_response and alert.responded_at is None and alert.response_due_at:
        pending.append(alert.response_due_at)
    return pending


def _refresh_escalation_due(alert: Alert) -> None:
    pending = _pending_deadlines(alert)
    if not pending:
        alert.escalation_due_at = None
        return
    due = min(pending)
    last = alert.escalations.order_by("-at").values_list("at", flat=True).first() if alert.pk else None
    if last is not None:
        due = max(due, last + _minutes(settings.ALERT_ACK_MINUTES, alert.level))
    alert.escalation_due_at = due


def _locked(alert: Alert) -> Alert:
    return Alert.objects.select_for_update().get(pk=alert.pk)


# --- raised and cleared by the engine ---------------------------------------------------------------
def _open_alert(*, channel_id, device_id, kind) -> Alert | None:
    qs = Alert.objects.select_for_update().filter(kind=kind, state__in=OPEN_STATES)
    if channel_id is not None:
        qs = qs.filter(channel_id=channel_id)
    else:
        qs = qs.filter(channel__isnull=True, device_id=device_id)
    return qs.first()


@transaction.atomic
def alert_raise(
    *,
    enterprise,
    kind: str,
    level: int,
    message: str,
    at: datetime | None = None,
    device=None,
    channel=None,
    rule=None,
    value: float | None = None,
    limit: float | None = None,
    unit: str = "",
    suppressed: bool = False,
    change_id: str = "",
    linkage_local: str = "",
) -> Alert | None:
    """A condition became active. Updates the open alert of the same condition, or creates one.

    ``change_id``: the engine change this is (from an alert outbox); a change already applied is not
    applied again, and the alert it wrote is returned. ``linkage_local``: the process that saw the
    reading has written the linkage coil itself (that write's uid): no command is queued here, the
    write's result arrives as a change of its own (``alert_linkage_local_result``).
    """
    if change_id:
        done = _applied(change_id)
        if done is not None:
            return done.alert
    at = at or timezone.now()
    channel_id = getattr(channel, "pk", channel)
    device_id = getattr(device, "pk", device)
    existing = _open_alert(channel_id=channel_id, device_id=device_id, kind=kind)
    if existing is not None:
        alert = _reactivate(existing, at=at, value=value, limit=limit, linkage_local=linkage_local)
        _mark_applied(change_id, alert)
        return alert
    initial = AlertState.SUPPRESSED if suppressed else AlertState.ACTIVE_UNACK
    alert = Alert(
        enterprise=enterprise,
        device_id=device_id,
        channel_id=channel_id,
        # Related objects the caller already holds: the push payload needs them.
        **({"device": device} if isinstance(device, models.Model) else {}),
        **({"channel": channel} if isinstance(channel, models.Model) else {}),
        rule_id=getattr(rule, "pk", rule),
        kind=kind,
        level=level,
        state=initial,
        condition_active=True,
        message=message[:255],
        value=value,
        limit=limit,
        unit=unit,
        raised_at=at,
        ack_due_at=ack_deadline(level, at),
        response_due_at=response_deadline(level, at),
    )
    _refresh_escalation_due(alert)
    try:
        with transaction.atomic():
            alert.save()
    except IntegrityError:  # another writer opened the same condition a moment ago
        existing = _open_alert(channel_id=channel_id, device_id=device_id, kind=kind)
        if existing is None:
            raise
        alert = _reactivate(existing, at=at, value=value, limit=limit, linkage_local=linkage_local)
        _mark_applied(change_id, alert)
        return alert
    _record(alert, AlertAction.RAISE, "", initial, None, "", at)
    _mark_applied(change_id, alert)
    flooded = _group_flood(alert) if device_id else False
    # Screens first: the push is the first thing queued for after commit; mail and the bell follow.
    _push(alert, "alert.raised")
    if initial == AlertState.ACTIVE_UNACK:
        if level == 1:
            # The linkage command commits with the alert, or neither does.
            _level_one_response(alert, at, linkage_local=linkage_local)
            _push(alert, "alert.updated")
        if not flooded:
            pk = alert.pk
            transaction.on_commit(lambda: _notify_later(pk, Tier.ENTERPRISE, "raised", _("新报警")))
    return alert


def _applied(change_id: str) -> AlertChangeApplied | None:
    return AlertChangeApplied.objects.select_related("alert").filter(change_id=change_id).first()


def _mark_applied(change_id: str, alert: Alert | None) -> None:
    """In the transaction of the write: the change and the record of it commit together, or neither."""
    if change_id:
        AlertChangeApplied.objects.create(change_id=change_id, alert=alert)


def _notify_later(alert_pk: int, tier: int, key: str, reason: str) -> None:
    try:
        with transaction.atomic():
            alert = Alert.objects.select_related("enterprise__region").get(pk=alert_pk)
            _notify_tier(alert, tier, key=key, reason=reason)
    except Exception:  # the alert stands and is on the screens; a failed notice is logged
        logger.exception("could not notify tier %s of alert %s", tier, alert_pk)


def _reactivate(alert: Alert, *, at, value, limit, linkage_local: str = "") -> Alert:
    # A level-1 condition that comes back while its alert is still annunciated closes the valve again:
    # someone may have opened it since (or the first write failed); writing it again is the safe side.
    relink = alert.level == 1 and not alert.condition_active and alert.state in ANNUNCIATED_STATES
    alert.condition_active = True
    alert.value = value
    if limit is not None:
        alert.limit = limit
    alert.occurrences += 1
    fields = ["condition_active", "value", "limit", "occurrences", "updated_at"]
    if alert.state == AlertState.CLEARED_UNACK:
        _record(alert, AlertAction.REALARM, alert.state, AlertState.ACTIVE_UNACK, None, "", at)
        alert.state = AlertState.ACTIVE_UNACK
        alert.cleared_at = None
        fields += ["state", "cleared_at"]
    alert.save(update_fields=fields)
    if relink:
        _linkage(alert, linkage_local=linkage_local)
    _push(alert, "alert.updated")
    return alert


@transaction.atomic
def alert_condition_return(
    *,
    kind: str,
    channel=None,
    device=None,
    at: datetime | None = None,
    value: float | None = None,
    change_id: str = "",
) -> Alert | None:
    """The process condition went away (return to normal); the lifecycle decides what that means."""
    if change_id:
        done = _applied(change_id)
        if done is not None:
            return done.alert
    at = at or timezone.now()
    alert = _open_alert(channel_id=getattr(channel, "pk", channel), device_id=getattr(device, "pk", device), kind=kind)
    _mark_applied(change_id, alert)
    if alert is None or not alert.condition_active:
        return alert
    alert.condition_active = False
    alert.cleared_at = at
    fields = ["condition_active", "cleared_at", "updated_at"]
    target = TRANSITIONS[AlertAction.RETURN].get(alert.state)
    if target is not None:
        _record(alert, AlertAction.RETURN, alert.state, target, None, "", at)
        alert.state = target
        fields.append("state")
        if target == AlertState.NORMAL:
            alert.closed_at = at
            fields.append("closed_at")
        _refresh_escalation_due(alert)
        fields.append("escalation_due_at")
    alert.save(update_fields=fields)
    _push(alert, "alert.updated")
    return alert


# --- flood grouping -------------------------------------------------------------------------------
def _group_flood(alert: Alert) -> bool:
    """More than ALERT_FLOOD_COUNT alerts of one device in the window: group them under one row."""
    window_start = alert.raised_at - timedelta(minutes=settings.ALERT_FLOOD_WINDOW_MINUTES)
    recent = Alert.objects.filter(
        device_id=alert.device_id, raised_at__gte=window_start, raised_at__lte=alert.raised_at
    )
    count = recent.count()
    if count <= settings.ALERT_FLOOD_COUNT:
        return False
    group = (
        FloodGroup.objects.select_for_update()
        .filter(device_id=alert.device_id, last_at__gte=window_start)
        .order_by("-started_at")
        .first()
    )
    first = group is None
    if first:
        started = recent.order_by("raised_at").values_list("raised_at", flat=True).first()
        group = FloodGroup.objects.create(
            enterprise_id=alert.enterprise_id, device_id=alert.device_id, started_at=started, last_at=alert.raised_at
        )
    recent.filter(flood_group__isnull=True).update(flood_group=group)
    group.count = Alert.objects.filter(flood_group=group).count()
    group.last_at = max(group.last_at, alert.raised_at)
    group.save(update_fields=["count", "last_at"])
    alert.flood_group = group
    if first:
        _notify_tier(
            alert,
            Tier.ENTERPRISE,
            key=f"flood-{group.pk}",
            reason=_("报警泛滥：设备 %(device)s 10 分钟内报警超过 %(n)s 条")
            % {"device": alert.device.name, "n": settings.ALERT_FLOOD_COUNT},
        )
    return True


# --- level 1: linkage and direct report ----------------------------------------------------------------
def _level_one_response(alert: Alert, at: datetime, linkage_local: str = "") -> None:
    recipients = tier_recipients(alert.enterprise, Tier.COUNTY)
    _notify_tier(alert, Tier.COUNTY, key="direct-report", reason=_("一级报警直报"))
    AlertResponse.objects.create(
        alert=alert,
        kind=ResponseKind.COUNTY_REPORTED,
        at=at,
        recorded_at=timezone.now(),
        note=_("系统自动直报，通知 %(n)s 人") % {"n": len(recipients)},
    )
    _linkage(alert, linkage_local=linkage_local)


def _linkage(alert: Alert, *, linkage_local: str = "") -> None:
    """Close the valve of a level-1 alert: queue the coil write, or (``linkage_local``) note that the
    process which saw the reading is writing it itself and will report the result."""
    rule = alert.rule
    if rule is None or not rule.has_linkage:
        return
    if linkage_local:
        # The command row arrives with the write's result; until then no earlier command may
        # confirm this write (alerts_sync_linkage settles only alerts with a command).
        alert.linkage_status = LinkageStatus.REQUESTED
        alert.linkage_command = None
        alert.save(update_fields=["linkage_status", "linkage_command"])
        record_event(
            event="alert.linkage_requested",
            obj=alert,
            detail={"local": linkage_local, "device": rule.linkage_device_id, "address": rule.linkage_address},
        )
        return
    try:
        from devices.services import request_coil_write
    except ImportError:
        alert.linkage_status = LinkageStatus.UNAVAILABLE
        alert.save(update_fields=["linkage_status"])
        record_event(event="alert.linkage_unavailable", obj=alert, outcome="failure", detail={"alert": alert.pk})
        return
    try:
        with transaction.atomic():
            command = request_coil_write(
                device=rule.linkage_device,
                unit_id=rule.linkage_unit_id,
                address=rule.linkage_address,
                value=rule.linkage_value,
                reason=f"报警 #{alert.pk} 一级联动：{alert.message}"[:255],
                requested_by=None,
            )
    except Exception as exc:  # the alert must stand even when the linkage cannot be queued
        logger.exception("linkage for alert %s failed", alert.pk)
        alert.linkage_status = LinkageStatus.FAILED
        alert.save(update_fields=["linkage_status"])
        record_event(event="alert.linkage_failed", obj=alert, outcome="failure", detail={"error": str(exc)[:200]})
        return
    alert.linkage_command = command
    alert.linkage_status = LinkageStatus.REQUESTED
    alert.save(update_fields=["linkage_command", "linkage_status"])
    record_event(
        event="alert.linkage_requested",
        obj=alert,
        detail={"command": command.pk, "device": rule.linkage_device_id, "address": rule.linkage_address},
    )


@transaction.atomic
def alert_linkage_local_result(
    *,
    change_id: str,
    raise_change_id: str,
    uid: str,
    device_id: int,
    unit_id: int,
    address: int,
    value: bool,
    reason: str,
    requested_at: datetime,
    started_at: datetime | None,
    finished_at: datetime,
    ok: bool,
    readback: bool | None,
    error: str,
    poller: str,
) -> Alert | None:
    """A linkage coil write that a poller did on its own (maybe while the database was down): store the
    command as it happened and settle the alert that asked for it (the one ``raise_change_id`` wrote)."""
    from devices.services import coil_write_record_local

    done = _applied(change_id)
    if done is not None:
        return done.alert
    raised = _applied(raise_change_id) if raise_change_id else None
    alert = raised.alert if raised is not None else None
    command = coil_write_record_local(
        uid=uid,
        device_id=device_id,
        unit_id=unit_id,
        address=address,
        value=value,
        reason=(f"报警 #{alert.pk} 一级联动：{alert.message}" if alert is not None else reason)[:255],
        requested_at=requested_at,
        started_at=started_at,
        finished_at=finished_at,
        ok=ok,
        readback=readback,
        error=error,
        poller=poller,
    )
    if alert is not None:
        alert = _locked(alert)
        alert.linkage_command = command
        alert.linkage_status = LinkageStatus.REQUESTED
        _linkage_settle(alert, command)
    _mark_applied(change_id, alert)
    return alert


# The poller events that reach the alert board: (message, level).
POLLER_EVENT_MESSAGES = {
    "spool_full": (_lazy("采集进程 %(p)s 缓存已满，数据库中断期间的数据或报警可能缺失：%(d)s"), 2),
    # Started while the database was down, on its last known configuration (devices/poller/snapshot.py):
    # edits made since that snapshot were not applied until the database returned.
    "cold_start": (_lazy("采集进程 %(p)s 在数据库中断期间启动，按上次已知配置运行：%(d)s"), 3),
}


def alert_poller_event(*, change_id: str, kind: str, poller: str, detail: str, at: datetime) -> list[Alert]:
    """A poller's event that people must see (its spool or alert outbox was full, it started on its
    last known configuration while the database was down): one alert per
    enterprise with devices on that poller, on its first device, raised at the event's time and
    returned at once (the database is back, or this would not be written): it waits for acknowledgement."""
    from devices.models import Device

    if kind not in POLLER_EVENT_MESSAGES:
        return []
    alerts = []
    with transaction.atomic():
        if _applied(change_id) is not None:
            return []
        firsts: dict[int, Device] = {}
        for device in Device.objects.filter(poller=poller).select_related("enterprise").order_by("pk"):
            firsts.setdefault(device.enterprise_id, device)
        text, level = POLLER_EVENT_MESSAGES[kind]
        message = str(text) % {"p": poller, "d": detail}
        for device in firsts.values():
            alert = alert_raise(
                enterprise=device.enterprise,
                device=device,
                kind=AlertKind.ACQUISITION,
                level=level,
                message=message,
                at=at,
            )
            alert_condition_return(kind=AlertKind.ACQUISITION, device=device, at=at)
            alerts.append(alert)
        _mark_applied(change_id, alerts[0] if alerts else None)
    return alerts


def alerts_sync_linkage() -> int:
    """Turn confirmed or failed coil writes into response records (the write's own finish time counts).

    A linkage a poller wrote locally whose result never arrived (the poller died between the write and
    queueing its result) is asked again through a command row: in doubt, the valve is closed again."""
    changed = 0
    stale = timezone.now() - timedelta(seconds=2 * settings.DEVICES_COIL_WRITE_TIMEOUT_SECONDS)
    orphans = Alert.objects.filter(
        linkage_status=LinkageStatus.REQUESTED, linkage_command__isnull=True, updated_at__lt=stale
    ).values_list("pk", flat=True)
    for pk in list(orphans):
        with transaction.atomic():
            alert = Alert.objects.select_for_update().get(pk=pk)
            if alert.linkage_status == LinkageStatus.REQUESTED and alert.linkage_command_id is None:
                logger.warning("alert %s: the local linkage write never reported; writing it again", pk)
                _linkage(alert)
                _push(alert, "alert.updated")
    pending = Alert.objects.filter(linkage_status=LinkageStatus.REQUESTED).select_related("linkage_command")
    for alert in pending:
        command = alert.linkage_command
        if command is None or command.status not in ("done", "failed"):
            continue
        with transaction.atomic():
            alert = _locked(alert)
            if alert.linkage_status != LinkageStatus.REQUESTED:
                continue
            _linkage_settle(alert, command)
            changed += 1
    return changed


def _linkage_settle(alert: Alert, command) -> None:
    """The alert's linkage write finished (locked alert, in a transaction): confirmed or failed."""
    if command.status == "done":
        alert.linkage_status = LinkageStatus.CONFIRMED
        AlertResponse.objects.create(
            alert=alert,
            kind=ResponseKind.VALVE_CLOSED,
            at=command.finished_at or timezone.now(),
            recorded_at=timezone.now(),
            note=_("联动写入已回读确认：%(cmd)s") % {"cmd": str(command)},
        )
        record_event(event="alert.linkage_confirmed", obj=alert, detail={"command": command.pk})
    else:
        alert.linkage_status = LinkageStatus.FAILED
        record_event(event="alert.linkage_failed", obj=alert, outcome="failure", detail={"error": command.error})
        _notify_tier(alert, Tier.ENTERPRISE, key="linkage-failed", reason=_("自动联动失败，请立即人工处置"))
    alert.save(update_fields=["linkage_command", "linkage_status", "updated_at"])
    _push(alert, "alert.updated")


# --- the lifecycle steps people take ------------------------------------------------------------------
def _apply(alert: Alert, action: str, *, user, comment: str = "", at: datetime | None = None, **extra) -> Alert:
    at = at or timezone.now()
    targets = TRANSITIONS[action]
    if alert.state not in targets:
        raise TransitionNotAllowed(
            _("当前状态“%(state)s”不允许此操作") % {"state": alert.get_state_display()},
            current=alert.state,
            allowed=allowed_actions(alert.state),
        )
    target = targets[alert.state]
    if target == RESOLVE:
        target = AlertState.ACTIVE_UNACK if alert.condition_active else AlertState.NORMAL
    from_state = alert.state
    alert.state = target
    for name, value in extra.items():
        setattr(alert, name, value)
    if target == AlertState.NORMAL:
        alert.closed_at = at
    if from_state in MASKED_STATES and target == AlertState.ACTIVE_UNACK:
        # Back from a shelf, maintenance or out of service while the condition is present: it is
        # annunciated afresh, so the people on duty get the full time to acknowledge and respond.
        alert.ack_due_at = ack_deadline(alert.level, at)
        if alert.responded_at is None:
            alert.response_due_at = response_deadline(alert.level, at)
    if target in MASKED_STATES:
        alert.escalation_due_at = None
    else:
        _refresh_escalation_due(alert)
    alert.save()
    _record(alert, action, from_state, target, user, comment, at)
    if user is not None:
        record_event(
            event=f"alert.{action}",
            user=user,
            obj=alert,
            detail={"from": from_state, "to": target, "comment": comment[:200]},
        )
    _push(alert, "alert.updated")
    return alert


@transaction.atomic
def alert_acknowledge(*, alert: Alert, user, comment: str = "") -> Alert:
    if not can_act(user):
        raise PermissionDenied
    alert = _locked(alert)
    now = timezone.now()
    return _apply(
        alert, AlertAction.ACKNOWLEDGE, user=user, comment=comment, at=now, acknowledged_at=now, acknowledged_by=user
    )


@transaction.atomic
def alert_shelve(*, alert: Alert, user, reason: str, until: datetime) -> Alert:
    if not can_shelve(user):
        raise PermissionDenied(_("只有科室负责人、监管管理员或企业安全负责人可以搁置报警"))
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_("搁置需填写原因"), field="reason")
    now = timezone.now()
    if until is None or until <= now:
        raise InvalidInput(_("搁置截止时间应晚于当前时间"), field="until")
    if until > now + timedelta(hours=settings.ALERT_SHELVE_MAX_HOURS):
        raise InvalidInput(_("搁置时间不得超过 %(h)s 小时") % {"h": settings.ALERT_SHELVE_MAX_HOURS}, field="until")
    alert = _locked(alert)
    if alert.level == 1:
        raise InvalidInput(_("一级报警(爆炸前兆)不允许搁置"), field="alert")
    return _apply(
        alert, AlertAction.SHELVE, user=user, comment=reason, at=now, shelved_until=until, shelve_reason=reason
    )


@transaction.atomic
def alert_unshelve(*, alert: Alert, user, comment: str = "") -> Alert:
    if user is not None and not can_shelve(user):
        raise PermissionDenied
    alert = _locked(alert)
    return _apply(alert, AlertAction.UNSHELVE, user=user, comment=comment, shelved_until=None)


def alerts_unshelve_expired(now: datetime | None = None) -> int:
    now = now or timezone.now()
    ids = list(Alert.objects.filter(state=AlertState.SHELVED, shelved_until__lte=now).values_list("pk", flat=True))
    for pk in ids:
        with transaction.atomic():
            alert = Alert.objects.select_for_update().get(pk=pk)
            if alert.state == AlertState.SHELVED:
                _apply(alert, AlertAction.UNSHELVE, user=None, comment=_("搁置到期"), at=now, shelved_until=None)
    return len(ids)


@transaction.atomic
def alert_remove_from_service(*, alert: Alert, user, reason: str) -> Alert:
    if not can_shelve(user):
        raise PermissionDenied(_("只有科室负责人、监管管理员或企业安全负责人可以停用报警"))
    if not (reason or "").strip():
        raise InvalidInput(_("停用需填写原因"), field="reason")
    alert = _locked(alert)
    return _apply(alert, AlertAction.REMOVE_FROM_SERVICE, user=user, comment=reason.strip())


@transaction.atomic
def alert_return_to_service(*, alert: Alert, user, comment: str = "") -> Alert:
    if not can_shelve(user):
        raise PermissionDenied
    alert = _locked(alert)
    return _apply(alert, AlertAction.RETURN_TO_SERVICE, user=user, comment=comment)


def alerts_apply_maintenance() -> int:
    """Suppressed by design: alerts of devices in maintenance are masked; they return when it ends."""
    changed = 0
    to_suppress = Alert.objects.filter(state__in=ANNUNCIATED_STATES, device__maintenance=True).values_list(
        "pk", flat=True
    )
    to_restore = Alert.objects.filter(state=AlertState.SUPPRESSED, device__maintenance=False).values_list(
        "pk", flat=True
    )
    for pk in list(to_suppress):
        with transaction.atomic():
            alert = Alert.objects.select_for_update().get(pk=pk)
            if alert.state in ANNUNCIATED_STATES:
                _apply(alert, AlertAction.SUPPRESS, user=None, comment=_("设备进入维护模式"))
                changed += 1
    for pk in list(to_restore):
        with transaction.atomic():
            alert = Alert.objects.select_for_update().get(pk=pk)
            if alert.state == AlertState.SUPPRESSED:
                _apply(alert, AlertAction.UNSUPPRESS, user=None, comment=_("设备维护结束"))
                changed += 1
    return changed


# --- comments, responses, reviews ------------------------------------------------------------------
@transaction.atomic
def alert_comment(*, alert: Alert, user, text: str) -> AlertComment:
    if not can_act(user):
        raise PermissionDenied
    text = (text or "").strip()
    if not text:
        raise InvalidInput(_("备注不能为空"), field="text")
    comment = AlertComment.objects.create(alert=alert, user=user, text=text[:2000], at=timezone.now())
    _push(alert, "alert.updated")
    return comment


@transaction.atomic
def alert_record_response(
    *, alert: Alert, user, kind: str, at: datetime | None = None, note: str = ""
) -> AlertResponse:
    if not can_act(user):
        raise PermissionDenied
    if kind not in ResponseKind.values:
        raise InvalidInput(_("未知的处置类型"), field="kind")
    now = timezone.now()
    at = at or now
    alert = _locked(alert)
    if at > now + timedelta(minutes=1):
        raise InvalidInput(_("处置时间不能晚于当前时间"), field="at")
    if at < alert.raised_at:
        raise InvalidInput(_("处置时间不能早于报警时间"), field="at")
    response = AlertResponse.objects.create(alert=alert, kind=kind, at=at, recorded_at=now, user=user, note=note[:255])
    if alert.required_response == kind and alert.responded_at is None:
        alert.responded_at = at
        _refresh_escalation_due(alert)
        alert.save(update_fields=["responded_at", "escalation_due_at", "updated_at"])
    record_event(event="alert.response", user=user, obj=alert, detail={"kind": kind, "at": at.isoformat()})
    _push(alert, "alert.updated")
    return response


@transaction.atomic
def alert_review(*, alert: Alert, user, false_alarm: bool, note: str = "") -> Alert:
    """A reviewer judges the alert real or false (feeds the monthly false-alarm rate)."""
    if not can_review(user):
        raise PermissionDenied(_("只有监管人员可以复核报警"))
    alert = _locked(alert)
    alert.false_alarm = bool(false_alarm)
    alert.reviewed_by = user
    alert.reviewed_at = timezone.now()
    alert.review_note = (note or "")[:255]
    alert.save(update_fields=["false_alarm", "reviewed_by", "reviewed_at", "review_note", "updated_at"])
    record_event(event="alert.review", user=user, obj=alert, detail={"false_alarm": alert.false_alarm})
    return alert


# --- escalation -----------------------------------------------------------------------------------
def _region_at(enterprise, level: int):
    return enterprise.region.ancestors().filter(level=level).first()


def tier_recipients(enterprise, tier: int):
    from regulator.models import User

    active = User.objects.filter(is_active=True)
    if tier == Tier.ENTERPRISE:
        from guardian.shortcuts import get_users_with_perms

        users = get_users_with_perms(enterprise, only_with_perms_in=["view_enterprise"], with_group_users=True)
        return list(users.filter(is_active=True, role=Role.ENTERPRISE_USER))
    if tier == Tier.PARK:
        if not enterprise.park_id:
            return []
        return list(active.filter(role=Role.PARK_MANAGER, park_id=enterprise.park_id))
    level = RegionLevel.COUNTY if tier == Tier.COUNTY else RegionLevel.CITY
    region = _region_at(enterprise, level)
    if region is None:
        return []
    return list(active.filter(role__in=[Role.INSPECTOR, Role.SECTION_HEAD, Role.REGULATOR_ADMIN], jurisdiction=region))


def _notify_tier(alert: Alert, tier: int, *, key: str, reason: str) -> int:
    users = tier_recipients(alert.enterprise, tier)
    title = f"【{alert.get_level_display()}】{alert.enterprise.name}：{alert.message}"
    body = f"{reason}\n{alert.get_kind_display()} · {alert.raised_at:%Y-%m-%d %H:%M:%S}"
    from django.urls import reverse

    notify(
        users=users,
        title=title,
        body=body,
        url=reverse("alerts:detail", args=[alert.pk]),
        level="danger" if alert.level <= 2 else "warning",
        dedupe_key=f"alert-{alert.pk}-{key}",
    )
    if tier != Tier.ENTERPRISE or alert.level <= 2:
        from alerts.sms import send_sms

        transaction.on_commit(lambda: send_sms(users, f"{title}（{reason}）"))
    return len(users)


def _next_tier(alert: Alert) -> int | None:
    tier = alert.tier + 1
    if tier == Tier.PARK and not alert.enterprise.park_id:
        tier += 1
    return tier if tier <= Tier.CITY else None


def alerts_escalate(now: datetime | None = None) -> int:
    """One pass: unacknowledged or unanswered past the deadline -> one tier up, notified once."""
    now = now or timezone.now()
    alerts_unshelve_expired(now)
    alerts_apply_maintenance()
    alerts_sync_linkage()
    escalated = 0
    ids = list(
        Alert.objects.filter(state__in=ANNUNCIATED_STATES, escalation_due_at__lte=now).values_list("pk", flat=True)
    )
    for pk in ids:
        try:
            with transaction.atomic():
                if _escalate_one(pk, now):
                    escalated += 1
        except Exception:  # one bad row must not stop the others
            logger.exception("escalating alert %s failed", pk)
    return escalated


def _escalate_one(pk: int, now: datetime) -> bool:
    alert = Alert.objects.select_for_update().select_related("enterprise__region").get(pk=pk)
    if alert.state not in ANNUNCIATED_STATES or alert.escalation_due_at is None or alert.escalation_due_at > now:
        return False
    reasons = []
    if alert.state in UNACKED_STATES and now >= alert.ack_due_at:
        reasons.append(_("超时未确认"))
    if (
        alert.required_response
        and alert.responded_at is None
        and alert.response_due_at
        and now >= alert.response_due_at
    ):
        reasons.append(_("超时未响应(%(kind)s)") % {"kind": ResponseKind(alert.required_response).label})
    tier = _next_tier(alert)
    if not reasons or tier is None:
        _refresh_escalation_due(alert)
        if tier is None:
            alert.escalation_due_at = None
        alert.save(update_fields=["escalation_due_at"])
        return False
    reason = "；".join(str(r) for r in reasons)
    _step, created = AlertEscalation.objects.get_or_create(
        alert=alert, tier=tier, defaults={"at": now, "reason": reason}
    )
    alert.tier = tier
    alert.escalation_due_at = now + _minutes(settings.ALERT_ACK_MINUTES, alert.level)
    alert.save(update_fields=["tier", "escalation_due_at", "updated_at"])
    if created:
        count = _notify_tier(alert, tier, key=f"tier-{tier}", reason=_("报警升级：%(r)s") % {"r": reason})
        AlertEscalation.objects.filter(alert=alert, tier=tier).update(recipients=count)
        record_event(event="alert.escalated", obj=alert, detail={"tier": tier, "reason": reason, "recipients": count})
    _push(alert, "alert.updated")
    return True


# --- kinds that do not come from limits ---------------------------------------------------------------
KIND_MESSAGES = {
    AlertKind.HIGH_HIGH: "{tag} {name} 高高报：{value}{unit} ≥ {limit}{unit}",
    AlertKind.HIGH: "{tag} {name} 高报：{value}{unit} ≥ {limit}{unit}",
    AlertKind.LOW: "{tag} {name} 低报：{value}{unit} ≤ {limit}{unit}",
    AlertKind.LOW_LOW: "{tag} {name} 低低报：{value}{unit} ≤ {limit}{unit}",
    AlertKind.RATE: "{tag} {name} 变化率超限(>{limit}{unit}/分钟)",
    AlertKind.STALE: "{tag} {name} 数据中断(超过 {limit} 秒无有效数据)",
    AlertKind.SENSOR_FAULT: "{tag} {name} 传感器故障({detail})",
    AlertKind.DEVICE_OFFLINE: "设备 {name} 离线({detail})",
}


# A high limit raised because the reading is above the channel's range (alerts.engine._over_range).
OVER_RANGE_MESSAGES = {
    AlertKind.HIGH_HIGH: "{tag} {name} 高高报(超量程)：{value}{unit} 超出量程，≥ {limit}{unit}",
    AlertKind.HIGH: "{tag} {name} 高报(超量程)：{value}{unit} 超出量程，≥ {limit}{unit}",
}


def format_message(kind: str, *, tag="", name="", value=None, limit=None, unit="", detail="") -> str:
    def fmt(x):
        if x is None:
            return "-"
        return f"{x:g}" if isinstance(x, float) else str(x)

    template = OVER_RANGE_MESSAGES.get(kind) if detail == OVER_RANGE_DETAIL else None
    return (
        (template or KIND_MESSAGES.get(kind, "{tag} {name} {detail}"))
        .format(tag=tag, name=name, value=fmt(value), limit=fmt(limit), unit=unit, detail=detail)
        .strip()
    )


# --- operating mode (dynamic thresholds by 工况) -------------------------------------------------------
@transaction.atomic
def enterprise_set_operating_mode(*, enterprise, user, mode: str):
    """The enterprise reports start-up / shutdown / overhaul; schedules keyed on the mode follow it."""
    from alerts.models import EnterpriseMode, OperatingMode

    if not can_act(user) or not (user.is_superuser or user.is_regulator or user.is_enterprise_user):
        raise PermissionDenied(_("只有企业人员或监管人员可以变更工况"))
    if mode not in OperatingMode.values:
        raise InvalidInput(_("未知的工况"), field="mode")
    current, _created = EnterpriseMode.objects.select_for_update().get_or_create(enterprise=enterprise)
    old = current.mode
    current.mode = mode
    current.changed_by = user
    current.save()
    record_event(event="alert.operating_mode", user=user, obj=enterprise, detail={"from": old, "to": mode})
    return current


# --- rules ------------------------------------------------------------------------------------------
RULE_EDITOR_ROLES = frozenset({Role.SECTION_HEAD, Role.REGULATOR_ADMIN})


def can_edit_rule(user, *, device=None, channel=None) -> bool:
    """Quantity defaults apply everywhere: superusers only. Device/channel overrides: regulator
    section heads/admins and enterprise safety managers/principals, for devices in their scope."""
    from devices.models import Device
    from regulator.scoping import scope

    if not can_act(user):
        return False
    if user.is_superuser:
        return True
    target = device or (channel.device if channel is not None else None)
    if target is None:
        return False
    if not (
        user.role in RULE_EDITOR_ROLES
        or (user.is_enterprise_user and user.enterprise_role in SHELVING_ENTERPRISE_ROLES)
    ):
        return False
    return scope(Device.objects.filter(pk=target.pk), user, prefix="enterprise__").exists()


@transaction.atomic
def alert_rule_save(*, rule, user, fields: dict):
    """Create or change a rule; the runtime picks it up within ALERT_RULE_REFRESH_SECONDS."""
    from django.core.exceptions import ValidationError

    creating = rule.pk is None
    before = {} if creating else {k: getattr(rule, k) for k in fields}
    for name, value in fields.items():
        setattr(rule, name, value)
    if not can_edit_rule(user, device=rule.device, channel=rule.channel):
        raise PermissionDenied(_("您无权修改该报警规则"))
    if rule.channel_id and rule.device_id and rule.channel.device_id != rule.device_id:
        raise InvalidInput(_("测点不属于所选设备"), field="channel")
    owner = rule.device or (rule.channel.device if rule.channel_id else None)
    if rule.linkage_device_id and (owner is None or rule.linkage_device.enterprise_id != owner.enterprise_id):
        raise InvalidInput(_("联动设备须属于规则所在企业(默认规则不能配置联动)"), field="linkage_device")
    try:
        rule.full_clean()
    except ValidationError as exc:
        raise InvalidInput(_("规则有误：%(e)s") % {"e": "; ".join(exc.messages)}, errors=exc.message_dict) from exc
    try:
        with transaction.atomic():
            rule.save()
    except IntegrityError as exc:  # a concurrent writer created the same default/channel rule
        raise InvalidInput(_("该监测量或测点已有规则"), field="channel") from exc
    record_event(
        event="alert.rule_created" if creating else "alert.rule_changed",
        user=user,
        obj=rule,
        detail={"before": before, "after": {k: getattr(rule, k) for k in fields}},
    )
    return rule


@transaction.atomic
def alert_rule_delete(*, rule, user) -> None:
    if not can_edit_rule(user, device=rule.device, channel=rule.channel):
        raise PermissionDenied(_("您无权删除该报警规则"))
    record_event(event="alert.rule_deleted", user=user, obj=rule, detail={"name": rule.name})
    rule.delete()


def alerts_acknowledge_group(*, alert: Alert, user, comment: str = "") -> int:
    """Acknowledge every unacknowledged alert of ``alert``'s flood group (one click for a flood)."""
    if not can_act(user):
        raise PermissionDenied
    if alert.flood_group_id is None:
        alert_acknowledge(alert=alert, user=user, comment=comment)
        return 1
    done = 0
    ids = Alert.objects.filter(flood_group_id=alert.flood_group_id, state__in=UNACKED_STATES).values_list(
        "pk", flat=True
    )
    for pk in list(ids):
        with transaction.atomic():
            member = Alert.objects.select_for_update().get(pk=pk)
            if member.state in UNACKED_STATES:
                now = timezone.now()
                _apply(
                    member,
                    AlertAction.ACKNOWLEDGE,
                    user=user,
                    comment=comment or _("泛滥分组批量确认"),
                    at=now,
                    acknowledged_at=now,
                    acknowledged_by=user,
                )
                done += 1
    return done


# --- turning an alert into a hazard (转为隐患) -------------------------------------------------

# Enterprise people who may turn an alert into a hazard (regulator staff of the jurisdiction may too).
HAZARD_REPORTER_ROLES = frozenset({EnterpriseRole.SAFETY_OFFICER, EnterpriseRole.SAFETY_MANAGER})


def hazard_source_ref(alert: Alert) -> str:
    """The hazard's ``source_ref`` for an alert; also the key that refuses a second conversion."""
    return f"alert:{alert.pk}"


def can_report_hazard(user, alert: Alert) -> bool:
    """Regulator staff of the enterprise's jurisdiction, or its safety officer / safety manager."""
    from hazards import policy

    if policy.is_regulator_for(user, alert.enterprise):
        return True
    return policy.is_member(user, alert.enterprise) and user.enterprise_role in HAZARD_REPORTER_ROLES


def alert_report_hazard(*, alert: Alert, user, description: str, location: str, category: str, grade: str):
    """Report a hazard (source device alert) from this alert through the hazards service, once per alert.

    Returns ``(hazard, created)``: when the alert was already converted, the existing hazard and False.
    The alert row is the lock that makes "once per alert" hold for two people at the same moment.
    """
    from hazards import services as hazard_services
    from hazards.choices import HazardSource
    from hazards.models import Hazard

    if not can_report_hazard(user, alert):
        raise PermissionDenied(_("只有监管人员或企业安全管理人员可以将报警转为隐患"))
    ref = hazard_source_ref(alert)
    with transaction.atomic():
        Alert.objects.select_for_update().filter(pk=alert.pk).values_list("pk", flat=True).first()
        existing = Hazard.objects.filter(source_ref=ref).order_by("id").first()
        if existing is not None:
            return existing, False
        hazard = hazard_services.hazard_report(
            enterprise=alert.enterprise,
            user=user,
            source=HazardSource.DEVICE_ALERT,
            source_ref=ref,
            description=description,
            location=location,
            category=category,
            grade=grade,
            found_at=alert.raised_at,
        )
        record_event(
            event="alert.hazard_reported",
            user=user,
            obj=alert,
            detail={"hazard": hazard.pk, "code": hazard.code, "grade": hazard.grade},
        )
    return hazard, True
