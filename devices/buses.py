"""Wire budget of a Modbus RTU serial bus: how much of each poll period its block reads occupy the line.

On a serial bus the wire decides, not the CPU: every read is a request frame, a response frame, the
silent intervals that delimit them and the device's turnaround, one read after the other. A bus whose
reads take longer than its poll period cannot keep its rate; a configuration doing so is refused
(``Device.clean`` / ``Channel.clean``) and the device page shows each bus's utilisation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from devices.choices import BIT_REGISTERS, Parity, Protocol
from devices.poller.decode import ChannelSpec, plan_blocks

REQUEST_BYTES = 8  # unit, function, start (2), count (2), CRC (2)
RESPONSE_OVERHEAD_BYTES = 5  # unit, function, byte count, CRC (2)
# Above 19200 baud the Modbus serial line specification fixes the 3.5-character silence at 1.75 ms.
FIXED_GAP_ABOVE_BAUD = 19200
FIXED_GAP_MS = 1.75


def character_bits(bytesize: int, parity: str, stopbits: int) -> int:
    """Bits on the wire per character: start bit, data bits, parity bit (unless none), stop bits."""
    return 1 + int(bytesize) + (0 if parity == Parity.NONE else 1) + int(stopbits)


def response_bytes(register_type: str, count: int) -> int:
    """Bytes of the reply to a read of ``count`` registers (two bytes each) or bits (eight a byte)."""
    data = math.ceil(count / 8) if register_type in BIT_REGISTERS else 2 * count
    return RESPONSE_OVERHEAD_BYTES + data


def gap_ms(baudrate: int, bits: int) -> float:
    """The 3.5-character silence that ends a frame."""
    if baudrate > FIXED_GAP_ABOVE_BAUD:
        return FIXED_GAP_MS
    return 3.5 * bits * 1000.0 / baudrate


def read_ms(
    *,
    register_type: str,
    count: int,
    baudrate: int,
    bytesize: int = 8,
    parity: str = "N",
    stopbits: int = 1,
    turnaround_ms: float = 0.0,
) -> float:
    """Line time of one read: request and response characters, two 3.5-character gaps, turnaround."""
    bits = character_bits(bytesize, parity, stopbits)
    characters = REQUEST_BYTES + response_bytes(register_type, count)
    return characters * bits * 1000.0 / baudrate + 2 * gap_ms(baudrate, bits) + turnaround_ms


@dataclass(frozen=True, slots=True)
class BusBudget:
    """One bus's poll cycle on the wire."""

    reads: int  # block reads per cycle, as the poller plans them
    wire_ms: float  # line time of those reads, turnaround included
    period_ms: int
    turnaround_ms: float

    @property
    def utilisation(self) -> float:
        return self.wire_ms / self.period_ms if self.period_ms else math.inf

    @property
    def percent(self) -> float:
        return 100.0 * self.utilisation

    @property
    def over(self) -> bool:
        return self.utilisation > 1.0

    @property
    def warn(self) -> bool:
        return self.percent > settings.DEVICES_RTU_WARN_PERCENT

    def as_dict(self) -> dict:
        return {
            "reads_per_cycle": self.reads,
            "wire_ms_per_cycle": round(self.wire_ms, 2),
            "poll_period_ms": self.period_ms,
            "turnaround_ms": self.turnaround_ms,
            "utilisation_percent": round(self.percent, 1),
            "warn": self.warn,
            "over": self.over,
        }


def bus_budget(
    *,
    channels: Iterable,
    baudrate: int,
    bytesize: int,
    parity: str,
    stopbits: int,
    period_ms: int,
    turnaround_ms: float | None = None,
    max_gap: int | None = None,
) -> BusBudget:
    """The budget of a bus polling ``channels`` (objects with unit_id, register_type, address and
    data_type, e.g. enabled ``Channel`` rows) once per ``period_ms``, merged into block reads the
    way the poller merges them (``plan_blocks``)."""
    turnaround = settings.DEVICES_RTU_TURNAROUND_MS if turnaround_ms is None else turnaround_ms
    gap = settings.DEVICES_MAX_REGISTER_GAP if max_gap is None else max_gap
    specs = [
        ChannelSpec(
            id=i,
            device_id=0,
            tag="",
            unit_id=ch.unit_id,
            register_type=ch.register_type,
            address=ch.address,
            data_type=ch.data_type,
        )
        for i, ch in enumerate(channels)
    ]
    blocks = plan_blocks(specs, gap)
    wire = sum(
        read_ms(
            register_type=b.register_type,
            count=b.count,
            baudrate=baudrate,
            bytesize=bytesize,
            parity=parity,
            stopbits=stopbits,
            turnaround_ms=turnaround,
        )
        for b in blocks
    )
    return BusBudget(reads=len(blocks), wire_ms=wire, period_ms=period_ms, turnaround_ms=turnaround)


def device_bus_budget(device, channels: Iterable | None = None) -> BusBudget | None:
    """The budget of an RTU ``device`` with ``channels`` (default: its enabled stored channels);
    None for other protocols, whose reads do not share a wire."""
    if device.protocol != Protocol.RTU or not device.baudrate:
        return None
    if channels is None:
        channels = device.channels.filter(enabled=True) if device.pk else []
    return bus_budget(
        channels=channels,
        baudrate=device.baudrate,
        bytesize=device.bytesize,
        parity=device.parity,
        stopbits=device.stopbits,
        period_ms=device.poll_period_ms,
    )


def over_budget_message(device, budget: BusBudget) -> str:
    """Why this configuration is refused, for the form and the API."""
    return _(
        "RTU 总线 %(port)s 每个采集周期需 %(reads)d 次读取，线路时间约 %(wire).1f 毫秒，"
        "超过采集周期 %(period)d 毫秒(占用 %(pct).0f%%)：请加长采集周期、提高波特率、减少测点或拆分总线"
    ) % {
        "port": device.serial_port,
        "reads": budget.reads,
        "wire": budget.wire_ms,
        "period": budget.period_ms,
        "pct": budget.percent,
    }
