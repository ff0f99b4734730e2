"""Every write of the devices app: status, stats, linkage coil writes, HTTP ingest, ingest tokens, pruning."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from devices.choices import COIL_WRITE_TRANSITIONS, CoilWriteStatus, DeviceStatus, Protocol, Quality
from devices.hooks import ReadingEvent, publish_readings
from devices.models import Channel, CoilWriteCommand, Device, DeviceStatusChange, IngestToken, Reading
from devices.poller.decode import range_quality
from regulator.audit import record_event
from regulator.errors import InvalidInput, TransitionNotAllowed

logger = logging.getLogger(__name__)


# --- status and statistics (written by the poller's database thread) --------------------------


def device_record_status(*, device_id: int, old: str, new: str, reason: str, poller: str, at: datetime) -> None:
    """Store a status change and its history row; push it to open channel pages."""
    with transaction.atomic():
        updated = Device.objects.filter(pk=device_id).update(
            status=new, status_reason=reason[:255], status_changed_at=at, poller=poller
        )
        if not updated:
            return
        DeviceStatusChange.objects.create(
            device_id=device_id, at=at, old=old, new=new, reason=reason[:255], poller=poller
        )
        _push_device(device_id, "device.status", {"device_id": device_id, "status": new, "reason": reason})


def device_record_stats(*, rows: Sequence[tuple], poller: str) -> None:
    """Last seen, achieved rate and overruns of many devices in one transaction (no updated_at bump)."""
    from django.db.models import F

    with transaction.atomic():
        for device_id, last_seen, rate_hz, new_overruns, status, reason in rows:
            fields = {"achieved_rate_hz": rate_hz, "poller": poller, "status": status, "status_reason": reason[:255]}
            if last_seen is not None:
                fields["last_seen"] = last_seen
            if new_overruns:
                fields["overrun_count"] = F("overrun_count") + new_overruns
            Device.objects.filter(pk=device_id).update(**fields)


def http_devices_mark_stale(*, shard: tuple[int, int], poller: str, now: datetime | None = None) -> list[Device]:
    """HTTP-push devices whose data stopped: offline once nothing came for 3 periods (at least 60 s).

    Nobody polls them, so silence is the only sign that the DCS/MES link is down.
    """
    from django.db.models.functions import Mod

    now = now or timezone.now()
    qs = Device.objects.filter(protocol=Protocol.HTTP, status=DeviceStatus.ONLINE, enabled=True)
    if shard[1] > 1:
        qs = qs.annotate(shard=Mod("id", shard[1])).filter(shard=shard[0])
    stale = []
    for device in qs:
        limit = max(60.0, 3 * device.poll_period_ms / 1000)
        if device.last_seen is None or (now - device.last_seen).total_seconds() > limit:
            reason = _("超过 %(s)d 秒未收到推送数据") % {"s": int(limit)}
            device_record_status(
                device_id=device.pk, old=device.status, new=DeviceStatus.OFFLINE, reason=reason, poller=poller, at=now
            )
            device.status, device.status_reason = DeviceStatus.OFFLINE, reason
            stale.append(device)
    return stale


def _push_device(device_id: int, event_type: str, payload: dict) -> None:
    from devices.poller.daemon import live_group
    from regulator.realtime import push_on_commit

    push_on_commit([live_group(device_id)], event_type, payload)


# --- configuration (the API's device and channel CRUD) ------------------------------------------


def _changed(obj, fields: dict) -> list[str]:
    return sorted(name for name, value in fields.items() if getattr(obj, name, None) != value)


def device_create(*, user, fields: dict) -> Device:
    """A new device (the serializer has checked the enterprise is in the user's scope); audited."""
    with transaction.atomic():
        device = Device.objects.create(**fields)
        record_event(event="devices.device_created", user=user, obj=device, detail={"fields": sorted(fields)})
    return device


def device_update(*, device: Device, user, fields: dict) -> Device:
    """Change a device's configuration; maintenance only through ``device_set_maintenance``. Audited."""
    fields = {k: v for k, v in fields.items() if k != "maintenance"}
    with transaction.atomic():
        device = Device.objects.select_for_update().get(pk=device.pk)
        changed = _changed(device, fields)
        for name, value in fields.items():
            setattr(device, name, value)
        device.save()
        record_event(event="devices.device_updated", user=user, obj=device, detail={"fields": changed})
    return device


def device_delete(*, device: Device, user) -> None:
    with transaction.atomic():
        record_event(event="devices.device_deleted", user=user, obj=device, detail={"name": device.name})
        device.delete()


def channel_create(*, user, fields: dict) -> Channel:
    with transaction.atomic():
        channel = Channel.objects.create(**fields)
        record_event(event="devices.channel_created", user=user, obj=channel, detail={"tag": channel.tag})
    return channel


def channel_update(*, channel: Channel, user, fields: dict) -> Channel:
    with transaction.atomic():
        channel = Channel.objects.select_for_update().get(pk=channel.pk)
        changed = _changed(channel, fields)
        for name, value in fields.items():
            setattr(channel, name, value)
        channel.save()
        record_event(event="devices.channel_updated", user=user, obj=channel, detail={"fields": changed})
    return channel


def channel_delete(*, channel: Channel, user) -> None:
    with transaction.atomic():
        record_event(event="devices.channel_deleted", user=user, obj=channel, detail={"tag": channel.tag})
        channel.delete()


def device_set_maintenance(*, device: Device, maintenance: bool, user, reason: str = "") -> Device:
    """Maintenance pauses acquisition (and so alarms) for calibration; audited."""
    with transaction.atomic():
        device = Device.objects.select_for_update().get(pk=device.pk)
        if device.maintenance == maintenance:
            return device
        device.maintenance = maintenance
        device.save(update_fields=["maintenance", "updated_at"])
        record_event(
            event="devices.maintenance_on" if maintenance else "devices.maintenance_off",
            user=user,
            obj=device,
            detail={"reason": reason},
        )
    return device


# --- linkage coil writes ------------------------------------------------------------------------


def request_coil_write(
    *, device: Device, unit_id: int, address: int, value: bool, reason: str, requested_by=None
) -> CoilWriteCommand:
    """Queue a coil write (e.g. close a shut-off valve) for the poller that owns ``device``.

    The poller picks it up within ``DEVICES_COMMAND_POLL_MS``, writes it, reads it back, and marks
    it done or failed (audited either way). A command nobody executes within
    ``DEVICES_COIL_WRITE_TIMEOUT_SECONDS`` is failed by the poller of its shard.
    """
    if not 0 <= int(unit_id) <= 247:
        raise InvalidInput(_("从站地址应在 0-247 之间"), code="bad_unit")
    if not 0 <= int(address) <= 65535:
        raise InvalidInput(_("线圈地址应在 0-65535 之间"), code="bad_address")
    if not reason or not reason.strip():
        raise InvalidInput(_("请填写联动原因"), code="reason_required")
    if device.protocol == Protocol.HTTP:
        raise InvalidInput(_("HTTP 推送设备不能写入线圈"), code="not_writable")
    with transaction.atomic():
        command = CoilWriteCommand.objects.create(
            device=device,
            unit_id=unit_id,
            address=address,
            value=bool(value),
            reason=reason.strip()[:255],
            requested_by=requested_by if requested_by is not None and requested_by.pk else None,
            requested_at=timezone.now(),
        )
        record_event(
            event="devices.coil_write_requested",
            user=requested_by,
            obj=command,
            detail={
                "device": device.pk,
                "unit_id": unit_id,
                "address": address,
                "value": bool(value),
                "reason": reason,
            },
        )
    return command


def _transition(command_id: int, to: str, **fields) -> CoilWriteCommand | None:
    """Compare-and-set on status; returns the updated row or None when another process won."""
    allowed_from = [s for s, targets in COIL_WRITE_TRANSITIONS.items() if to in targets]
    updated = CoilWriteCommand.objects.filter(pk=command_id, status__in=allowed_from).update(status=to, **fields)
    return CoilWriteCommand.objects.select_related("device", "requested_by").get(pk=command_id) if updated else None


def coil_writes_claim(
    *, device_ids: Sequence[int], idle_device_ids: Sequence[int], poller: str, timeout_s: float
) -> list[CoilWriteCommand]:
    """Claim pending commands of running devices; fail those of idle devices and stale ones."""
    now = timezone.now()
    stale = CoilWriteCommand.objects.filter(
        status=CoilWriteStatus.PENDING, requested_at__lt=now - timedelta(seconds=timeout_s)
    ).filter(Q(device_id__in=list(device_ids)) | Q(device_id__in=list(idle_device_ids)))
    for pk in list(stale.values_list("pk", flat=True)):
        coil_write_finish(command_id=pk, ok=False, readback=None, error=_("超时未执行"), poller=poller)
    for pk in list(
        CoilWriteCommand.objects.filter(
            status=CoilWriteStatus.PENDING, device_id__in=list(idle_device_ids)
        ).values_list("pk", flat=True)
    ):
        coil_write_finish(command_id=pk, ok=False, readback=None, error=_("设备已停用或维护中"), poller=poller)
    claimed = []
    pending = CoilWriteCommand.objects.filter(status=CoilWriteStatus.PENDING, device_id__in=list(device_ids))
    for pk in list(pending.order_by("requested_at", "id").values_list("pk", flat=True)):
        cmd = _transition(pk, CoilWriteStatus.RUNNING, started_at=timezone.now(), poller=poller)
        if cmd is not None:
            claimed.append(cmd)
    return claimed


def coil_write_finish(*, command_id: int, ok: bool, readback: bool | None, error: str, poller: str) -> None:
    status = CoilWriteStatus.DONE if ok else CoilWriteStatus.FAILED
    with transaction.atomic():
        cmd = _transition(
            command_id, status, finished_at=timezone.now(), readback=readback, error=(error or "")[:255], poller=poller
        )
        if cmd is None:
            return
        record_event(
            event="devices.coil_write",
            user=cmd.requested_by,
            obj=cmd,
            outcome="success" if ok else "failure",
            detail={
                "device": cmd.device_id,
                "unit_id": cmd.unit_id,
                "address": cmd.address,
                "value": cmd.value,
                "readback": readback,
                "error": error,
                "poller": poller,
                "reason": cmd.reason,
            },
        )
    logger.info(
        "coil write %s on %s unit %s coil %s := %s %s %s",
        command_id,
        cmd.device,
        cmd.unit_id,
        cmd.address,
        int(cmd.value),
        "confirmed" if ok else "FAILED",
        error,
    )


def coil_write_execute_sync(*, command: CoilWriteCommand, timeout_s: float | None = None) -> CoilWriteCommand:
    """Execute a pending command right here with a blocking client (tests, shell, no poller running)."""
    from pymodbus.client import ModbusSerialClient, ModbusTcpClient

    cmd = _transition(command.pk, CoilWriteStatus.RUNNING, started_at=timezone.now(), poller="sync")
    if cmd is None:
        current = CoilWriteCommand.objects.get(pk=command.pk)
        raise TransitionNotAllowed(
            _("该联动写入已在执行或已结束"), current=current.status, allowed=[CoilWriteStatus.PENDING]
        )
    device = cmd.device
    timeout = timeout_s if timeout_s is not None else device.timeout_ms / 1000
    if device.protocol == Protocol.RTU:
        client = ModbusSerialClient(
            device.serial_port,
            baudrate=device.baudrate,
            bytesize=device.bytesize,
            parity=device.parity,
            stopbits=device.stopbits,
            timeout=timeout,
            retries=device.retries,
        )
    else:
        client = ModbusTcpClient(device.host, port=device.port, timeout=timeout, retries=device.retries)
    ok, readback, error = False, None, ""
    try:
        if not client.connect():
            error = _("无法连接设备")
        else:
            wr = client.write_coil(cmd.address, cmd.value, device_id=cmd.unit_id)
            if wr.isError():
                error = _("写入被拒绝(异常码 %(code)s)") % {"code": getattr(wr, "exception_code", "?")}
            else:
                rb = client.read_coils(cmd.address, count=1, device_id=cmd.unit_id)
                if rb.isError():
                    error = _("回读被拒绝(异常码 %(code)s)") % {"code": getattr(rb, "exception_code", "?")}
                else:
                    readback = bool(rb.bits[0])
                    ok = readback == cmd.value
                    error = "" if ok else _("回读值与写入值不一致")
    except Exception as exc:  # timeouts and I/O errors are a failed write, not a crash
        error = str(exc)[:200] or exc.__class__.__name__
    finally:
        client.close()
    coil_write_finish(command_id=cmd.pk, ok=ok, readback=readback, error=error, poller="sync")
    return CoilWriteCommand.objects.get(pk=cmd.pk)


def coil_write_record_local(
    *,
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
) -> CoilWriteCommand:
    """A coil write the poller did on its own, without a command row (a level-1 linkage must not wait for
    the database): stored afterwards as it happened, audited like any other. Idempotent on ``uid``, so a
    replay of the same write finds the row it stored the first time."""
    existing = CoilWriteCommand.objects.filter(uid=uid).first()
    if existing is not None:
        return existing
    status = CoilWriteStatus.DONE if ok else CoilWriteStatus.FAILED
    with transaction.atomic():
        command = CoilWriteCommand.objects.create(
            uid=uid,
            device_id=device_id,
            unit_id=unit_id,
            address=address,
            value=bool(value),
            reason=(reason or _("本地联动写入")).strip()[:255],
            requested_at=requested_at,
            status=status,
            started_at=started_at,
            finished_at=finished_at,
            readback=readback,
            error=(error or "")[:255],
            poller=poller[:64],
        )
        record_event(
            event="devices.coil_write",
            obj=command,
            outcome="success" if ok else "failure",
            detail={
                "device": device_id,
                "unit_id": unit_id,
                "address": address,
                "value": bool(value),
                "readback": readback,
                "error": error,
                "poller": poller,
                "reason": command.reason,
                "local": True,
            },
        )
    return command


def wait_for_coil_write(
    command: CoilWriteCommand, timeout_s: float = 10.0, interval_s: float = 0.1
) -> CoilWriteCommand:
    """Block until the poller has finished ``command`` (or the timeout passes); returns the fresh row."""
    deadline = time.monotonic() + timeout_s
    while True:
        cmd = CoilWriteCommand.objects.get(pk=command.pk)
        if cmd.status in (CoilWriteStatus.DONE, CoilWriteStatus.FAILED) or time.monotonic() >= deadline:
            return cmd
        time.sleep(interval_s)


# --- HTTP ingest --------------------------------------------------------------------------------


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def ingest_token_create(*, enterprise, name: str, user=None) -> tuple[IngestToken, str]:
    """Create a token; the raw value is returned once and never stored."""
    raw = "ing_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = IngestToken.objects.create(
            enterprise=enterprise, name=name, prefix=raw[:10], key_hash=_hash_token(raw), created_by=user
        )
        record_event(event="devices.ingest_token_created", user=user, obj=token, detail={"enterprise": enterprise.pk})
    return token, raw


