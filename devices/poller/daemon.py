"""The polling daemon: one asyncio task per device (gateway or bus), one connection each.

Faults are data: an exception response, a timeout or garbage (any reply that does not answer its
request: function code, unit, transaction, byte or value count, see ``devices.poller.replies``)
becomes a bad-quality reading and the loop goes on. A merged block refused with an exception is
re-read in pieces once and the pieces are kept, so one bad register does not poison its block; an
RTU bus waits for a silent line (and flushes it after a timeout) before each request. A unit that
fails ``demote_after`` times in a row is taken off scan and probed every ``probe_interval`` so it
never slows the rest of its bus; a lost connection is retried with capped exponential backoff and
jitter. Configuration is reloaded every ``reload_interval`` (by
``updated_at``), so changes apply without a restart. Every reading goes to
``devices.hooks.publish_readings`` as it arrives, then to the batched writer: the good responses
of the last few milliseconds (``batch_window``) together, decoded and folded by compiled loops
over the batch (``devices.poller.folding``), anything else (timeouts, exceptions, coils) one event per channel.

All ORM work runs on one database thread (``_db``), never on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import math
import random
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.framer import FramerType

from devices.choices import DeviceStatus, Protocol, Quality, RegisterType
from devices.hooks import (
    DeviceStatusEvent,
    LocalCoilWrite,
    PollerEvent,
    ReadingEvent,
    Readings,
    publish_poller_event,
    publish_readings,
    publish_status,
    register_coil_writer,
    set_process_name,
    unregister_coil_writer,
)
from devices.poller import replies
from devices.poller.decode import Block, ChannelSpec, decode_events, plan_blocks, split_block
from devices.poller.replies import EXCEPTION, echo_fault, expected_size, reply_fault
from devices.poller.snapshot import ConfigSnapshot, snapshot_path
from devices.poller.storage import ReadingWriter

logger = logging.getLogger("devices.poller")


@dataclass(frozen=True)
class DeviceSpec:
    id: int
    name: str
    enterprise_id: int
    protocol: str
    host: str
    port: int
    serial_port: str
    baudrate: int
    parity: str
    stopbits: int
    bytesize: int
    period_s: float
    timeout_s: float
    retries: int
    enabled: bool
    maintenance: bool
    status: str
    channels: tuple[ChannelSpec, ...]
    signature: tuple

    @property
    def pollable(self) -> bool:
        return self.enabled and not self.maintenance and bool(self.channels) and self.protocol != Protocol.HTTP

    @property
    def idle_status(self) -> str:
        if not self.enabled:
            return DeviceStatus.DISABLED
        if self.maintenance:
            return DeviceStatus.MAINTENANCE
        return DeviceStatus.OFFLINE


@dataclass
class PollerConfig:
    name: str = "poller"
    shard: tuple[int, int] = (0, 1)
    reload_interval: float = 5.0
    demote_after: int = 3
    probe_interval: float = 10.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    stats_interval: float = 5.0
    command_interval: float = 0.3
    coil_write_timeout: float = 30.0
    live_push_interval: float = 1.0
    # Good block reads are decoded and folded together, in batches of what arrives in this window
    # (at 10,000 reads a second, ~100 reads): the cost per read of the vectorised fold falls with
    # the batch (measured in bench/poll.py: 5 ms cost ~1.4x the bare loop's CPU per read, 10 ms
    # ~1.25x), and the readings reach the alert engine at most this much later.
    batch_window: float = 0.010
    max_gap: int = 8
    # After a timeout on an RTU bus, the line stays silent this long (from its last byte either
    # way) before the next request: slaves that frame by length and timeouts (libmodbus: 500 ms
    # response and byte timeouts) read what follows a request to an absent unit as that unit's
    # reply, and lose sync on it, until the line has been quiet that long.
    rtu_recovery: float = 0.5
    record_lateness: bool = False
    # The daemon's own process (``run_forever``) only: a cheaper event loop and a quieter GC.
    event_loop: str = "asyncio"  # or "uvloop" (falls back to asyncio when it is not installed)
    gc_tuning: bool = False
    # Keep the last configuration loaded on local disk and start on it while the database is down.
    snapshot: bool = False

    @classmethod
    def from_settings(cls, **overrides) -> PollerConfig:
        values = {
            "reload_interval": settings.DEVICES_RELOAD_SECONDS,
            "demote_after": settings.DEVICES_DEMOTE_AFTER,
            "probe_interval": settings.DEVICES_PROBE_SECONDS,
            "backoff_base": settings.DEVICES_BACKOFF_BASE_MS / 1000,
            "backoff_cap": settings.DEVICES_BACKOFF_CAP_SECONDS,
            "stats_interval": settings.DEVICES_STATS_SECONDS,
            "command_interval": settings.DEVICES_COMMAND_POLL_MS / 1000,
            "coil_write_timeout": settings.DEVICES_COIL_WRITE_TIMEOUT_SECONDS,
            "live_push_interval": settings.DEVICES_LIVE_PUSH_MS / 1000,
            "batch_window": settings.DEVICES_BATCH_MS / 1000,
            "max_gap": settings.DEVICES_MAX_REGISTER_GAP,
            "rtu_recovery": settings.DEVICES_RTU_RECOVERY_MS / 1000,
            "event_loop": "uvloop",
            "gc_tuning": True,
            "snapshot": True,
        }
        values.update(overrides)
        return cls(**values)


class Backoff:
    """Capped exponential backoff with jitter (half fixed, half random) so a fleet does not stampede."""

    def __init__(self, base: float, cap: float, rng: random.Random | None = None):
        self.base, self.cap, self.attempt = base, cap, 0
        self.rng = rng or random.Random()

    def next(self) -> float:
        delay = min(self.cap, self.base * (2**self.attempt))
        self.attempt = min(self.attempt + 1, 30)
        return delay / 2 + self.rng.uniform(0, delay / 2)

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class UnitState:
    unit_id: int
    blocks: list[Block]
    failures: int = 0
    demoted: bool = False
    next_probe: float = 0.0


@dataclass
class CoilJob:
    command_id: int | None  # None for a local write (``local``): no command row (yet)
    unit_id: int
    address: int
    value: bool
    local: LocalCoilWrite | None = None


@dataclass
class DeviceStats:
    cycles: int = 0
    reads: int = 0
    overruns: int = 0
    last_seen: float | None = None  # epoch seconds of the last response
    window_start: float = field(default_factory=time.monotonic)
    window_cycles: int = 0
    rate_hz: float | None = None
    reported_overruns: int = 0


_NO_EVENTS: list = []  # (never appended to: a cycle with bad readings makes its own list)

_READERS = {
    RegisterType.HOLDING: "read_holding_registers",
    RegisterType.INPUT: "read_input_registers",
    RegisterType.COIL: "read_coils",
    RegisterType.DISCRETE: "read_discrete_inputs",
}


def make_client(spec: DeviceSpec):
    """One pymodbus client per device; pymodbus' own reconnect is off (we back off ourselves), and
    so are its retries on a serial bus (``SerialLine`` retries after the line is quiet)."""
    if spec.protocol == Protocol.RTU:
        client = AsyncModbusSerialClient(
            spec.serial_port,
            framer=FramerType.RTU,
            baudrate=spec.baudrate,
            bytesize=spec.bytesize,
            parity=spec.parity,
            stopbits=spec.stopbits,
            timeout=spec.timeout_s,
            retries=0,
            reconnect_delay=0,
        )
    else:
        client = AsyncModbusTcpClient(
            spec.host, port=spec.port, timeout=spec.timeout_s, retries=spec.retries, reconnect_delay=0
        )
    # A silent unit must not make pymodbus drop the connection the healthy units share.
    client.set_max_no_responses(1_000_000_000)
    replies.install(client)  # every reply decoded strictly, none raises inside the transport
    return client


# Exception codes of a merged block read that may be one register's fault (illegal data address,
# illegal data value, and the "device failure" some devices answer for an unmapped register): the
# block is split and re-read (see DeviceWorker._split_block).
SPLIT_ON_EXCEPTION = frozenset({2, 3, 4})


def silent_interval(baudrate: int, bytesize: int = 8, parity: str = "N", stopbits: int = 1) -> float:
    """The RTU inter-frame silence, 3.5 character times (fixed at 1.75 ms above 19,200 baud, as
    the Modbus serial line specification says), in seconds."""
    if baudrate > 19200 or baudrate <= 0:
        return 0.00175
    bits = 1 + bytesize + (0 if parity == "N" else 1) + stopbits
    return 3.5 * bits / baudrate


class SerialLine:
    """The line discipline of one RTU bus, which pymodbus' async serial client leaves out.

    Every request waits until the line has been silent for 3.5 characters. After a timeout it also
    waits until no byte has crossed the line (a late reply still on the wire, our own request) for
    ``recovery`` (at least 3.5 characters), then flushes the input, so that what follows is not
    read as the next reply and slaves that frame by timeouts are back in step. A request that
    comes right after another unit's timeout gets one attempt more: some slaves take the frame
    that follows a request to another unit for that unit's reply and ignore it, so its failure is
    not its unit's. The device's retries are made here too, each on a quiet line.
    """

    def __init__(self, client, spec: DeviceSpec, recovery: float = 0.0):
        self.client = client
        self.gap = silent_interval(spec.baudrate, spec.bytesize, spec.parity, spec.stopbits)
        self.recovery = max(recovery, self.gap)
        self.attempts = spec.retries + 1
        self.last_rx = 0.0  # event-loop time of the last byte received
        self.last_tx = 0.0  # ... of the last request sent
        self.timeout_at = 0.0  # ... of the last timeout
        self.dirty = False  # a timeout since the last request: recover and flush before the next
        self.timed_out_unit: int | None = None  # the unit of the last timeout, until a reply
        self.flushes = 0
        self._time = asyncio.get_running_loop().time
        ctx = client.ctx
        received = ctx.data_received  # the transport calls its protocol's (ctx) data_received

        def data_received(data: bytes) -> None:
            self.last_rx = self._time()
            received(data)

        ctx.data_received = data_received

    async def settle(self) -> None:
        time_ = self._time
        while True:
            until = self.last_rx + self.gap
            if self.dirty:
                until = max(until, self.timeout_at + self.gap, max(self.last_rx, self.last_tx) + self.recovery)
            wait = until - time_()
            if wait <= 0:
                break
            await asyncio.sleep(wait)  # (bytes arriving meanwhile move ``until`` on)
        if self.dirty:
            self.dirty = False
            self.flush()

    def flush(self) -> None:
        self.flushes += 1
        ctx = self.client.ctx
        ctx.recv_buffer = b""
        serial = getattr(ctx.transport, "sync_serial", None)
        if serial is not None:
            try:
                serial.reset_input_buffer()
            except Exception:  # a port that cannot flush: what we read was dropped all the same
                logger.debug("flushing %s failed", self.client, exc_info=True)

    def timed_out(self, unit_id: int) -> None:
        self.dirty = True
        self.timed_out_unit = unit_id
        self.timeout_at = self._time()

    async def request(self, fn, *args, device_id: int, **kwargs):
        """``fn(*args, device_id=..., **kwargs)`` (a bound client method) on a quiet line."""
        attempts = self.attempts
        if self.timed_out_unit is not None and self.timed_out_unit != device_id:
            attempts += 1
        for attempt in range(attempts):
            await self.settle()
            self.last_tx = self._time()
            try:
                reply = await fn(*args, device_id=device_id, **kwargs)
            except ModbusIOException:
                self.timed_out(device_id)
                if attempt + 1 >= attempts:
                    raise
            else:
                self.timed_out_unit = None
                return reply
        raise AssertionError("unreachable")


class DeviceWorker:
    def __init__(self, spec: DeviceSpec, poller: Poller):
        self.spec = spec
        self.poller = poller
        self.config = poller.config
        self.client = None
        self.stats = DeviceStats()
        self.jobs: deque[CoilJob] = deque()
        self.units: dict[int, UnitState] = {}
        blocks = plan_blocks(list(spec.channels), self.config.max_gap)
        for block in blocks:
            self.units.setdefault(block.unit_id, UnitState(block.unit_id, [])).blocks.append(block)
        self.backoff = Backoff(self.config.backoff_base, self.config.backoff_cap)
        self.task: asyncio.Task | None = None
        self.recent: list[list[ReadingEvent]] = []  # each cycle's events since the last live push
        self._offline_marked = False
        self._units_changed = True
        self._relayout = False  # a block was split: the poll loop looks its pieces up again
        self._garbage_logged = -math.inf  # event-loop time of the last garbage reply logged
        # id(block) -> event-loop time before which a refused block is not split again: no piece of
        # it answered last time (the device refuses everything, e.g. busy or failing), and
        # re-reading every piece every cycle would only load the bus.
        self._split_after: dict[int, float] = {}
        self.line: SerialLine | None = None  # an RTU bus's line discipline, per connection
        self.stopping = False
        self.nap: asyncio.Future | None = None  # the sleep between cycles, see _idle_until

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.connected

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run(), name=f"device-{self.spec.id}")

    async def stop(self) -> None:
        self.stopping = True
        if self.task is not None:
            # Python 3.11's wait_for (inside pymodbus) can swallow a cancel that races with a
            # response, so cancel until the task is really done; the flag ends it at the next cycle.
            for _ in range(100):
                if self.task.done():
                    break
                self.task.cancel()
                await asyncio.wait({self.task}, timeout=0.05)
            if self.task.done() and not self.task.cancelled() and self.task.exception() is not None:
                logger.debug("worker %s ended with %r", self.spec.name, self.task.exception())
        self._close()

    def _close(self) -> None:
        if self.client is not None:
            try:
                self.client.close()
            except Exception:
                logger.debug("closing %s failed", self.spec.name, exc_info=True)
            self.client = None

    async def run(self) -> None:
        spec = self.spec
        while not self.stopping:
            self.client = make_client(spec)
            rtu = spec.protocol == Protocol.RTU
            self.line = SerialLine(self.client, spec, self.config.rtu_recovery) if rtu else None
            try:
                ok = await self.client.connect()
            except Exception as exc:  # a bad serial port name raises instead of returning False
                ok = False
                logger.debug("connect to %s raised %s", spec.name, exc)
            if not ok:
                self._close()
                self._went_offline(f"无法连接 {self._endpoint()}")
                await self._fail_jobs("设备离线")
                await asyncio.sleep(self.backoff.next())
                continue
            logger.info("device %s (%s) connected", spec.name, self._endpoint())
            self.backoff.reset()
            self._offline_marked = False
            # A task of its own: every read suspends and resumes the poll loop's coroutine, and one
            # level of awaiting fewer makes each of those cheaper (stop() cancels it with run()).
            reason = await asyncio.get_running_loop().create_task(self._poll_loop(), name=f"poll-{spec.id}")
            self._close()
            if reason is not None:
                self._went_offline(reason)
            # else every unit is silent behind a live connection: stay "demoted", reconnect quietly
            await asyncio.sleep(self.backoff.next())

    def _endpoint(self) -> str:
        s = self.spec
        return f"{s.host}:{s.port}" if s.protocol == Protocol.TCP else s.serial_port

    def _went_offline(self, reason: str) -> None:
        if self._offline_marked:
            return
        self._offline_marked = True
        logger.warning("device %s offline: %s", self.spec.name, reason)
        self.poller.set_status(self.spec, DeviceStatus.OFFLINE, reason)
        now = datetime.now(UTC)
        events = [
            ReadingEvent(ch.id, self.spec.id, None, False, Quality.DISCONNECTED.value, now) for ch in self.spec.channels
        ]
        self.poller.emit(events)

    async def _fail_jobs(self, reason: str) -> None:
        while self.jobs:
            job = self.jobs.popleft()
            self.poller.coil_write_finished(job, ok=False, readback=None, error=reason)

    def _reader(self, register_type: str):
        """The client's read method for a register type (on a serial bus, through its line)."""
        read = getattr(self.client, _READERS[register_type])
        if self.line is None:
            return read
        return functools.partial(self.line.request, read)

    def _layout(self) -> list[tuple[UnitState, list[tuple]]]:
        """Per unit, per block: (block, bound reader, the writer's vector plan or None (decoded
        here, one event per channel), function code, number of values of a good reply), looked
        up once per connection (and after a block is split) rather than once per read."""
        writer = self.poller.writer
        return [
            (
                unit,
                [
                    (
                        block,
                        self._reader(block.register_type),
                        writer.vector_plan(block) if writer is not None else None,
                        replies.FUNCTION_CODES[block.register_type],
                        expected_size(block.register_type, block.count),
                    )
                    for block in unit.blocks
                ],
            )
            for unit in self.units.values()
        ]

    async def _poll_loop(self) -> str | None:
        """Poll until the connection is lost (returns why) or every unit is silent (returns None)."""
        spec, config, poller = self.spec, self.config, self.poller
        loop = asyncio.get_running_loop()
        period = spec.period_s
        # Spread devices over the period (golden-ratio phase by id) so they do not all fire at once.
        next_t = loop.time() + ((spec.id * 0.6180339887) % 1.0) * period
        lost = await self._idle_until(next_t, loop.time())
        if lost:
            return lost
        last_overrun_log = 0.0
        live = config.live_push_interval > 0
        device_id = spec.id
        ctx = self.client.ctx  # its request_transaction_id: the transaction a reply must answer
        self._relayout = False
        units = self._layout()
        jobs = self.jobs
        stats = self.stats
        # Good responses of blocks with a vector plan join the poller's batch (decoded, folded and
        # handed to the reading hook together); everything else becomes events of this cycle.
        add_read = poller.add_read
        pending_append = poller.pending.append  # (the poller empties this list, never replaces it)
        time_time = time.time
        check = reply_fault
        self._units_changed = True
        while not self.stopping:
            if jobs:
                lost = await self._run_jobs()
                if lost:
                    return lost
            started = loop.time()
            if config.record_lateness:
                poller.lateness.append(started - next_t)
            events: list[ReadingEvent] | None = None  # this cycle's readings outside the batch
            bad: list[ReadingEvent] = _NO_EVENTS  # its bad readings (a new list when there are some)
            lost = None
            any_response = False
            probed_and_failed = False
            for unit, blocks in units:
                if unit.demoted and started < unit.next_probe:
                    continue
                unit_failed = False
                for block, reader, plan, fc, size in blocks:
                    try:
                        result = await reader(block.start, count=block.count, device_id=block.unit_id)
                    except ConnectionException as exc:
                        lost = f"连接中断: {exc}"
                        break
                    except ModbusIOException:
                        unit_failed = True
                        now = datetime.now(UTC)
                        bad = bad or []
                        bad.extend(
                            ReadingEvent(ch.id, spec.id, None, False, Quality.TIMEOUT.value, now)
                            for ch in block.channels
                        )
                        break  # the rest of this unit would time out too
                    except Exception as exc:  # garbage on the wire: a bad reading, never a crash
                        logger.debug("garbage from %s unit %s: %r", spec.name, unit.unit_id, exc)
                        now = datetime.now(UTC)
                        bad = bad or []
                        bad.extend(
                            ReadingEvent(ch.id, spec.id, None, False, Quality.GARBAGE.value, now)
                            for ch in block.channels
                        )
                        continue
                    stats.reads += 1
                    t = time_time()  # receive time; a datetime only where events are made here
                    any_response = True
                    data = result.bits if block.bits else result.registers
                    fault = check(result, data, fc, block.unit_id, size, ctx.request_transaction_id)
                    if fault is not None:  # not an answer to this request: never a value
                        bad = bad or []
                        if fault == EXCEPTION:
                            code = result.exception_code
                            logger.debug("%s unit %s exception code %s", spec.name, unit.unit_id, code)
                            if (
                                code in SPLIT_ON_EXCEPTION
                                and len(block.channels) > 1
                                and started >= self._split_after.get(id(block), 0.0)
                            ):
                                split_events, lost, timed_out = await self._split_block(unit, block, code)
                                bad.extend(split_events)
                                if lost:
                                    break
                                if timed_out:
                                    unit_failed = True
                                    break
                                continue
                        elif loop.time() - self._garbage_logged > 60 or logger.isEnabledFor(logging.DEBUG):
                            self._garbage_logged = loop.time()  # one line a minute: a device may babble
                            logger.warning(
                                "garbage reply from %s: %s",
                                spec.name,
                                replies.describe(result, fc, block.unit_id, size, ctx.request_transaction_id),
                            )
                        now = datetime.fromtimestamp(t, UTC)
                        bad.extend(ReadingEvent(ch.id, spec.id, None, False, fault, now) for ch in block.channels)
                        continue
                    if plan is not None:
                        if block.batch == poller.batch or poller.flush_handle is None:
                            add_read(plan, data, device_id, t, block)  # a new batch, or this block again
                        else:
                            block.batch = poller.batch
                            pending_append((plan, data, device_id, t, block))
                    else:
                        at = datetime.fromtimestamp(t, UTC)
                        events = (events or []) + decode_events(block, data, device_id, at, ReadingEvent)
                if lost:
                    break
                if unit_failed or unit.failures or unit.demoted:  # else nothing changes
                    self._account_unit(unit, unit_failed, started)
                    if unit_failed and unit.demoted:
                        probed_and_failed = True
            if bad:
                events = (events or []) + bad
            if events:
                poller.emit(events)
                if live:
                    self.recent.append(events)
            if any_response:
                stats.last_seen = t
            if lost:
                return lost
            if self._relayout:  # a block was split: read its pieces from the next cycle on
                self._relayout = False
                units = self._layout()
            stats.cycles += 1
            if self._units_changed:
                self._units_changed = False
                self._update_status()
            if probed_and_failed and all(u.demoted for u in self.units.values()):
                return None
            next_t += period
            now_m = loop.time()
            if now_m > next_t:
                self.stats.overruns += 1
                if now_m - last_overrun_log > 60:  # at most one log line and event a minute per device
                    last_overrun_log = now_m
                    detail = f"device {spec.id} {spec.name}: cycle overran its {period * 1000:.0f} ms period by " + (
                        f"{(now_m - next_t) * 1000:.0f} ms ({self.stats.overruns} overruns so far)"
                    )
                    logger.warning("%s", detail)
                    publish_poller_event(PollerEvent("overrun", config.name, detail, datetime.now(UTC)))
                # Skip the missed slots and wait for the next one on the grid: catching up with
                # back-to-back reads would feed the congestion that made us late.
                next_t += period * math.ceil((now_m - next_t) / period)
            lost = await self._idle_until(next_t, now_m)
            if lost:
                return lost
        return None

    async def _split_block(self, unit: UnitState, block: Block, code: int) -> tuple[list[ReadingEvent], str, bool]:
        """A merged block was refused with exception ``code``: re-read it in pieces, once (its
        runs of channels without the merge gaps, and a refused run channel by channel), so that
        only the channels whose registers the device refuses are bad. When some piece answers, the
        pieces replace the block for the rest of this worker's life (a reconfiguration plans the
        blocks afresh). Returns the readings of the pieces, why the connection was lost (or ""),
        and whether a piece timed out (the unit's failure; the split is then not remembered)."""
        spec, ctx = self.spec, self.client.ctx
        events: list[ReadingEvent] = []
        leaves: list[Block] = []
        todo = split_block(block)
        answered = False
        refused: list[str] = []
        while todo:
            piece = todo.pop(0)
            fc = replies.FUNCTION_CODES[piece.register_type]
            size = expected_size(piece.register_type, piece.count)
            try:
                read = self._reader(piece.register_type)
                result = await read(piece.start, count=piece.count, device_id=piece.unit_id)
            except ConnectionException as exc:
                return events, f"连接中断: {exc}", False
            except ModbusIOException:
                now = datetime.now(UTC)
                for rest in [piece, *todo]:
                    events.extend(
                        ReadingEvent(ch.id, spec.id, None, False, Quality.TIMEOUT.value, now) for ch in rest.channels
                    )
                return events, "", True
            self.stats.reads += 1
            now = datetime.now(UTC)
            data = result.bits if piece.bits else result.registers
            fault = reply_fault(result, data, fc, piece.unit_id, size, ctx.request_transaction_id)
            if fault == EXCEPTION and len(piece.channels) > 1 and (smaller := split_block(piece)):
                todo[0:0] = smaller
                continue
            leaves.append(piece)
            if fault is None:
                answered = True
                events.extend(decode_events(piece, data, spec.id, now, ReadingEvent))
            else:
                refused.extend(ch.tag for ch in piece.channels)
                events.extend(ReadingEvent(ch.id, spec.id, None, False, fault, now) for ch in piece.channels)
        if not answered:
            self._split_after[id(block)] = asyncio.get_running_loop().time() + self.config.probe_interval
        else:
            leaves.sort(key=lambda b: b.start)
            i = next(k for k, b in enumerate(unit.blocks) if b is block)  # (blocks compare by value)
            unit.blocks[i : i + 1] = leaves
            self._relayout = True
            logger.warning(
                "device %s unit %s: block %s+%d refused (exception %s); read from now on as %s%s",
                spec.name,
                unit.unit_id,
                block.start,
                block.count,
                code,
                ", ".join(f"{b.start}+{b.count}" for b in leaves),
                f" (refused: {', '.join(refused)})" if refused else "",
            )
        return events, "", False

    async def _idle_until(self, deadline: float, now: float) -> str | None:
        """Sleep until the next cycle (loop time ``deadline``); a coil job that arrives meanwhile (a
        level-1 linkage) is written at once, not a cycle later. Returns why the connection was lost."""
        loop = asyncio.get_running_loop()
        while True:
            if self.jobs:
                lost = await self._run_jobs()
                if lost:
                    return lost
                now = loop.time()
            if now >= deadline:
                return None
            # What asyncio.sleep does (a future and a timer), with the future at hand for wake().
            nap = self.nap = loop.create_future()
            timer = loop.call_later(deadline - now, _wake, nap)
            try:
                woken = await nap
            finally:
                self.nap = None
            if not woken:
                # The timer: the cycle is due. (Not judged by the clock: uvloop's timers have 1 ms
                # resolution and may fire a little early; sleeping again would spin.)
                return None
            timer.cancel()
            now = loop.time()

    def wake(self) -> None:
        """A job is waiting: end the sleep between cycles now (event loop thread)."""
        if self.nap is not None and not self.nap.done():
            self.nap.set_result(True)

    def _account_unit(self, unit: UnitState, failed: bool, now: float) -> None:
        if not failed and not unit.failures and not unit.demoted:
            return  # the common case: nothing changes
        self._units_changed = True
        if failed:
            unit.failures += 1
            if unit.demoted:
                unit.next_probe = now + self.config.probe_interval
            elif unit.failures >= self.config.demote_after:
                unit.demoted = True
                unit.next_probe = now + self.config.probe_interval
                logger.warning(
                    "device %s unit %s demoted after %d failures; probing every %.0f s",
                    self.spec.name,
                    unit.unit_id,
                    unit.failures,
                    self.config.probe_interval,
                )
        else:
            if unit.demoted:
                logger.info("device %s unit %s answers again; back on scan", self.spec.name, unit.unit_id)
            unit.failures = 0
            unit.demoted = False

    def _update_status(self) -> None:
        demoted = sorted(u.unit_id for u in self.units.values() if u.demoted)
        failing = sorted(u.unit_id for u in self.units.values() if u.failures and not u.demoted)
        if demoted:
            reason = "从站 " + ",".join(map(str, demoted)) + " 无应答，已降级探测"
            self.poller.set_status(self.spec, DeviceStatus.DEMOTED, reason)
        elif failing:
            pass  # not yet demoted: keep the current status to avoid flapping
        else:
            self.poller.set_status(self.spec, DeviceStatus.ONLINE, "")

    async def _request(self, fn, *args, **kwargs):
        """One request of the client (on a serial bus, through its line)."""
        if self.line is None:
            return await fn(*args, **kwargs)
        return await self.line.request(fn, *args, **kwargs)

    async def _run_jobs(self) -> str | None:
        while self.jobs:
            job = self.jobs.popleft()
            try:
                wr = await self._request(self.client.write_coil, job.address, job.value, device_id=job.unit_id)
                if error := write_reply_error(wr, job, self.client.ctx.request_transaction_id):
                    raise RuntimeError(error)
                rb = await self._request(self.client.read_coils, job.address, count=1, device_id=job.unit_id)
                if error := readback_reply_error(rb, job, self.client.ctx.request_transaction_id):
                    raise RuntimeError(error)
                readback = bool(rb.bits[0])
                ok = readback == job.value
                self.poller.coil_write_finished(
                    job, ok=ok, readback=readback, error="" if ok else "回读值与写入值不一致"
                )
            except ConnectionException as exc:
                self.poller.coil_write_finished(job, ok=False, readback=None, error=f"连接中断: {exc}")
                return f"连接中断: {exc}"
            except ModbusIOException:
                self.poller.coil_write_finished(job, ok=False, readback=None, error="设备无应答")
            except Exception as exc:
                self.poller.coil_write_finished(job, ok=False, readback=None, error=str(exc)[:200])
        return None


