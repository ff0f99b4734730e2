"""The rule evaluation engine: pure Python, no database, one call per reading.

Per channel it keeps the state of each condition (high-high, high, low, low-low, rate of change,
sensor fault, stale data) and reports only *changes*: a condition becoming active (after its
on-delay) or going away (after falling back past the deadband and its off-delay). Limits come
from the rule, overridden by the first matching threshold schedule (month range, time of day,
operating mode). The effective limits are cached together with the instant of the next schedule
boundary, so a reading never pays for schedule matching except at a boundary.

A reading above the channel's range on a fail-safe-high channel (gas: ``RuleConfig.over_range_high``
set) is the highest alarm at once: every high limit becomes active with no on-delay, besides the
sensor fault. A saturated gas detector is the leak, not a broken sensor.

Times are epoch seconds (floats); schedules are matched in local time (``tz``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

HIGH_HIGH = "high_high"
HIGH = "high"
LOW = "low"
LOW_LOW = "low_low"
RATE = "rate"
RATE_CLEAR_FRACTION = 0.8
STALE = "stale"
SENSOR_FAULT = "sensor_fault"
DEVICE_OFFLINE = "device_offline"

LIMIT_KINDS = (HIGH_HIGH, HIGH, LOW, LOW_LOW)
_IS_HIGH = {HIGH_HIGH: True, HIGH: True, LOW: False, LOW_LOW: False}
# Bad-quality reasons that mean "the link is down", not "the sensor is broken": those are left to
# the stale-data and device-offline conditions.
LINK_QUALITIES = frozenset({"timeout", "disconnected"})
OUT_OF_RANGE = "out_of_range"  # the quality of a reading outside its range (it keeps its value)
# Change.detail of a high limit raised by a reading above the range (the message says 超量程).
OVER_RANGE_DETAIL = "over_range"
RATE_SAMPLES_PER_WINDOW = 20


@dataclass(frozen=True, slots=True)
class Limits:
    high_high: float | None = None
    high: float | None = None
    low: float | None = None
    low_low: float | None = None

    def get(self, kind: str) -> float | None:
        return getattr(self, kind)

    def merged(self, override: Limits) -> Limits:
        return Limits(
            *(
                getattr(override, k) if getattr(override, k) is not None else getattr(self, k)
                for k in ("high_high", "high", "low", "low_low")
            )
        )


@dataclass(frozen=True, slots=True)
class Schedule:
    """Overrides limits while it applies. Ranges are inclusive for months, [start, end) for times;
    both may wrap (months 11..2 = Nov-Feb, 22:00..06:00 = overnight). Empty fields match always."""

    limits: Limits
    month_from: int | None = None
    month_to: int | None = None
    time_from: time | None = None
    time_to: time | None = None
    mode: str = ""
    name: str = ""

    def matches(self, local: datetime, mode: str) -> bool:
        if self.mode and self.mode != mode:
            return False
        if self.month_from is not None and self.month_to is not None:
            m = local.month
            if self.month_from <= self.month_to:
                if not self.month_from <= m <= self.month_to:
                    return False
            elif not (m >= self.month_from or m <= self.month_to):
                return False
        if self.time_from is not None and self.time_to is not None and self.time_from != self.time_to:
            t = local.time().replace(tzinfo=None)
            if self.time_from < self.time_to:
                if not self.time_from <= t < self.time_to:
                    return False
            elif not (t >= self.time_from or t < self.time_to):
                return False
        return True


@dataclass(frozen=True, slots=True)
class RuleConfig:
    limits: Limits = field(default_factory=Limits)
    deadband: float = 0.0
    on_delay: float = 0.0  # seconds a condition must hold before it raises
    off_delay: float = 0.0  # seconds a condition must be gone before it clears
    rate_limit: float | None = None  # absolute change per minute
    # The rate is measured over this many seconds, not between neighbouring samples: at 10 Hz a
    # neighbour-to-neighbour rate multiplies sensor noise by 600 and every channel chatters.
    rate_window: float = 10.0
    stale_after: float | None = None  # seconds without a good reading
    fault_enabled: bool = True
    schedules: tuple[Schedule, ...] = ()
    # The top of the channel's range when a reading above it is the highest alarm (fail-safe high,
    # devices.choices.over_range_is_alarm); None when it is a sensor fault only.
    over_range_high: float | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One condition change: ``active`` True when it raises, False when it goes away."""

    key: int  # channel id (device id for device conditions)
    kind: str
    active: bool
    at: float
    value: float | None = None
    limit: float | None = None
    detail: str = ""


