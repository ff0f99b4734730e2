"""Glue between the reading hand-off (devices.hooks) and the engine + services.

The poller calls the sinks with every batch. Evaluation is in memory and fast; the rare changes it
produces are written by services (database first, push after commit). Inside an event loop (the
async poller) the writes go to a background thread, because the ORM must not run on the loop;
from synchronous callers (HTTP ingest, tests) they are written inline.

Rules are resolved per channel: the channel's own rule, else the device's rule for that quantity
(or for any quantity), else the default rule of the quantity. They are reloaded when a rule,
schedule, channel, device or operating mode changes (checked every ALERT_RULE_REFRESH_SECONDS).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import time as dtime

from django.conf import settings
from django.db.models import Count, Max

from alerts import engine as eng
from alerts.choices import AlertKind
from devices.hooks import evaluation_rows

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
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
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
            )
        with self.lock:
            for gone in set(self.engine.channels) - set(configs):
                self.engine.remove(gone)
            for pk, config in configs.items():
                self.engine.configure(pk, config)
                self.engine.set_mode(pk, modes.get(infos[pk].enterprise_id, "normal"))
            self.channels = infos
            if not self.restored:
                # Conditions still active in the database, so a return to normal is recognised.
                open_rows = Alert.objects.filter(
                    condition_active=True,
                    state__in=["active_unack", "active_ack", "shelved", "suppressed", "out_of_service"],
                )
                for channel_id, device_id, kind in open_rows.values_list("channel_id", "device_id", "kind"):
                    if kind == AlertKind.DEVICE_OFFLINE and device_id:
                        self.engine.devices_offline[device_id] = True
                    elif channel_id:
                        self.engine.restore(channel_id, [kind])
                self.restored = True

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
        from alerts.choices import OPEN_STATES
        from alerts.models import Alert

        ids = [pk for pk in channel_ids if pk in self.channels]
        if not ids:
            return
        active: dict[int, set[str]] = {pk: set() for pk in ids}
        rows = Alert.objects.filter(channel_id__in=ids, state__in=OPEN_STATES, condition_active=True)
        for channel_id, kind in rows.values_list("channel_id", "kind"):
            active[channel_id].add(kind)
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
        if background:
            self.queue.put(changes)
        else:
            self.apply(changes)

    # --- writing --------------------------------------------------------------------------------
    def apply(self, changes) -> None:
        from django.db import InterfaceError, OperationalError, connections

        for change in changes:
            started = time.perf_counter()
            try:
                try:
                    self._apply_one(change)
                except (OperationalError, InterfaceError):
                    # The writer thread keeps its connection between bursts; PostgreSQL may have
                    # restarted meanwhile. Reconnect and try once more (a stale connection fails on
                    # the first query, before anything is written).
                    if not _reconnect(connections):
                        raise
                    self._apply_one(change)
            except Exception:  # one failed write must not lose the others
                logger.exception("could not record %s", change)
            took = time.perf_counter() - started
            if took > 0.1:
                logger.warning(
                    "slow alert write: %s %s took %.0f ms (database or push)", change.kind, change.key, took * 1000
                )

    def _apply_one(self, change: eng.Change) -> None:
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
                    level=self._offline_level(device),
                    message=message,
                    at=at,
                    suppressed=device.maintenance,
                )
            else:
                services.alert_condition_return(kind=change.kind, device=device, at=at)
            return
        info = self.channels.get(change.key)
        if info is None:
            return
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
                level=info.levels.get(change.kind, 3),
                message=message,
                at=at,
                value=change.value,
                limit=change.limit,
                unit=info.unit,
                suppressed=device.maintenance,
            )
            if alert.linkage_status == "requested":
                self.linkage_watch_until = time.monotonic() + settings.ALERT_LINKAGE_WATCH_SECONDS
        else:
            services.alert_condition_return(kind=change.kind, channel=change.key, at=at, value=change.value)

    def _offline_level(self, device) -> int:
        levels = [i.levels.get(AlertKind.DEVICE_OFFLINE, 3) for i in self.channels.values() if i.device_id == device.pk]
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

    def _run(self) -> None:
        from django.db import connections

        from alerts import services

        last_tick = 0.0
        last_busy = time.monotonic()
        while not self.stopping.is_set():
            try:
                try:
                    changes = self.queue.get(timeout=0.5)
                except queue.Empty:
                    changes = None
                if changes:
                    # Alerts first: the rule refresh (five aggregate queries) can wait a moment.
                    self.apply(changes)
                    last_busy = time.monotonic()
                self.maybe_reload(force=self.signature is None)
                if time.monotonic() - last_tick >= 1.0:
                    last_tick = time.monotonic()
                    self.tick()
                    if time.monotonic() < self.linkage_watch_until:
                        services.alerts_sync_linkage()
            except Exception:
                logger.exception("alerts runtime loop error; continuing")
                connections.close_all()
                time.sleep(1)
            finally:
                if self.queue.empty() and time.monotonic() - last_busy > IDLE_CLOSE_SECONDS:
                    # Idle: hold no database connection between bursts (a restart of PostgreSQL, or a
                    # test database being dropped, must not find this thread holding one). Not after
                    # every burst: opening a connection was ~10 ms on the path of every alert.
                    connections.close_all()

    def stop(self) -> None:
        self.stopping.set()


# Close the writer thread's database connection after this long without alerts.
IDLE_CLOSE_SECONDS = 30.0


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