def write_reply_error(reply, job: CoilJob, tid: int) -> str:
    """Why the reply to a coil write (FC05) does not confirm it ("" when its echo does)."""
    fault = echo_fault(reply, job.address, job.value, job.unit_id, tid)
    if fault is None:
        return ""
    if fault == EXCEPTION:
        return f"写入被拒绝(异常码 {getattr(reply, 'exception_code', '?')})"
    return "写入应答无效(非本次写入的回显)"


def readback_reply_error(reply, job: CoilJob, tid: int) -> str:
    """Why the reply to a coil read-back (FC01, one coil) is not one ("" when it is)."""
    fault = reply_fault(reply, reply.bits, replies.FUNCTION_CODES["coil"], job.unit_id, 8, tid)
    if fault is None:
        return ""
    if fault == EXCEPTION:
        return f"回读被拒绝(异常码 {getattr(reply, 'exception_code', '?')})"
    return "回读应答无效(报文错误)"


class Poller:
    """Owns the workers of one shard; reloads config, reports status and stats, runs coil writes."""

    def __init__(self, config: PollerConfig, writer: ReadingWriter | None = None, *, store_status: bool = True):
        self.config = config
        self.writer = writer
        self.store_status = store_status
        self.workers: dict[int, DeviceWorker] = {}
        self.specs: dict[int, DeviceSpec] = {}
        self.status: dict[int, tuple[str, str]] = {}
        self.lateness: list[float] = []
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="poller-db")
        self._tasks: list[asyncio.Task] = []
        self.reading_hook: Callable = publish_readings
        self.pending: list[tuple] = []  # the batch of good block reads, see add_read
        self.batch = 0  # its number: a block's last read joined batch ``block.batch``
        self.flush_handle: asyncio.TimerHandle | None = None  # the end of its window
        self.live_batches: list[Readings] = []  # batches since the last live push
        self.batch_stats = [0, 0]  # batches, reads in them
        self._loop: asyncio.AbstractEventLoop | None = None  # set by run(): local coil writes land there
        # Where the configuration came from: "" (not loaded yet), "database" or "snapshot" (started
        # while the database was down, see devices.poller.snapshot); the snapshot file, if any.
        self.config_source = ""
        self._saved_signatures: dict | None = None  # of the specs the snapshot holds
        self._status_lock = threading.Lock()
        self._status_backlog = 0  # status writes queued for the database thread
        self.status_dropped = 0
        self.snapshot: ConfigSnapshot | None = (
            ConfigSnapshot(snapshot_path(config.name, "poller"), "poller") if config.snapshot else None
        )

    # --- from workers (event loop thread) ---
    def emit(self, events: list[ReadingEvent]) -> None:
        """Hand readings to the hook (alerts) and to storage."""
        if self.pending and events and any(read[2] == events[0].device_id for read in self.pending):
            self.flush_reads()  # this device's batched readings come first
        self.reading_hook(events)
        if self.writer is not None:
            self.writer.submit(events)

    def add_read(self, plan, data: list, device_id: int, t: float, block) -> None:
        """A good response (received at ``t``, epoch seconds) of a block with a vector plan: into the
        batch (see ``batch_window``). The poll loop appends to ``pending`` itself in the usual case."""
        if block.batch == self.batch:  # read twice in one window: the earlier read goes first
            self.flush_reads()
        block.batch = self.batch
        self.pending.append((plan, data, device_id, t, block))
        if self.flush_handle is None:
            self.flush_handle = asyncio.get_running_loop().call_later(self.config.batch_window, self.flush_reads)

    def flush_reads(self) -> None:
        """Decode and fold the batch, and hand its readings to the hook (and the live push)."""
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush_handle = None
        pending = self.pending[:]
        self.pending.clear()
        self.batch += 1
        if not pending:
            return
        self.batch_stats[0] += 1
        self.batch_stats[1] += len(pending)
        try:
            readings = self.writer.fold_reads(pending)
        except Exception:  # never the loop's end: these readings are lost, and it says so
            logger.exception("decoding a batch of %d reads failed; the readings are dropped", len(pending))
            return
        self.reading_hook(readings)
        if self.config.live_push_interval > 0:
            self.live_batches.append(readings)

    def set_status(self, spec: DeviceSpec, status: str, reason: str) -> None:
        current = self.status.get(spec.id)
        if current is not None and current[0] == status and (status != DeviceStatus.DEMOTED or current[1] == reason):
            return
        old = current[0] if current else spec.status
        self.status[spec.id] = (status, reason)
        at = datetime.now(UTC)
        if old == status and current is None:
            # The stored status is already right (e.g. after a restart): nothing to store, but the
            # alert runtime of this process must hear it, to judge an offline alert it restored.
            publish_status(
                DeviceStatusEvent(
                    device_id=spec.id, online=status == DeviceStatus.ONLINE, reason=reason, at=at, status=status
                )
            )
            return
        publish_status(
            DeviceStatusEvent(
                device_id=spec.id, online=status == DeviceStatus.ONLINE, reason=reason, at=at, status=status
            )
        )
        if self.store_status:
            self._store_status_later(spec.id, old, status, reason, at)

    def _store_status_later(self, device_id, old, status, reason, at) -> None:
        """Queue a status change for the database thread, at most STATUS_BACKLOG of them: while the
        database hangs, flapping devices must not pile up writes without end (each device's latest
        status still reaches its row with the next stats once the database answers)."""
        with self._status_lock:
            if self._status_backlog >= STATUS_BACKLOG:
                self.status_dropped += 1
                if self.status_dropped == 1 or self.status_dropped % 1000 == 0:
                    logger.warning(
                        "poller %s: %d status changes wait for the database; %d not queued (stats store the latest)",
                        self.config.name,
                        self._status_backlog,
                        self.status_dropped,
                    )
                return
            self._status_backlog += 1
        future = self._db_submit(_store_status, device_id, old, status, reason, self.config.name, at)
        future.add_done_callback(self._status_stored)

    def _status_stored(self, _future) -> None:
        with self._status_lock:
            self._status_backlog -= 1

    def coil_write_finished(self, job: CoilJob, *, ok: bool, readback: bool | None, error: str) -> None:
        if job.local is not None:
            # Whoever asked stores the result (through its own durable queue): nothing here waits
            # for the database.
            local = job.local
            try:
                local.on_done(ok, readback, error, local.requested_at, datetime.now(UTC))
            except Exception:
                logger.exception("recording local coil write %s failed", local.uid)
            return
        self._db_submit(_finish_coil_write, job.command_id, ok, readback, error, self.config.name)

    def write_coil_locally(self, request: LocalCoilWrite) -> bool:
        """The coil writer this poller registers in ``devices.hooks``: a write for a device it polls
        goes to that device's worker at once (run before its next read); other devices are not ours."""
        worker = self.workers.get(request.device_id)
        if worker is None or self._loop is None:
            return False
        job = CoilJob(None, request.unit_id, request.address, request.value, local=request)
        logger.warning(
            "local linkage write %s: device %s unit %s coil %s := %d (%s)",
            request.uid,
            worker.spec.name,
            request.unit_id,
            request.address,
            int(request.value),
            request.reason,
        )
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._hand_over(worker, job)
        else:  # from another thread: the worker's deque belongs to the event loop
            self._loop.call_soon_threadsafe(self._hand_over, worker, job)
        return True

    @staticmethod
    def _hand_over(worker: DeviceWorker, job: CoilJob) -> None:
        worker.jobs.append(job)
        worker.wake()  # written before the next read, not after it

    def _db_submit(self, fn, *args):
        future = self._db.submit(_guarded, fn, *args)
        return future

    async def _db_call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._db, _guarded, fn, *args)

    # --- lifecycle ---
    async def run(self, stop: asyncio.Event) -> None:
        logger.info("poller %s starting (shard %d/%d)", self.config.name, *self.config.shard)
        self._loop = asyncio.get_running_loop()
        set_process_name(self.config.name)
        register_coil_writer(self.write_coil_locally)
        await self.reload()
        loop = asyncio.get_running_loop()
        if self.config.gc_tuning:
            settle_gc()
            # Once the workers have connected, their clients and buffers are long-lived too.
            loop.call_later(self.config.stats_interval, gc.freeze)
        self._tasks = [
            loop.create_task(self._every(self.config.reload_interval, self.reload, stop)),
            loop.create_task(self._every(self.config.stats_interval, self.report_stats, stop)),
            loop.create_task(self._every(self.config.command_interval, self.pick_up_coil_writes, stop)),
        ]
        if self.config.live_push_interval > 0:
            self._tasks.append(loop.create_task(self._every(self.config.live_push_interval, self.push_live, stop)))
        await stop.wait()
        await self.shutdown()

    async def _every(self, interval: float, fn, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
                return
            except TimeoutError:
                pass
            try:
                await fn()
            except Exception:
                logger.exception("%s failed; will retry", getattr(fn, "__name__", fn))

    async def shutdown(self) -> None:
        logger.info("poller %s stopping", self.config.name)
        unregister_coil_writer(self.write_coil_locally)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for worker in self.workers.values():
            worker.stopping = True
        await asyncio.gather(*(w.stop() for w in self.workers.values()), return_exceptions=True)
        self.flush_reads()  # the last batch is stored too
        for worker in self.workers.values():
            await worker._fail_jobs("采集进程停止")
        if self.store_status:
            for spec in self.specs.values():
                if spec.pollable:
                    self.set_status(spec, DeviceStatus.OFFLINE, "采集进程已停止")
            try:
                await self.report_stats()
            except Exception:
                logger.exception("final stats failed")
        self.workers.clear()
        self._db.submit(_close_connection).result(timeout=10)
        self._db.shutdown(wait=True)

    async def reload(self) -> None:
        specs = await self._db_call(load_device_specs, *self.config.shard)
        loop = asyncio.get_running_loop()
        if specs is None:
            if self.specs or self.config_source == "snapshot":
                return  # database unreachable: keep polling with what we have
            # A start while the database is down: the last configuration loaded (once per outage:
            # the file changes only when a load from the database succeeds).
            specs = await loop.run_in_executor(None, self._from_snapshot)
            if specs is None:
                return
        else:
            if self.config_source == "snapshot":
                logger.warning(
                    "poller %s: the database is back; its configuration replaces the snapshot", self.config.name
                )
            self.config_source = "database"
            # Written when the configuration changed (the signatures: updated_at of devices and channels),
            # not every reload: encoding every spec every few seconds would cost the event loop's GIL.
            signatures = {device_id: spec.signature for device_id, spec in specs.items()}
            if self.snapshot is not None and signatures != self._saved_signatures:
                snapshot = self.snapshot
                if await loop.run_in_executor(None, lambda: snapshot.save(specs) or snapshot.holds(specs)):
                    self._saved_signatures = signatures  # (else the disk failed: try again next time)
        for device_id in list(self.workers):
            spec = specs.get(device_id)
            if spec is None or not spec.pollable or spec.signature != self.workers[device_id].spec.signature:
                worker = self.workers.pop(device_id)
                await worker.stop()
                await worker._fail_jobs("设备配置已变更")
                logger.info("device %s %s", worker.spec.name, "removed" if spec is None else "reconfigured")
        self.flush_reads()  # what the stopped workers read is folded before their channels change
        for device_id, spec in specs.items():
            if self.writer is not None:
                for ch in spec.channels:
                    self.writer.configure(ch.id, ch.deadband, ch.heartbeat_s)
            if not spec.pollable:
                reason = "" if spec.channels else "未配置测点"
                self.set_status(spec, spec.idle_status, reason)
                continue
            if device_id not in self.workers:
                worker = DeviceWorker(spec, self)
                self.workers[device_id] = worker
                worker.start()
                logger.info("device %s polling every %.0f ms", spec.name, spec.period_s * 1000)
        self.specs = specs

    def _from_snapshot(self) -> dict[int, DeviceSpec] | None:
        """The specs of the last successful load (see devices.poller.snapshot), or None."""
        self.config_source = "snapshot"  # tried, whatever it gives: not again until the database answers
        if self.snapshot is None:
            return None
        loaded = self.snapshot.load((DeviceSpec, ChannelSpec))
        if loaded is None:
            logger.error(
                "poller %s: the database is unreachable and there is no usable snapshot; nothing to poll",
                self.config.name,
            )
            return None
        specs, saved_at = loaded
        if not isinstance(specs, dict) or not all(
            isinstance(k, int)
            and isinstance(v, DeviceSpec)
            and k == v.id
            and all(isinstance(c, ChannelSpec) for c in v.channels)
            for k, v in specs.items()
        ):
            logger.error("configuration snapshot %s does not hold device specs; ignored", self.snapshot.path)
            return None
        local = saved_at.astimezone(ZoneInfo(settings.TIME_ZONE)).strftime("%Y-%m-%d %H:%M:%S")
        logger.warning(
            "poller %s: the database is unreachable; polling %d devices on its last known configuration, of %s",
            self.config.name,
            len(specs),
            local,
        )
        publish_poller_event(
            PollerEvent(
                kind="cold_start",
                poller=self.config.name,
                detail=f"数据库中断期间启动，按 {local} 的配置采集（{len(specs)} 台设备）",
                at=datetime.now(UTC),
            )
        )
        return specs

    async def report_stats(self) -> None:
        now = time.monotonic()
        rows = []
        for device_id, worker in self.workers.items():
            st = worker.stats
            elapsed = now - st.window_start
            if elapsed > 0:
                st.rate_hz = (st.cycles - st.window_cycles) / elapsed
            st.window_start, st.window_cycles = now, st.cycles
            status, reason = self.status.get(device_id, (worker.spec.status, ""))
            last_seen = None if st.last_seen is None else datetime.fromtimestamp(st.last_seen, UTC)
            rows.append((device_id, last_seen, st.rate_hz, st.overruns - st.reported_overruns, status, reason))
            st.reported_overruns = st.overruns
        if rows and self.store_status:
            await self._db_call(_store_stats, rows, self.config.name)
        if self.store_status:
            for device in await self._db_call(_stale_http_devices, self.config.shard, self.config.name) or []:
                publish_status(
                    DeviceStatusEvent(
                        device_id=device.pk,
                        online=False,
                        reason=device.status_reason,
                        at=datetime.now(UTC),
                        status=DeviceStatus.OFFLINE,
                    )
                )

    async def pick_up_coil_writes(self) -> None:
        device_ids = list(self.workers)
        idle = [d for d, s in self.specs.items() if not s.pollable]
        claimed = await self._db_call(
            _claim_coil_writes, device_ids, idle, self.config.name, self.config.coil_write_timeout
        )
        for cmd in claimed or []:
            worker = self.workers.get(cmd.device_id)
            job = CoilJob(cmd.pk, cmd.unit_id, cmd.address, cmd.value)
            if worker is None or not worker.connected:
                self.coil_write_finished(job, ok=False, readback=None, error="设备离线")
            else:
                self._hand_over(worker, job)

    async def push_live(self) -> None:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        batches, self.live_batches = self.live_batches, []
        if layer is None or type(layer).__name__ == "InMemoryChannelLayer":
            for worker in self.workers.values():  # an in-memory layer cannot reach the web process
                worker.recent = []
            return
        for device_id, values in self._latest_values(batches).items():
            try:
                await layer.group_send(live_group(device_id), {"type": "device.live", "values": values})
            except Exception:
                logger.debug("live push failed", exc_info=True)
                for other in self.workers.values():  # nothing piles up while the layer is away
                    other.recent = []
                return

    def _latest_values(self, batches: list[Readings]) -> dict[int, dict[str, list]]:
        """The newest value of each channel since the last push, per device: from the batches (only
        the newest read of each block counts) and from the workers' cycles of other readings."""
        latest: dict[int, dict[int, tuple]] = {}
        seen = set()
        for batch in reversed(batches):
            end = len(batch.channel_ids)
            for device_id, at, n, key in reversed(batch.reads):
                start = end - n
                if id(key) not in seen:  # blocks are dataclasses: compared by value, not hashable
                    seen.add(id(key))
                    values = latest.setdefault(device_id, {})
                    for cid, value, quality in zip(
                        batch.channel_ids[start:end], batch.values[start:end], batch.qualities[start:end], strict=True
                    ):
                        if cid not in values:
                            values[cid] = (value, quality, at)  # (at: epoch seconds)
                end = start
        for device_id, worker in self.workers.items():
            recent, worker.recent = worker.recent, []
            if not recent:
                continue
            values = latest.setdefault(device_id, {})
            for events in recent:  # oldest first: a newer reading replaces an older one
                for ev in events:
                    old = values.get(ev.channel_id)
                    at = ev.received_at.timestamp()
                    if old is None or old[2] <= at:
                        values[ev.channel_id] = (ev.value, ev.quality, at)
        return {
            device_id: {str(cid): [value, quality, at] for cid, (value, quality, at) in values.items()}
            for device_id, values in latest.items()
            if values
        }


def _wake(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(False)


def live_group(device_id: int) -> str:
    return f"devices.live.{device_id}"


# At most this many device status writes wait for the database thread (see Poller._store_status_later).
STATUS_BACKLOG = 1000


# --- database side (runs on the poller's DB thread) --------------------------------------------


def _guarded(fn, *args):
    """``fn(*args)`` on the DB thread, or None when the database is down, hung or refuses it.

    Under ``db_deadline``: a frozen server (SIGSTOP, a hung host) answers nothing and would block
    this thread, and with it reload, status, stats and coil-write claims, for good.
    """
    from django.db import DatabaseError

    from regulator.dbdeadline import close_broken_connection, db_deadline

    try:
        with db_deadline():
            return fn(*args)
    except DatabaseError as exc:
        logger.warning("database call %s failed: %s", getattr(fn, "__name__", fn), exc)
        # Not close_old_connections(): its SELECT 1 on a hung server would block this thread again.
        close_broken_connection()
        return None


def _close_connection():
    from regulator.dbdeadline import close_broken_connection

    close_broken_connection()


def load_device_specs(shard_k: int, shard_n: int) -> dict[int, DeviceSpec]:
    from django.db.models.functions import Mod

    from devices.models import Channel, Device

    devices = Device.objects.exclude(protocol=Protocol.HTTP)  # pushed over HTTP, never polled
    if shard_n > 1:
        devices = devices.annotate(shard=Mod("id", shard_n)).filter(shard=shard_k)
    devices = list(devices)
    channels: dict[int, list] = {}
    for ch in Channel.objects.filter(device__in=[d.pk for d in devices], enabled=True).order_by("id"):
        channels.setdefault(ch.device_id, []).append(ch)
    specs = {}
    for d in devices:
        chs = channels.get(d.pk, [])
        specs[d.pk] = DeviceSpec(
            id=d.pk,
            name=d.name,
            enterprise_id=d.enterprise_id,
            protocol=d.protocol,
            host=d.host,
            port=d.port,
            serial_port=d.serial_port,
            baudrate=d.baudrate,
            parity=d.parity,
            stopbits=d.stopbits,
            bytesize=d.bytesize,
            period_s=d.poll_period_ms / 1000,
            timeout_s=d.timeout_ms / 1000,
            retries=d.retries,
            enabled=d.enabled,
            maintenance=d.maintenance,
            status=d.status,
            channels=tuple(channel_spec(c) for c in chs),
            signature=(d.updated_at, tuple((c.pk, c.updated_at) for c in chs)),
        )
    return specs


def channel_spec(c) -> ChannelSpec:
    return ChannelSpec(
        id=c.pk,
        device_id=c.device_id,
        tag=c.tag,
        unit_id=c.unit_id,
        register_type=c.register_type,
        address=c.address,
        data_type=c.data_type,
        byte_order=c.byte_order,
        word_order=c.word_order,
        scale=c.scale,
        offset=c.offset,
        range_low=c.range_low,
        range_high=c.range_high,
        sentinels=frozenset(c.sentinels or ()),
        deadband=c.deadband,
        heartbeat_s=float(c.heartbeat_s),
    )


def _store_status(device_id, old, new, reason, poller, at):
    from devices.services import device_record_status

    device_record_status(device_id=device_id, old=old, new=new, reason=reason, poller=poller, at=at)


def _store_stats(rows, poller):
    from devices.services import device_record_stats

    device_record_stats(rows=rows, poller=poller)


def _stale_http_devices(shard, poller):
    from devices.services import http_devices_mark_stale

    return http_devices_mark_stale(shard=shard, poller=poller)


def _claim_coil_writes(device_ids, idle_ids, poller, timeout):
    from devices.services import coil_writes_claim

    return coil_writes_claim(device_ids=device_ids, idle_device_ids=idle_ids, poller=poller, timeout_s=timeout)


def _finish_coil_write(command_id, ok, readback, error, poller):
    from devices.services import coil_write_finish

    coil_write_finish(command_id=command_id, ok=ok, readback=readback, error=error, poller=poller)


# Young-generation threshold of the cyclic GC while polling. The GC counts tracked objects allocated
# minus freed; the readings queued for the writer (up to its flush interval: ~55,000 tuples and
# lists at 10,000 reads/s) keep that count up. With the default (700) that set off hundreds of
# collections a second and promoted the queued readings until full collections walked the whole
# Django heap: 100-150 ms pauses, most of the p99 cycle jitter. At 10,000 there were still ~8
# collections a second (~5% CPU); at 100,000 none in steady state (bench/poll.py shows the count).
GC_THRESHOLD = (100_000, 20, 20)


def settle_gc() -> None:
    """Collect once, then move everything alive (Django, models, specs, workers) to the permanent
    generation so later collections only walk what was allocated since."""
    gc.collect()
    gc.freeze()


def loop_factory(kind: str):
    """The event loop for the daemon: uvloop when asked for and installed (the poller's per-read
    cost is mostly event-loop and transport work), else asyncio's own."""
    if kind == "uvloop":
        try:
            import uvloop
        except ImportError:
            logger.info("uvloop is not installed; using the asyncio event loop")
        else:
            return uvloop.new_event_loop
    return None


def run_forever(config: PollerConfig, writer: ReadingWriter | None) -> None:
    """Entry point for the management command: runs until SIGTERM/SIGINT, then stops cleanly."""

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        poller = Poller(config, writer)
        await poller.run(stop)

    previous_threshold = gc.get_threshold()
    if config.gc_tuning:
        gc.set_threshold(*GC_THRESHOLD)
    if writer is not None:
        writer.start()
    try:
        with asyncio.Runner(loop_factory=loop_factory(config.event_loop)) as runner:
            runner.run(main())
    finally:
        if writer is not None:
            writer.stop()
        if config.gc_tuning:
            gc.set_threshold(*previous_threshold)
            gc.unfreeze()
        logger.info("poller %s stopped", config.name)