class _Cond:
    __slots__ = ("active", "pending_since", "clearing_since")

    def __init__(self):
        self.active = False
        self.pending_since: float | None = None
        self.clearing_since: float | None = None


class ChannelState:
    __slots__ = (
        "config",
        "conds",
        "last_value",
        "last_t",
        "last_good_t",
        "first_seen_t",
        "limits",
        "limits_from",
        "limits_until",
        "limits_mode",
        "checks",
        "rate_alpha",
        "rate_dt",
        "rate_next",
        "rate_samples",
        "rate_smooth",
        "rate_t",
        "rate_since",
    )

    def __init__(self, config: RuleConfig, now: float | None = None):
        self.config = config
        self.conds: dict[str, _Cond] = {}
        self.last_value: float | None = None
        self.last_t: float | None = None
        self.last_good_t: float | None = None
        self.first_seen_t: float | None = None  # stale checks only for channels this process hears
        self.limits: Limits | None = None
        self.limits_from = math.inf
        self.limits_until = -math.inf
        self.limits_mode: str | None = None
        self.checks: tuple = ()  # (kind, limit or None, is_high) for LIMIT_KINDS under ``limits``
        self.rate_alpha = 0.0  # smoothing factor for the last sample interval ``rate_dt``
        self.rate_dt = -1.0
        self.rate_next = 0.0  # no reference sample before this time (RATE_SAMPLES_PER_WINDOW)
        self.rate_samples: deque[tuple[float, float]] = deque()
        self.rate_smooth: float | None = None
        self.rate_t = 0.0
        self.rate_since = 0.0

    def cond(self, kind: str) -> _Cond:
        c = self.conds.get(kind)
        if c is None:
            c = self.conds[kind] = _Cond()
        return c


def effective_limits(config: RuleConfig, t: float, mode: str, tz: tzinfo) -> tuple[Limits, float, float]:
    """Limits in force at ``t`` and the window [from, until) during which they stay in force."""
    if not config.schedules:
        return config.limits, -math.inf, math.inf
    local = datetime.fromtimestamp(t, tz)
    limits = config.limits
    for schedule in config.schedules:
        if schedule.matches(local, mode):
            limits = limits.merged(schedule.limits)
            break
    # Every boundary any schedule could switch at: its time edges today and tomorrow, and local
    # midnights (month ranges switch at a midnight).
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    edges: list[float] = []
    for offset in (-1, 0, 1, 2):
        base = day + timedelta(days=offset)
        edges.append(base.replace(tzinfo=tz).timestamp())
        for schedule in config.schedules:
            for edge in (schedule.time_from, schedule.time_to):
                if edge is not None:
                    edges.append(
                        datetime.combine(base.date(), edge.replace(tzinfo=None)).replace(tzinfo=tz).timestamp()
                    )
    start = max((e for e in edges if e <= t), default=-math.inf)
    until = min((e for e in edges if e > t), default=math.inf)
    return limits, start, until


