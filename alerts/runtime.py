"""Glue between the reading hand-off (devices.hooks) and the engine + services.

The poller calls the sinks with every batch. Evaluation is in memory and fast; the rare changes it
produces are written by services (database first, push after commit). Inside an event loop (the
async poller) the writes go to a background thread, because the ORM must not run on the loop;
from synchronous callers (HTTP ingest, tests) they are written inline. Either way every change is
first appended to this process's alert outbox (alerts/outbox.py) and removed only once written, so a
database outage or a crash delays an alert but never loses it.

A level-1 condition with linkage closes its valve from here, at once: the coil write goes to the
poller worker of the linkage device in this process (devices.hooks.write_coil_locally), without
waiting for the database; its result is queued in the outbox and stored when the database is back.

Rules are resolved per channel: the channel's own rule, else the device's rule for that quantity
(or for any quantity), else the default rule of the quantity. They are reloaded when a rule,
schedule, channel, device or operating mode changes (checked every ALERT_RULE_REFRESH_SECONDS).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import re
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import time as dtime

from django.conf import settings
from django.db.models import Count, Max

from alerts import engine as eng
from alerts.choices import AlertKind
from alerts.outbox import Outbox, new_change_id
from devices import hooks
from devices.hooks import evaluation_rows
from devices.poller.snapshot import ConfigSnapshot, snapshot_path
from regulator.dbdeadline import db_deadline

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    device_id: int
    enterprise_id: int
    rule_id: int
    tag: str
    name: str
    unit: str
    levels: dict
    linkage: tuple | None = None  # (device id, unit id, coil address, value) of a level-1 linkage


def rule_config(rule, channel=None) -> eng.RuleConfig:
    """The engine's config of ``rule`` as applied to ``channel`` (the channel brings its over-range
    rule: above the range is the highest alarm on a fail-safe-high channel)."""
    schedules = tuple(
        eng.Schedule(
            limits=eng.Limits(s.high_high, s.high, s.low, s.low_low),
            month_from=s.month_from,
            month_to=s.month_to,
            time_from=s.time_from if isinstance(s.time_from, dtime) else None,
            time_to=s.time_to if isinstance(s.time_to, dtime) else None,
            mode=s.operating_mode,
            name=s.name,
        )
        for s in sorted(rule.schedules.all(), key=lambda s: (s.priority, s.pk))
    )
    return eng.RuleConfig(
        limits=eng.Limits(rule.high_high, rule.high, rule.low, rule.low_low),
        deadband=rule.deadband,
        on_delay=rule.on_delay_s,
        off_delay=rule.off_delay_s,
        rate_limit=rule.rate_limit_per_min,
        rate_window=settings.ALERT_RATE_WINDOW_SECONDS,
        stale_after=float(rule.stale_after_s) if rule.stale_after_s else None,
        fault_enabled=rule.fault_enabled,
        schedules=schedules,
        over_range_high=(channel.range_high if channel is not None and channel.over_range_alarms else None),
    )


def linkage_target(rule) -> tuple | None:
    if not rule.has_linkage:
        return None
    return (rule.linkage_device_id, rule.linkage_unit_id, rule.linkage_address, bool(rule.linkage_value))


def resolve_rules(channels, rules) -> dict:
    """channel -> the most specific enabled rule."""
    by_channel, by_device, defaults = {}, {}, {}
    for rule in rules:
        if rule.channel_id:
            by_channel[rule.channel_id] = rule
        elif rule.device_id:
            by_device[(rule.device_id, rule.quantity)] = rule
        elif rule.quantity:
            defaults[rule.quantity] = rule
    resolved = {}
    for ch in channels:
        rule = (
            by_channel.get(ch.pk)
            or by_device.get((ch.device_id, ch.quantity))
            or by_device.get((ch.device_id, ""))
            or defaults.get(ch.quantity)
        )
        if rule is not None:
            resolved[ch.pk] = rule
    return resolved


class AlertRuntime:
    def __init__(self):
        self.engine = eng.Engine(settings.TIME_ZONE)
        self.lock = threading.RLock()
        self.channels: dict[int, ChannelInfo] = {}
        self.signature = None
        self.checked_at = 0.0
        self.restored = False
        self.thread: threading.Thread | None = None
        self._outbox: Outbox | None = None
        self._outbox_path = None
        self._outbox_full_announced = False
        self._snapshot: ConfigSnapshot | None = None
        # The last status each device reported (online, epoch seconds), even before the rules were
        # loaded: a device offline restored from the database is judged against it.
        self.device_seen: dict[int, tuple[bool, float]] = {}
        self.retry_thread: threading.Thread | None = None
        self._flush_registered = False
        self._drain_lock = threading.RLock()
        self.stopping = threading.Event()
        # While a level-1 linkage write is pending, watch for its confirmation every second.
        self.linkage_watch_until = 0.0

    # --- configuration ---------------------------------------------------------------------------
    def _signature(self):
        from alerts.models import AlertRule, EnterpriseMode, ThresholdSchedule
        from devices.models import Channel, Device

        def agg(qs, field):
            row = qs.aggregate(n=Count("pk"), m=Max(field))
            return (row["n"], row["m"])

        return (
            agg(AlertRule.objects.all(), "updated_at"),
            agg(ThresholdSchedule.objects.all(), "pk"),
            agg(Channel.objects.all(), "updated_at"),
            agg(Device.objects.all(), "updated_at"),
            agg(EnterpriseMode.objects.all(), "changed_at"),
        )

    def maybe_reload(self, force: bool = False) -> bool:
        now = time.monotonic()
        if not force and now - self.checked_at < settings.ALERT_RULE_REFRESH_SECONDS:
            return False
        self.checked_at = now
        signature = self._signature()
        if not force and signature == self.signature:
            return False
        self.load()
        self.signature = signature
        return True

    def load(self) -> None:
        from alerts.models import Alert, AlertRule, EnterpriseMode
        from devices.models import Channel

        channels = list(
            Channel.objects.filter(enabled=True, device__enabled=True).select_related("device").order_by("pk")
        )
        rules = list(AlertRule.objects.filter(enabled=True).prefetch_related("schedules"))
        resolved = resolve_rules(channels, rules)
        modes = dict(EnterpriseMode.objects.values_list("enterprise_id", "mode"))
        # (Evaluated before anything changes: the restore below needs the database too.)
        open_rows = None
        if not self.restored:
            open_rows = list(
                Alert.objects.filter(
                    condition_active=True,
                    state__in=["active_unack", "active_ack", "shelved", "suppressed", "out_of_service"],
                ).values_list("channel_id", "device_id", "kind")
            )
        infos = {}
        configs = {}
        for ch in channels:
            rule = resolved.get(ch.pk)
            if rule is None:
                continue
            configs[ch.pk] = rule_config(rule, ch)
            infos[ch.pk] = ChannelInfo(
                device_id=ch.device_id,
                enterprise_id=ch.device.enterprise_id,
                rule_id=rule.pk,
                tag=ch.tag,
                name=ch.name,
                unit=ch.unit,
                levels={k: rule.level_for(k) for k in AlertKind.values},
                linkage=linkage_target(rule),
            )
        self._install(configs, infos, modes)
        self._snapshot_file().save({"configs": configs, "infos": infos, "modes": modes})
        with self.lock:
            if open_rows is not None:
                # Conditions still active in the database, so a return to normal is recognised.
                back_online = []
                for channel_id, device_id, kind in open_rows:
                    if kind == AlertKind.DEVICE_OFFLINE and device_id:
                        seen = self.device_seen.get(device_id)
                        if seen is not None and seen[0]:
                            # It reported online before this restore (a restarted poller connects
                            # first): that return to normal is due now, not at the next flap.
                            back_online.append(eng.Change(device_id, eng.DEVICE_OFFLINE, False, seen[1]))
                        else:
                            self.engine.devices_offline[device_id] = True
                    elif channel_id:
                        # Restored channel conditions are judged by the next readings, as usual.
                        self.engine.restore(channel_id, [kind])
                self.restored = True
                if back_online:
                    self._enqueue(back_online)

    def _install(self, configs: dict, infos: dict, modes: dict) -> None:
        with self.lock:
            for gone in set(self.engine.channels) - set(configs):
                self.engine.remove(gone)
            for pk, config in configs.items():
                self.engine.configure(pk, config)
                self.engine.set_mode(pk, modes.get(infos[pk].enterprise_id, "normal"))
            self.channels = infos

    def _snapshot_file(self) -> ConfigSnapshot:
        path = snapshot_path(hooks.process_name() or settings.ALERT_OUTBOX_NAME, "alerts")
        if self._snapshot is None or self._snapshot.path != path:
            self._snapshot = ConfigSnapshot(path, "alerts")
        return self._snapshot

    def start(self) -> None:
        """The first configuration: from the database, else (it is unreachable) from the last one this
        process name loaded (see devices.poller.snapshot); the next reload that works replaces it.
        Open conditions are restored from the database only (see ``load``)."""
        from django.db import DatabaseError, connections

        if self.signature is not None or self.channels:
            return
        try:
            with db_deadline():  # a frozen database at start-up is an outage too: fall back
                self.maybe_reload(force=True)
            return
        except DatabaseError as exc:
            reason = exc
            _reconnect(connections)
        loaded = self._snapshot_file().load((eng.RuleConfig, eng.Limits, eng.Schedule, ChannelInfo))
        if loaded is None:
            logger.error("alerts runtime: the database is unreachable (%s) and no snapshot: no rules yet", reason)
            return
        data, saved_at = loaded
        try:
            configs, infos, modes = data["configs"], data["infos"], data["modes"]
            if not (
                all(isinstance(c, eng.RuleConfig) for c in configs.values())
                and all(isinstance(i, ChannelInfo) for i in infos.values())
                and set(configs) == set(infos)
                and all(isinstance(m, str) for m in modes.values())
            ):
                raise TypeError("unexpected contents")
        except (TypeError, KeyError, AttributeError) as exc:
            logger.error("alerts runtime: snapshot %s ignored: %s", self._snapshot_file().path, exc)
            return
        self._install(configs, infos, modes)
        logger.warning(
            "alerts runtime: the database is unreachable (%s); evaluating %d channels on the last known rules, of %s",
            reason,
            len(configs),
            saved_at.astimezone(self.engine.tz).isoformat(timespec="seconds"),
        )

    # --- sinks ----------------------------------------------------------------------------------
    def on_readings(self, readings) -> None:
        background = _in_event_loop() or threading.current_thread() is self.thread
        if background:
            self._ensure_thread()
        else:
            self.maybe_reload()
            self._sync_from_database({r.channel_id for r in readings})
        changes = []
        with self.lock:
            evaluate = self.engine.evaluate
            for channel_id, value, good, quality, t in evaluation_rows(readings):
                evaluate(channel_id, value, good, t, quality, changes)
        if changes:
            self._dispatch(changes, background)

    def _sync_from_database(self, channel_ids: set[int]) -> None:
        """Synchronous callers (HTTP ingest) may run in several web workers, each with its own engine:
        align the conditions of these channels with the open alerts before evaluating. (The poller
        owns its devices alone and skips this.)"""
        from django.db import DatabaseError

        from alerts.choices import OPEN_STATES
        from alerts.models import Alert

        ids = [pk for pk in channel_ids if pk in self.channels]
        if not ids or len(self.outbox):
            return  # changes still queued here: the database is behind this engine, not ahead of it
        active: dict[int, set[str]] = {pk: set() for pk in ids}
        rows = Alert.objects.filter(channel_id__in=ids, state__in=OPEN_STATES, condition_active=True)
        try:
            for channel_id, kind in rows.values_list("channel_id", "kind"):
                active[channel_id].add(kind)
        except DatabaseError:
            logger.warning("could not align with the open alerts; evaluating with this process's state")
            return
        with self.lock:
            for pk, kinds in active.items():
                self.engine.sync_active(pk, kinds)

    def on_status(self, event) -> None:
        if getattr(event, "status", "") in ("maintenance", "disabled"):
            return  # not a fault: maintenance suppresses by design, a disabled device is out of service
        background = _in_event_loop() or threading.current_thread() is self.thread
        if background:
            self._ensure_thread()
        with self.lock:
            self.device_seen[event.device_id] = (event.online, event.at.timestamp())
            changes = self.engine.device_status(event.device_id, event.online, event.at.timestamp(), event.reason)
        if changes:
            self._dispatch(changes, background)

    def tick(self, now: float | None = None) -> int:
        """Periodic work: stale-data conditions. Returns the number of changes written."""
        now = time.time() if now is None else now
        with self.lock:
            changes = self.engine.check_stale(now)
        if changes:
            self.apply(changes)
        return len(changes)

    def _dispatch(self, changes, background: bool) -> None:
        self._enqueue(changes)
        if not background:
            self.drain()

    # --- the outbox -----------------------------------------------------------------------------------
    @property
    def outbox(self) -> Outbox:
        name = hooks.process_name() or settings.ALERT_OUTBOX_NAME
        path = settings.ALERT_OUTBOX_DIR / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.sqlite3"
        if path != self._outbox_path:  # (a test changes the directory; a poller names its process)
            with self.lock:
                if path != self._outbox_path:
                    if self._outbox is not None:
                        self._outbox.close()
                    self._outbox = Outbox(path, max_items=settings.ALERT_OUTBOX_MAX_CHANGES)
                    self._outbox_path = path
        return self._outbox

    def _enqueue(self, changes) -> None:
        """Append the changes to the outbox, in order, durably; a level-1 linkage is handed to the
        local poller first (it writes the coil before its next read, whatever the database does)."""
        outbox = self.outbox
        items = []
        for change in changes:
            change_id = new_change_id()
            payload = {
                "type": "change",
                "key": change.key,
                "kind": change.kind,
                "active": change.active,
                "at": change.at,
                "value": change.value,
                "limit": change.limit,
                "detail": change.detail,
            }
            # What the engine knew when it decided (rule, level, names): a replay after a restart may
            # come before this process has loaded the rules, or after they changed.
            if change.kind == eng.DEVICE_OFFLINE:
                payload["level"] = self._offline_level(change.key)
            else:
                info = self.channels.get(change.key)
                if info is not None:
                    payload["info"] = {
                        "rule": info.rule_id,
                        "level": info.levels.get(change.kind, 3),
                        "tag": info.tag,
                        "name": info.name,
                        "unit": info.unit,
                    }
            if change.active and change.kind != eng.DEVICE_OFFLINE:
                uid = self._link_locally(change, change_id)
                if uid:
                    payload["linkage_local"] = uid
            items.append((payload, change_id))
        # One transaction, one fsync for the batch: this runs on the poller's event loop.
        if not all(on_disk for _entry, on_disk in outbox.append_many(items)):
            self._announce_full(outbox)

    def _link_locally(self, change: eng.Change, change_id: str) -> str:
        info = self.channels.get(change.key)
        if info is None or info.linkage is None or info.levels.get(change.kind, 3) != 1:
            return ""
        device_id, unit_id, address, value = info.linkage
        uid = new_change_id()
        requested_at = datetime.fromtimestamp(time.time(), UTC)
        reason = f"{info.tag} {info.name} 一级联动"

        def done(ok, readback, error, started_at, finished_at):
            self._linkage_done(
                raise_change_id=change_id,
                uid=uid,
                device_id=device_id,
                unit_id=unit_id,
                address=address,
                value=value,
                reason=reason,
                requested_at=requested_at,
                started_at=started_at,
                finished_at=finished_at,
                ok=ok,
                readback=readback,
                error=error,
            )

        request = hooks.LocalCoilWrite(uid, device_id, unit_id, address, value, reason, requested_at, done)
        return uid if hooks.write_coil_locally(request) else ""

    def _linkage_done(self, *, requested_at, started_at, finished_at, **result) -> None:
        """A local linkage write finished (on the poller's loop): queue its record behind its alert."""
        payload = {
            "type": "linkage",
            "requested_at": requested_at.timestamp(),
            "started_at": started_at.timestamp() if started_at else None,
            "finished_at": finished_at.timestamp(),
            "poller": hooks.process_name() or settings.ALERT_OUTBOX_NAME,
            **result,
        }
        outbox = self.outbox
        _entry, on_disk = outbox.append(payload)
        if not on_disk:
            self._announce_full(outbox)

    def _announce_full(self, outbox: Outbox) -> None:
        if self._outbox_full_announced:
            return
        self._outbox_full_announced = True
        logger.critical(
            "alert outbox %s is full (%d changes on disk): alert changes now wait in memory and are lost "
            "if this process dies; the database has been unreachable too long",
            outbox.path,
            outbox.max_items,
        )
        hooks.publish_poller_event(
            hooks.PollerEvent(
                kind="spool_full",
                poller=hooks.process_name() or settings.ALERT_OUTBOX_NAME,
                detail=f"alert outbox full at {outbox.max_items} changes",
                at=datetime.now(UTC),
            )
        )

    def on_poller_event(self, event) -> None:
        """A full reading spool or alert outbox reaches the alert board once the database is back: the
        notice is queued in the outbox (past its bound: it is the one that says so)."""
        if event.kind not in ("spool_full", "cold_start"):
            return
        payload = {"type": "poller_event", "kind": event.kind, "poller": event.poller, "detail": event.detail}
        payload["at"] = event.at.timestamp()
        self.outbox.append_many([(payload, None)], force=True)

    # --- writing --------------------------------------------------------------------------------
    def apply(self, changes) -> None:
        """Queue ``changes`` and write what the outbox holds (the synchronous path)."""
        self._enqueue(changes)
        self.drain()

    def drain(self) -> bool:
        """Write what the outbox holds, oldest first, each removed once committed. Returns False when
        the database is down (the rest stays queued; the caller retries later), True when empty."""
        with self._drain_lock:  # one writer at a time in a process: the order is the outbox's
            return self._drain()

    def _drain(self) -> bool:
        from django.db import InterfaceError, OperationalError, connections

        outbox = self.outbox
        while True:
            entries = outbox.peek(100)
            if not entries:
                if not outbox.full:
                    self._outbox_full_announced = False
                return True
            for entry in entries:
                started = time.perf_counter()
                try:
                    try:
                        with self._bounded():
                            self._apply_entry(entry)
                    except (OperationalError, InterfaceError):
                        # The writer keeps its connection between bursts; PostgreSQL may have
                        # restarted meanwhile. Reconnect and try once more (a stale connection fails
                        # on the first query, before anything is written).
                        if not _reconnect(connections):
                            raise
                        with self._bounded():
                            self._apply_entry(entry)
                except (OperationalError, InterfaceError) as exc:
                    logger.warning("database unreachable (%s); %d alert changes wait in the outbox", exc, len(outbox))
                    _reconnect(connections)
                    if not self._in_background():
                        self._ensure_retry()
                    return False
                except Exception as exc:  # a change the database refuses must not hold up the others
                    if _applied(entry.change_id):  # another process sharing this file wrote it meanwhile
                        outbox.remove(entry)
                        continue
                    logger.exception("could not record %s; set aside in %s", entry.payload, outbox.path)
                    outbox.set_aside(entry, repr(exc))
                    continue
                outbox.remove(entry)
                took = time.perf_counter() - started
                if took > 0.1:
                    logger.warning("slow alert write: %s took %.0f ms (database or push)", entry.payload, took * 1000)

    def _bounded(self):
        """A deadline on the writer threads' database calls: a hung (frozen) database is an outage
        and the change stays queued. Not on a web request's own connection (HTTP ingest inline),
        which must not carry the daemons' statement_timeout into the rest of the request."""
        return db_deadline() if self._in_background() else nullcontext()

    def _in_background(self) -> bool:
        current = threading.current_thread()
        return current is self.thread or current is self.retry_thread

    def _ensure_retry(self) -> None:
        """A synchronous caller (HTTP ingest) met a database outage: a thread retries the outbox until
        it is empty (the background writer does this itself)."""
        if not settings.ALERT_RUNTIME_BACKGROUND:
            return  # (tests: the next synchronous call drains)
        with self.lock:
            if self.retry_thread is not None and self.retry_thread.is_alive():
                return
            self.retry_thread = threading.Thread(target=self._retry, name="alerts-outbox-retry", daemon=True)
            self.retry_thread.start()

    def _retry(self) -> None:
        from django.db import connections

        delay = 0.5
        try:
            while not self.stopping.wait(delay):
                try:
                    if self.drain():
                        return
                except Exception:
                    logger.exception("alert outbox retry failed; continuing")
                delay = min(delay * 2, MAX_RETRY_SECONDS)
        finally:
            connections.close_all()

    def _apply_entry(self, entry) -> None:
        from alerts import services

        payload = entry.payload
        if payload["type"] == "poller_event":
            services.alert_poller_event(
                change_id=entry.change_id,
                kind=payload["kind"],
                poller=payload["poller"],
                detail=payload["detail"],
                at=_aware(payload["at"]),
            )
            return
        if payload["type"] == "linkage":
            at = {k: _aware(payload.get(k)) for k in ("requested_at", "started_at", "finished_at")}
            services.alert_linkage_local_result(
                change_id=entry.change_id,
                raise_change_id=payload["raise_change_id"],
                uid=payload["uid"],
                device_id=payload["device_id"],
                unit_id=payload["unit_id"],
                address=payload["address"],
                value=payload["value"],
                reason=payload["reason"],
                ok=payload["ok"],
                readback=payload["readback"],
                error=payload["error"],
                poller=payload["poller"],
                **at,
            )
            return
        change = eng.Change(
            payload["key"],
            payload["kind"],
            payload["active"],
            payload["at"],
            payload["value"],
            payload["limit"],
            payload["detail"],
        )
        self._apply_one(
            change,
            change_id=entry.change_id,
            linkage_local=payload.get("linkage_local", ""),
            known=payload.get("info"),
            level=payload.get("level"),
        )

    def _apply_one(
        self,
        change: eng.Change,
        *,
        change_id: str = "",
        linkage_local: str = "",
        known: dict | None = None,
        level: int | None = None,
    ) -> None:
        from alerts import services
        from devices.models import Channel, Device
        from enterprises.models import Enterprise

        at = datetime.fromtimestamp(change.at, UTC)
        if change.kind == eng.DEVICE_OFFLINE:
            device = Device.objects.filter(pk=change.key).first()
            if device is None:
                return
            if change.active:
                message = services.format_message(change.kind, name=device.name, detail=change.detail or "-")
                services.alert_raise(
                    enterprise=Enterprise.objects.get(pk=device.enterprise_id),
                    device=device,
                    kind=change.kind,
                    level=level if level is not None else self._offline_level(device.pk),
                    message=message,
                    at=at,
                    suppressed=device.maintenance,
                    change_id=change_id,
                )
            else:
                services.alert_condition_return(kind=change.kind, device=device, at=at, change_id=change_id)
            return
        if known is not None:
            from alerts.models import AlertRule

            rule_id = known["rule"]
            if change.active and not AlertRule.objects.filter(pk=rule_id).exists():
                rule_id = None  # deleted since: the alert stands without it
            info = ChannelInfo(0, 0, rule_id, known["tag"], known["name"], known["unit"], {})
            kind_level = known["level"]
        else:
            info = self.channels.get(change.key)
            if info is None:
                if not change.active:  # a return needs nothing but the channel
                    services.alert_condition_return(
                        kind=change.kind, channel=change.key, at=at, value=change.value, change_id=change_id
                    )
                return
            kind_level = info.levels.get(change.kind, 3)
        if change.active:
            channel = Channel.objects.select_related("device__enterprise__region").filter(pk=change.key).first()
            if channel is None:
                return
            device = channel.device
            unit = info.unit if change.kind not in (eng.STALE, eng.SENSOR_FAULT) else ""
            message = services.format_message(
                change.kind,
                tag=info.tag,
                name=info.name,
                value=change.value,
                limit=change.limit,
                unit=unit,
                detail=change.detail or "-",
            )
            alert = services.alert_raise(
                enterprise=device.enterprise,
                device=device,
                channel=channel,
                rule=info.rule_id,
                kind=change.kind,
                level=kind_level,
                message=message,
                at=at,
                value=change.value,
                limit=change.limit,
                unit=info.unit,
                suppressed=device.maintenance,
                change_id=change_id,
                linkage_local=linkage_local,
            )
            if alert is not None and alert.linkage_status == "requested" and not linkage_local:
                self.linkage_watch_until = time.monotonic() + settings.ALERT_LINKAGE_WATCH_SECONDS
        else:
            services.alert_condition_return(
                kind=change.kind, channel=change.key, at=at, value=change.value, change_id=change_id
            )

    def _offline_level(self, device_id: int) -> int:
        levels = [i.levels.get(AlertKind.DEVICE_OFFLINE, 3) for i in self.channels.values() if i.device_id == device_id]
        return min(levels) if levels else 3

    # --- the background thread ----------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            return
        if not settings.ALERT_RUNTIME_BACKGROUND:
            return
        with self.lock:
            if self.thread is not None and self.thread.is_alive():
                return
            self.thread = threading.Thread(target=self._run, name="alerts-runtime", daemon=True)
            self.thread.start()
            if not self._flush_registered:
                self._flush_registered = True
                atexit.register(self._flush_at_exit)

    def _flush_at_exit(self, timeout: float | None = None) -> None:
        """The process is ending (the poller stopped): give the writer a moment to write what is
        queued (the poller's last "采集进程已停止" statuses); what it cannot write stays in the outbox
        for the next start."""
        if self._outbox is None or self.thread is None or not self.thread.is_alive():
            return
        deadline = time.monotonic() + (EXIT_FLUSH_SECONDS if timeout is None else timeout)
        while len(self._outbox) and time.monotonic() < deadline:
            self._outbox.wakeup.set()
            time.sleep(0.05)

    def _run(self) -> None:
        from django.db import InterfaceError, OperationalError, connections

        from alerts import services

        last_tick = 0.0
        last_busy = time.monotonic()
        delay = 0.0  # while the database is down: wait this long between attempts (capped doubling)
        outbox = self.outbox
        try:
            self.start()  # before the outbox: with the database down, the drain below never gets past it
        except Exception:
            logger.exception("alerts runtime: loading the rules failed; retrying in the loop")
        while not self.stopping.is_set():
            try:
                outbox.wakeup.wait(delay or 0.5)
                outbox.wakeup.clear()
                if len(outbox):
                    # Alerts first: the rule refresh (five aggregate queries) can wait a moment.
                    if not self.drain():
                        delay = min(max(delay * 2, 0.5), MAX_RETRY_SECONDS)
                        continue
                    delay = 0.0
                    last_busy = time.monotonic()
                with db_deadline():
                    self.maybe_reload(force=self.signature is None)
                if time.monotonic() - last_tick >= 1.0:
                    last_tick = time.monotonic()
                    with self.lock:
                        stale = self.engine.check_stale(time.time())
                    if stale:
                        self._enqueue(stale)
                        continue
                    if time.monotonic() < self.linkage_watch_until:
                        with db_deadline():
                            services.alerts_sync_linkage()
            except (OperationalError, InterfaceError) as exc:  # the database is down: said by drain()
                logger.debug("alerts runtime: database unreachable (%s)", exc)
                _reconnect(connections)
                delay = min(max(delay * 2, 1.0), MAX_RETRY_SECONDS)
            except Exception:
                logger.exception("alerts runtime loop error; continuing")
                connections.close_all()
                delay = min(max(delay * 2, 1.0), MAX_RETRY_SECONDS)
            finally:
                if not len(outbox) and time.monotonic() - last_busy > IDLE_CLOSE_SECONDS:
                    # Idle: hold no database connection between bursts (a restart of PostgreSQL, or a
                    # test database being dropped, must not find this thread holding one). Not after
                    # every burst: opening a connection was ~10 ms on the path of every alert.
                    connections.close_all()

    def stop(self) -> None:
        self.stopping.set()


# Close the writer thread's database connection after this long without alerts.
IDLE_CLOSE_SECONDS = 30.0
# While the database is down, the outbox is retried at most this far apart.
MAX_RETRY_SECONDS = 5.0
# At exit, wait at most this long for the writer to empty the outbox.
EXIT_FLUSH_SECONDS = 5.0


def _applied(change_id: str) -> bool:
    from alerts.models import AlertChangeApplied

    try:
        return AlertChangeApplied.objects.filter(change_id=change_id).exists()
    except Exception:  # (the question is asked after a failure; no answer means "not known to be")
        logger.debug("could not check change %s", change_id, exc_info=True)
        return False


def _aware(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _reconnect(connections) -> bool:
    """Drop the (broken) connections so the next query opens a new one; False inside a transaction
    someone else owns (a test's), where closing is not ours to do."""
    if any(conn.in_atomic_block for conn in connections.all(initialized_only=True)):
        return False
    for conn in connections.all(initialized_only=True):
        try:
            conn.close()
        except Exception:  # already gone
            logger.debug("closing a broken connection failed", exc_info=True)
    return True


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


runtime = AlertRuntime()


def reading_sink(readings) -> None:
    runtime.on_readings(readings)


def status_sink(event) -> None:
    runtime.on_status(event)


def poller_sink(event) -> None:
    runtime.on_poller_event(event)
