"""In-memory hand-off of readings from the poller (and HTTP ingest) to whoever evaluates them.

The alerts app registers a sink in its ``AppConfig.ready()``; the poller calls every sink with
each batch of readings as it arrives, before (and independently of) batched storage. A sink
must be fast and must not raise; a sink that raises is logged and the poller goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

logger = logging.getLogger(__name__)


class ReadingEvent(NamedTuple):
    """One reading. Immutable; a NamedTuple rather than a frozen dataclass because the poller
    creates ~100,000 a second and a frozen dataclass costs several times more to build."""

    channel_id: int
    device_id: int
    value: float | None  # engineering value after scale/offset; None when quality is bad
    good: bool
    quality: str  # "good" or the reason: timeout, exception, crc, out_of_range, nan, sentinel, ...
    received_at: datetime
    device_time: datetime | None = None


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