class Engine:
    """Evaluates readings for many channels. Not thread-safe: one engine per evaluating thread."""

    def __init__(self, tz: tzinfo | str = "Asia/Shanghai"):
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        self.channels: dict[int, ChannelState] = {}
        self.devices_offline: dict[int, bool] = {}
        self.modes: dict[int, str] = {}  # channel id -> operating mode (default "")

    # --- configuration -------------------------------------------------------------------------
    def configure(self, channel_id: int, config: RuleConfig, now: float | None = None) -> None:
        """Install or replace a channel's rule; condition states survive a change of limits."""
        state = self.channels.get(channel_id)
        if state is None:
            self.channels[channel_id] = ChannelState(config, now)
        else:
            state.config = config
            state.limits_until = -math.inf  # recompute limits on the next reading
            state.rate_dt = -1.0  # and the smoothing factor (the window may have changed)

    def remove(self, channel_id: int) -> None:
        self.channels.pop(channel_id, None)

    def set_mode(self, channel_id: int, mode: str) -> None:
        self.modes[channel_id] = mode

    def active_conditions(self, channel_id: int) -> set[str]:
        state = self.channels.get(channel_id)
        if state is None:
            return set()
        return {k for k, c in state.conds.items() if c.active}

    def restore(self, channel_id: int, kinds) -> None:
        """Mark conditions active (at start-up, from alerts still open in the database)."""
        state = self.channels.get(channel_id)
        if state is None:
            return
        for kind in kinds:
            state.cond(kind).active = True

    def sync_active(self, channel_id: int, kinds: set[str]) -> None:
        """Make the channel's active conditions exactly ``kinds`` (another process may have raised or
        cleared them); pending delays are kept."""
        state = self.channels.get(channel_id)
        if state is None:
            return
        for kind in kinds:
            state.cond(kind).active = True
        for kind, cond in state.conds.items():
            if cond.active and kind not in kinds:
                cond.active = False
                cond.clearing_since = None

    # --- evaluation ----------------------------------------------------------------------------
    def evaluate(self, channel_id: int, value: float | None, good: bool, t: float, quality: str = "good", out=None):
        """Feed one reading; returns a (usually empty) list of Changes. With ``out`` the changes are
        appended to that list (and it is returned): a batch needs no list per reading."""
        state = self.channels.get(channel_id)
        if state is None:
            return () if out is None else out
        config = state.config
        changes: list[Change] = [] if out is None else out
        if state.first_seen_t is None:
            state.first_seen_t = t
        if not good or value is None or value != value or value in (math.inf, -math.inf):
            if quality == OUT_OF_RANGE and config.over_range_high is not None and value is not None:
                if value > config.over_range_high:  # (False for NaN)
                    self._over_range(state, channel_id, value, t, changes)
            if config.fault_enabled and quality not in LINK_QUALITIES:
                self._step(state, channel_id, SENSOR_FAULT, True, t, value, None, changes, quality)
            return changes
        if config.fault_enabled:
            fault = state.conds.get(SENSOR_FAULT)
            if fault is not None and (fault.active or fault.pending_since is not None):
                self._step(state, channel_id, SENSOR_FAULT, False, t, value, None, changes, "")
        state.last_good_t = t
        stale = state.conds.get(STALE)
        if stale is not None and stale.active:
            stale.active = False
            changes.append(Change(channel_id, STALE, False, t, value))

        mode = self.modes.get(channel_id, "")
        if not (state.limits_from <= t < state.limits_until) or mode != state.limits_mode:
            self._refresh_limits(state, t, mode)
        deadband = config.deadband
        conds = state.conds
        for kind, limit, is_high in state.checks:
            cond = conds.get(kind)
            if limit is None:
                if cond is not None and cond.active:  # a schedule removed this limit
                    self._step(state, channel_id, kind, False, t, value, None, changes, "")
                continue
            active = cond is not None and cond.active
            if is_high:
                condition = value >= (limit - deadband if active else limit)
            else:
                condition = value <= (limit + deadband if active else limit)
            if condition or cond is not None:
                self._step(state, channel_id, kind, condition, t, value, limit, changes, "")
        if config.rate_limit is not None:
            samples = state.rate_samples
            window = config.rate_window
            tau = window / 4.0
            # The rate is taken from a smoothed value (time constant a quarter of the window), so
            # the noise of single samples neither raises nor flaps the condition.
            if state.rate_smooth is None:
                state.rate_smooth, state.rate_t, state.rate_since = value, t, t
            elif t > state.rate_t:
                dt = t - state.rate_t
                if dt != state.rate_dt:  # readings come at a steady period: exp once per interval length
                    state.rate_dt, state.rate_alpha = dt, 1.0 - math.exp(-dt / tau)
                state.rate_smooth += state.rate_alpha * (value - state.rate_smooth)
                state.rate_t = t
            smooth = state.rate_smooth
            while samples and t - samples[0][0] > window:
                samples.popleft()
            # Judge only over at least half a window, so start-up noise is not amplified either.
            if samples and t - samples[0][0] >= window / 2:
                first_t, first_value = samples[0]
                rate = abs(smooth - first_value) * 60.0 / (t - first_t)
                rate_cond = conds.get(RATE)
                # Hysteresis: once raised, the rate must fall below 80 % of the limit to clear.
                limit = config.rate_limit * (RATE_CLEAR_FRACTION if rate_cond and rate_cond.active else 1.0)
                if rate > limit or rate_cond is not None:
                    self._step(state, channel_id, RATE, rate > limit, t, value, config.rate_limit, changes, "")
            if t - state.rate_since >= tau and t >= state.rate_next:  # settled: a fair reference
                samples.append((t, smooth))
                # A reference every window/20 is plenty for a rate over the window, and at 10 Hz
                # keeps 20 samples per channel instead of 100 (10,000 channels: ~20 MB, not ~100).
                state.rate_next = t + window / RATE_SAMPLES_PER_WINDOW
        state.last_value = value
        state.last_t = t
        return changes

    def _refresh_limits(self, state: ChannelState, t: float, mode: str) -> None:
        state.limits, state.limits_from, state.limits_until = effective_limits(state.config, t, mode, self.tz)
        state.limits_mode = mode
        state.checks = tuple((kind, getattr(state.limits, kind), _IS_HIGH[kind]) for kind in LIMIT_KINDS)

    def _over_range(self, state: ChannelState, key: int, value: float, t: float, changes) -> None:
        """A reading above the range of a fail-safe-high channel: every high limit in force becomes
        active now, whatever its on-delay (a pending one included), and stays so while it lasts.
        Once back in range, the limits clear as usual (deadband, off-delay)."""
        mode = self.modes.get(key, "")
        if not (state.limits_from <= t < state.limits_until) or mode != state.limits_mode:
            self._refresh_limits(state, t, mode)
        for kind, limit, is_high in state.checks:
            if not is_high or limit is None:
                continue
            cond = state.cond(kind)
            cond.pending_since = None
            cond.clearing_since = None
            if not cond.active:
                cond.active = True
                changes.append(Change(key, kind, True, t, value, limit, OVER_RANGE_DETAIL))

    @staticmethod
    def _step(state, key, kind, condition, t, value, limit, changes, detail) -> None:
        cond = state.conds.get(kind)
        if cond is None:
            cond = state.conds[kind] = _Cond()
        config = state.config
        if condition:
            cond.clearing_since = None
            if cond.active:
                return
            if cond.pending_since is None:
                cond.pending_since = t
            if t - cond.pending_since >= config.on_delay:
                cond.active = True
                cond.pending_since = None
                changes.append(Change(key, kind, True, t, value, limit, detail))
        else:
            cond.pending_since = None
            if not cond.active:
                return
            if cond.clearing_since is None:
                cond.clearing_since = t
            if t - cond.clearing_since >= config.off_delay:
                cond.active = False
                cond.clearing_since = None
                changes.append(Change(key, kind, False, t, value, limit, detail))

    def check_stale(self, now: float) -> list[Change]:
        """Raise STALE for channels without a good reading for ``stale_after`` seconds."""
        changes: list[Change] = []
        for channel_id, state in self.channels.items():
            after = state.config.stale_after
            if after is None:
                continue
            since = state.last_good_t if state.last_good_t is not None else state.first_seen_t
            if since is None:
                continue  # never heard from in this process: another process evaluates it
            cond = state.cond(STALE)
            if not cond.active and now - since >= after:
                cond.active = True
                changes.append(Change(channel_id, STALE, True, now, state.last_value, after))
        return changes

    def device_status(self, device_id: int, online: bool, t: float, reason: str = "") -> list[Change]:
        was_offline = self.devices_offline.get(device_id, False)
        if was_offline == (not online):
            return []
        self.devices_offline[device_id] = not online
        return [Change(device_id, DEVICE_OFFLINE, not online, t, detail=reason)]