def ingest_token_revoke(*, token: IngestToken, user=None) -> IngestToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record_event(event="devices.ingest_token_revoked", user=user, obj=token)
    return token


def ingest_token_authenticate(raw: str) -> IngestToken | None:
    if not raw:
        return None
    token = (
        IngestToken.objects.select_related("enterprise")
        .filter(key_hash=_hash_token(raw), revoked_at__isnull=True)
        .first()
    )
    if token is not None:
        IngestToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token


_BAD_QUALITIES = {q.value for q in Quality} - {Quality.GOOD.value}


def _parse_time(raw, field: str) -> datetime:
    if isinstance(raw, datetime):
        dt = raw
    elif isinstance(raw, str):
        dt = parse_datetime(raw)
        if dt is None:
            raise ValueError(_("%(field)s 不是 ISO 8601 时间") % {"field": field})
    else:
        raise ValueError(_("%(field)s 不是 ISO 8601 时间") % {"field": field})
    if timezone.is_naive(dt):
        raise ValueError(_("%(field)s 须带时区，如 +08:00") % {"field": field})
    return dt


class _Rejected(ValueError):
    """One item refused, with a machine-readable code next to the message."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


def _resolve_channel(item: dict, channels_by_id: dict, channels_by_tag: dict) -> Channel:
    """The channel an item names, among the enterprise's own; a tag prefers HTTP-push channels,
    since a tag may be both on a Modbus gateway and on the DCS feed."""
    if "channel" in item:
        try:
            channel = channels_by_id.get(int(item["channel"]))
        except (TypeError, ValueError):
            channel = None
    elif "tag" in item:
        matches = channels_by_tag.get(str(item["tag"]), [])
        pushed = [ch for ch in matches if ch.device.protocol == Protocol.HTTP]
        matches = pushed or matches
        if len(matches) > 1:
            raise _Rejected(_("位号在本企业不唯一，请用 channel 编号"), "ambiguous_tag")
        channel = matches[0] if matches else None
    else:
        raise _Rejected(_("缺少 channel 或 tag"), "no_channel")
    if channel is None:
        raise _Rejected(_("测点不存在或不属于本企业"), "unknown_channel")
    # A token speaks for the enterprise's DCS/MES feed only: a polled channel has one source of
    # truth, the poller, and a push must not raise or clear its alarms.
    if channel.device.protocol != Protocol.HTTP:
        raise _Rejected(_("该测点由采集进程通过 Modbus 轮询，不接受 HTTP 推送"), "not_http_device")
    if not channel.device.enabled:
        raise _Rejected(_("设备已停用，不接受推送"), "device_disabled")
    if not channel.enabled:
        raise _Rejected(_("测点已停用，不接受推送"), "channel_disabled")
    return channel


def _clock_skew(now: datetime, *times: datetime | None) -> float | None:
    """Seconds by which the furthest of ``times`` is away from ``now`` when that exceeds the allowed
    skew (either direction), else None."""
    limit = settings.DEVICES_INGEST_MAX_CLOCK_SKEW_SECONDS
    worst = max((abs((t - now).total_seconds()) for t in times if t is not None), default=0.0)
    if worst > limit:
        return max(((t - now).total_seconds() for t in times if t is not None), key=abs)
    return None


# Re-posts of a skewed reading are recognised by its device time among the rows stored this recently.
_SKEW_DEDUPE_WINDOW = timedelta(days=1)


def ingest_readings(*, enterprise, items: Sequence[dict], source: str = "http") -> dict:
    """Store a batch pushed by an enterprise's DCS/MES: only enabled channels of its own HTTP-push
    devices, idempotent on (channel, time), one result per item. Readings are handed to the alert
    hooks too.

    A reading whose time is further than ``DEVICES_INGEST_MAX_CLOCK_SKEW_SECONDS`` from the receive
    time (either way) is a device with a wrong clock: it is stored at the receive time with its own
    time in ``device_time`` and quality ``clock_skew``, and the alert hooks get its value as a good
    reading at the receive time: a leak reported by a device with a wrong clock still alarms, and a
    wrong clock cannot clear an alarm at a time in the past.
    """
    max_items = settings.DEVICES_INGEST_MAX_ITEMS
    if not isinstance(items, list | tuple):
        raise InvalidInput(_("readings 应为数组"), code="not_a_list")
    if len(items) > max_items:
        raise InvalidInput(_("单批最多 %(n)s 条") % {"n": max_items}, code="too_many")
    channels_by_id: dict[int, Channel] = {}
    channels_by_tag: dict[str, list[Channel]] = {}
    for ch in Channel.objects.filter(device__enterprise=enterprise).select_related("device"):
        channels_by_id[ch.pk] = ch
        channels_by_tag.setdefault(ch.tag, []).append(ch)
    now = timezone.now()
    results: list[dict] = []
    # (item index, row to store, what the alert hooks evaluate: (value, quality), the device's
    # own time when it was skewed)
    accepted: list[tuple[int, Reading, tuple[float | None, str], datetime | None]] = []
    seen: set[tuple] = set()
    skewed_per_channel: dict[int, int] = {}
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise ValueError(_("每条数据应为对象"))
            channel = _resolve_channel(item, channels_by_id, channels_by_tag)
            t = _parse_time(item.get("time"), "time")
            device_time = _parse_time(item["device_time"], "device_time") if item.get("device_time") else None
            quality = str(item.get("quality") or Quality.GOOD.value)
            if quality != Quality.GOOD.value and quality not in _BAD_QUALITIES:
                raise ValueError(_("质量码无效: %(q)s") % {"q": quality})
            value = item.get("value")
            if quality == Quality.GOOD.value:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(_("value 应为数字"))
                # The poller's range rule: NaN/Inf no value, out of range kept as out_of_range.
                value, quality = range_quality(float(value), channel.range_low, channel.range_high)
            else:
                value = None
            evaluated = (value, quality)
            skew = _clock_skew(now, t, device_time)
            result = {"index": index, "status": "created", "channel": channel.pk}
            if skew is None:
                key = (channel.pk, t)
                claimed = None
            else:
                claimed = device_time or t
                key = ("skew", channel.pk, claimed)
                # Several skewed readings of one channel in a batch all arrive "now": a microsecond
                # apart, so none of them is dropped as a duplicate of (channel, time).
                n = skewed_per_channel.get(channel.pk, 0)
                skewed_per_channel[channel.pk] = n + 1
                t, device_time = now + timedelta(microseconds=n), claimed
                if quality == Quality.GOOD.value:
                    quality = Quality.CLOCK_SKEW.value
                result.update(clock_skew=True, skew_seconds=round(skew, 3), time=t.isoformat())
            if key in seen:
                results.append({"index": index, "status": "duplicate", "channel": channel.pk})
                continue
            seen.add(key)
            reading = Reading(
                channel=channel, time=t, value=value, quality=quality, device_time=device_time, poller=source
            )
            accepted.append((index, reading, evaluated, claimed))
            result["quality"] = quality
            results.append(result)
        except _Rejected as exc:
            results.append({"index": index, "status": "error", "error": str(exc), "code": exc.code})
        except ValueError as exc:
            results.append({"index": index, "status": "error", "error": str(exc), "code": "invalid"})
    if accepted:
        existing = _already_stored(accepted, now)
        new = []
        by_index = {res["index"]: res for res in results}
        for index, reading, evaluated, claimed in accepted:
            key = (reading.channel_id, reading.time) if claimed is None else ("skew", reading.channel_id, claimed)
            if key in existing:
                by_index[index]["status"] = "duplicate"
            else:
                new.append((reading, evaluated))
        rows = [r for r, _e in new]
        with transaction.atomic():
            Reading.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
            _recompute_aggregates(rows)
            device_ids = {r.channel.device_id for r in rows}
            if device_ids:
                Device.objects.filter(pk__in=device_ids).update(
                    last_seen=now, status=DeviceStatus.ONLINE, status_reason=""
                )
            # What the alert hooks evaluate is the process value at the stored time, not the stored
            # quality: a clock_skew row is flagged for the record but its value still counts.
            events = [
                ReadingEvent(
                    channel_id=r.channel_id,
                    device_id=r.channel.device_id,
                    value=value,
                    good=quality == Quality.GOOD.value,
                    quality=quality,
                    received_at=r.time,
                    device_time=r.device_time,
                )
                for r, (value, quality) in new
            ]
            # In time order: a batch listed newest first must not end on its oldest value.
            events.sort(key=lambda e: e.received_at)
            if events:
                transaction.on_commit(lambda: publish_readings(events))
    summary = {"created": 0, "duplicate": 0, "error": 0}
    for res in results:
        summary[res["status"]] += 1
    return {"summary": summary, "results": results}


def _already_stored(accepted, now: datetime) -> set[tuple]:
    """Keys of ``accepted`` that an earlier post stored: (channel, time) for readings on time, and
    ("skew", channel, device time) for skewed ones (stored at their first receive time, or, when a
    re-post comes late enough to be skewed, at the time it was first stored under)."""
    existing = set(
        Reading.objects.filter(
            channel_id__in={r.channel_id for _i, r, _e, _c in accepted},
            time__in={r.time if c is None else c for _i, r, _e, c in accepted},
        ).values_list("channel_id", "time")
    )
    keys = set(existing)
    skewed = [(r.channel_id, c) for _i, r, _e, c in accepted if c is not None]
    if skewed:
        keys |= {("skew", ch, c) for ch, c in skewed if (ch, c) in existing}
        keys |= {
            ("skew", ch, c)
            for ch, c in Reading.objects.filter(
                channel_id__in={ch for ch, _c in skewed},
                device_time__in={c for _ch, c in skewed},
                time__gte=now - _SKEW_DEDUPE_WINDOW,
            ).values_list("channel_id", "device_time")
        }
    return keys


def _recompute_aggregates(readings: Sequence[Reading]) -> None:
    """Rebuild the touched minutes from stored rows, so re-posting a batch never double counts."""
    from devices.models import ReadingAggregate

    keys = {(r.channel_id, r.time.replace(second=0, microsecond=0)) for r in readings}
    for channel_id, minute in keys:
        rows = Reading.objects.filter(
            channel_id=channel_id, time__gte=minute, time__lt=minute + timedelta(minutes=1)
        ).values_list("value", "quality")
        good = [v for v, q in rows if q == Quality.GOOD.value and v is not None]
        bad = sum(1 for v, q in rows if q != Quality.GOOD.value or v is None)
        values = [v for v, _q in rows if v is not None]  # min/max span out-of-range values too, as the poller's
        ReadingAggregate.objects.update_or_create(
            channel_id=channel_id,
            minute=minute,
            defaults={
                "min": min(values) if values else None,
                "max": max(values) if values else None,
                "sum": float(sum(good)),
                "count": len(good),
                "bad_count": bad,
            },
        )


# --- retention -----------------------------------------------------------------------------------


def prune_readings(*, raw_days: int | None = None, aggregate_days: int | None = None, chunk: int = 50_000) -> dict:
    """Delete raw readings and aggregates past their retention, in chunks to keep locks short."""
    from devices.models import ReadingAggregate

    raw_days = settings.DEVICES_RAW_RETENTION_DAYS if raw_days is None else raw_days
    aggregate_days = settings.DEVICES_AGGREGATE_RETENTION_DAYS if aggregate_days is None else aggregate_days
    if raw_days < 1 or aggregate_days < 1:
        raise InvalidInput(_("保留天数至少为 1"), code="bad_retention")
    now = timezone.now()
    counts = {}
    for label, model, field, days in (
        ("readings", Reading, "time", raw_days),
        ("aggregates", ReadingAggregate, "minute", aggregate_days),
    ):
        cutoff = now - timedelta(days=days)
        total = 0
        while True:
            ids = list(model.objects.filter(**{f"{field}__lt": cutoff}).values_list("pk", flat=True)[:chunk])
            if not ids:
                break
            total += model.objects.filter(pk__in=ids)._raw_delete(model.objects.db)
        counts[label] = total
    logger.info("pruned %s (raw > %d days, aggregates > %d days)", counts, raw_days, aggregate_days)
    return counts
