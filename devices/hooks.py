"""In-memory hand-off of readings from the poller (and HTTP ingest) to whoever evaluates them.

The alerts app registers a sink in its ``AppConfig.ready()``; the poller calls every sink with
each batch of readings as it arrives (a ``Readings`` of the good block reads of a few
milliseconds, or a list of ``ReadingEvent`` for anything else), before (and independently of)
batched storage. A sink must be fast and must not raise; a sink that raises is logged and the
poller goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain, repeat
from typing import NamedTuple

logger = logging.getLogger(__name__)


class ReadingEvent(NamedTuple):
    """One reading. Immutable; a NamedTuple rather than a frozen dataclass because the poller
    creates ~100,000 a second and a frozen dataclass costs several times more to build."""

    channel_id: int
    device_id: int
    value: float | None  # engineering value after scale/offset; None when bad, except out_of_range
    good: bool
    quality: str  # "good" or the reason: timeout, exception, crc, out_of_range, nan, sentinel, ...
    received_at: datetime
    device_time: datetime | None = None


class Readings(Sequence):
    """The readings of several block reads, as the poller hands them over: columns, not events.

    A sequence of ``ReadingEvent`` (built when first iterated or indexed); ``rows()`` gives the same
    readings as plain 7-tuples in the same order without building events, and ``evaluation_rows()``
    what a rule engine needs (the alerts runtime reads that, see ``evaluation_rows`` below).
    """

    __slots__ = ("reads", "channel_ids", "values", "qualities", "goods", "_events")

    def __init__(self, reads, channel_ids, values, qualities, goods):
        # Per block read, in order: (device id, received at in epoch seconds, readings, block key).
        self.reads = reads
        self.channel_ids = channel_ids  # and one entry per reading in these four
        self.values = values  # None when the quality is bad (out_of_range keeps its value)
        self.qualities = qualities
        self.goods = goods
        self._events: list[ReadingEvent] | None = None

    def rows(self) -> Iterator[tuple]:
        reads = self.reads
        devices = chain.from_iterable(repeat(device, n) for device, _t, n, _key in reads)
        times = chain.from_iterable(repeat(datetime.fromtimestamp(t, UTC), n) for _device, t, n, _key in reads)
        return zip(self.channel_ids, devices, self.values, self.goods, self.qualities, times, repeat(None))

    def evaluation_rows(self) -> Iterator[tuple]:
        """(channel id, value, good, quality, received at in epoch seconds) per reading."""
        times = chain.from_iterable(repeat(t, n) for _device, t, n, _key in self.reads)
        return zip(self.channel_ids, self.values, self.goods, self.qualities, times, strict=True)

    def events(self) -> list[ReadingEvent]:
        if self._events is None:
            new = tuple.__new__
            self._events = [new(ReadingEvent, row) for row in self.rows()]
        return self._events

    def __len__(self) -> int:
        return len(self.channel_ids)

    def __iter__(self):
        return iter(self.events())

    def __getitem__(self, index):
        return self.events()[index]

    def __eq__(self, other):
        if isinstance(other, Readings | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        return f"<Readings of {len(self.reads)} reads, {len(self)} readings>"


def evaluation_rows(readings: Sequence[ReadingEvent]) -> Iterator[tuple]:
    """(channel id, value, good, quality, received at in epoch seconds) per reading: what a rule
    engine needs, from a ``Readings`` batch or from a list of events."""
    if isinstance(readings, Readings):
        return readings.evaluation_rows()
    return _event_rows(readings)


def _event_rows(readings):
    last_at, t = None, 0.0
    for channel_id, _device, value, good, quality, at, _device_time in readings:
        if at is not last_at:  # a poll cycle's readings share one time: convert it once
            last_at, t = at, at.timestamp()
        yield channel_id, value, good, quality, t


@dataclass(frozen=True, slots=True)
class DeviceStatusEvent:
    device_id: int
    online: bool
    reason: str
    at: datetime
    status: str = ""  # devices.choices.DeviceStatus value: online, offline, demoted, maintenance, disabled


@dataclass(frozen=True, slots=True)
class PollerEvent:
    """Something about the acquisition itself, not one device: e.g. the spool buffer is full."""

    kind: str  # "spool_full", "db_down", "db_up", "overrun" (a device's cycle overran its period)
    poller: str
    detail: str
    at: datetime


ReadingSink = Callable[[Sequence[ReadingEvent]], None]
StatusSink = Callable[[DeviceStatusEvent], None]
_reading_sinks: list[ReadingSink] = []
_status_sinks: list[StatusSink] = []
PollerSink = Callable[[PollerEvent], None]
_poller_sinks: list[PollerSink] = []


def register_reading_sink(sink: ReadingSink) -> None:
    if sink not in _reading_sinks:
        _reading_sinks.append(sink)


def register_status_sink(sink: StatusSink) -> None:
    if sink not in _status_sinks:
        _status_sinks.append(sink)


def register_poller_sink(sink: PollerSink) -> None:
    if sink not in _poller_sinks:
        _poller_sinks.append(sink)


def publish_poller_event(event: PollerEvent) -> None:
    for sink in list(_poller_sinks):
        try:
            sink(event)
        except Exception:
            logger.exception("poller sink %r failed; continuing", sink)


def publish_readings(readings: Sequence[ReadingEvent]) -> None:
    for sink in list(_reading_sinks):
        try:
            sink(readings)
        except Exception:
            logger.exception("reading sink %r failed; continuing", sink)


def publish_status(event: DeviceStatusEvent) -> None:
    for sink in list(_status_sinks):
        try:
            sink(event)
        except Exception:
            logger.exception("status sink %r failed; continuing", sink)


# --- local coil writes (level-1 linkage without the database) -------------------------------------


@dataclass(frozen=True, slots=True)
class LocalCoilWrite:
    """A coil write asked of whichever process polls ``device_id``, now, without a command row.

    ``on_done(ok, readback, error, started_at, finished_at)`` is called once, from the poller's event
    loop, when the write has been read back (or failed); the caller stores the result itself.
    """

    uid: str
    device_id: int
    unit_id: int
    address: int
    value: bool
    reason: str
    requested_at: datetime
    on_done: Callable[..., None]


CoilWriter = Callable[[LocalCoilWrite], bool]
_coil_writers: list[CoilWriter] = []


def register_coil_writer(writer: CoilWriter) -> None:
    """A poller offers to write coils of the devices it polls (``writer`` returns False for others)."""
    if writer not in _coil_writers:
        _coil_writers.append(writer)


def unregister_coil_writer(writer: CoilWriter) -> None:
    if writer in _coil_writers:
        _coil_writers.remove(writer)


def write_coil_locally(request: LocalCoilWrite) -> bool:
    """True when a poller in this process took the write; False: nobody here polls that device."""
    for writer in list(_coil_writers):
        try:
            if writer(request):
                return True
        except Exception:
            logger.exception("coil writer %r failed; continuing", writer)
    return False


# The name of the acquisition process this is (the poller's ``--name``), for whatever keeps local state
# per process (the alerts runtime's outbox file); empty in web and worker processes.
_process = {"name": ""}


def set_process_name(name: str) -> None:
    _process["name"] = name


def process_name() -> str:
    return _process["name"]
