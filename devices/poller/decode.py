"""Channel specs, block planning and decoding of Modbus registers into engineering values.

Pure functions with no Django or I/O, so the hot loop stays cheap and the tests can check every
data type, byte and word order against real servers and against hand-made words.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

from devices.choices import BIT_REGISTERS, WORDS, Quality

MAX_REGISTERS_PER_READ = 125
MAX_BITS_PER_READ = 2000

_FORMATS = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "float32": "f", "float64": "d"}


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    id: int
    device_id: int
    tag: str
    unit_id: int
    register_type: str
    address: int
    data_type: str = "uint16"
    byte_order: str = "big"
    word_order: str = "big"
    scale: float = 1.0
    offset: float = 0.0
    range_low: float | None = None
    range_high: float | None = None
    sentinels: frozenset = frozenset()
    deadband: float = 0.0
    heartbeat_s: float = 60.0

    @property
    def words(self) -> int:
        return 1 if self.register_type in BIT_REGISTERS else WORDS[self.data_type]


@dataclass(slots=True)
class Block:
    """One read request: a contiguous range of one register type on one unit."""

    unit_id: int
    register_type: str
    start: int
    count: int
    channels: list[ChannelSpec] = field(default_factory=list)
    plan: list | None = None  # compiled on first decode


def plan_blocks(channels: list[ChannelSpec], max_gap: int = 8) -> list[Block]:
    """Coalesce channels into as few reads as the limits allow.

    Registers between two channels are read too when the gap is at most ``max_gap``: strict
    devices answer "illegal address" for unmapped registers, so large gaps split the block.
    """
    groups: dict[tuple[int, str], list[ChannelSpec]] = {}
    for ch in channels:
        groups.setdefault((ch.unit_id, ch.register_type), []).append(ch)
    blocks: list[Block] = []
    for (unit_id, register_type), members in sorted(groups.items()):
        limit = MAX_BITS_PER_READ if register_type in BIT_REGISTERS else MAX_REGISTERS_PER_READ
        members.sort(key=lambda c: (c.address, c.id))
        current: Block | None = None
        for ch in members:
            end = ch.address + ch.words
            if (
                current is not None
                and ch.address - (current.start + current.count) <= max_gap
                and end - current.start <= limit
            ):
                current.count = max(current.count, end - current.start)
                current.channels.append(ch)
            else:
                current = Block(unit_id, register_type, ch.address, ch.words, [ch])
                blocks.append(current)
    return blocks


def words_to_raw(words: list[int], data_type: str, byte_order: str = "big", word_order: str = "big"):
    """Registers as read (each a 16-bit int) -> the raw number, honouring byte and word order."""
    if byte_order == "big" and len(words) == 1:  # the common case, without struct
        word = words[0]
        if data_type == "uint16":
            return word
        if data_type == "int16":
            return word - 0x10000 if word & 0x8000 else word
    if word_order == "little" and len(words) > 1:
        words = words[::-1]
    raw = struct.pack(f">{len(words)}H", *words)
    if byte_order == "little":
        raw = bytes(b for pair in zip(raw[1::2], raw[0::2], strict=True) for b in pair)
    return struct.unpack(">" + _FORMATS[data_type], raw)[0]


def raw_to_words(value, data_type: str, byte_order: str = "big", word_order: str = "big") -> list[int]:
    """The inverse of ``words_to_raw``: used by the simulator and the tests."""
    raw = struct.pack(">" + _FORMATS[data_type], value)
    if byte_order == "little":
        raw = bytes(b for pair in zip(raw[1::2], raw[0::2], strict=True) for b in pair)
    words = list(struct.unpack(f">{len(raw) // 2}H", raw))
    if word_order == "little":
        words.reverse()
    return words


def engineering_to_raw(ch: ChannelSpec, value: float):
    """Engineering value -> raw register number for ``ch`` (simulator side)."""
    raw = (value - ch.offset) / ch.scale if ch.scale else value
    if ch.data_type in ("float32", "float64"):
        return raw
    raw = int(round(raw))
    bits = 16 if ch.data_type.endswith("16") else 32
    if ch.data_type.startswith("u"):
        return max(0, min(raw, 2**bits - 1))
    return max(-(2 ** (bits - 1)), min(raw, 2 ** (bits - 1) - 1))


def evaluate(ch: ChannelSpec, raw) -> tuple[float | None, str]:
    """Raw number -> (engineering value or None, quality)."""
    if raw in ch.sentinels:
        return None, Quality.SENTINEL.value
    if isinstance(raw, float) and not math.isfinite(raw):
        return None, Quality.NAN.value
    value = raw * ch.scale + ch.offset
    if not math.isfinite(value):
        return None, Quality.NAN.value
    if (ch.range_low is not None and value < ch.range_low) or (ch.range_high is not None and value > ch.range_high):
        return None, Quality.OUT_OF_RANGE.value
    return value, Quality.GOOD.value


def _compile(block: Block) -> list[tuple]:
    """Per channel: (channel, offset in block, fast kind) where kind 1 = uint16, 2 = int16 (big endian,
    decoded without struct), 0 = general path."""
    plan = []
    for ch in block.channels:
        kind = 0
        if ch.byte_order == "big" and ch.data_type == "uint16":
            kind = 1
        elif ch.byte_order == "big" and ch.data_type == "int16":
            kind = 2
        plan.append((ch, ch.address - block.start, kind))
    return plan


_GOOD = Quality.GOOD.value
_GARBAGE = Quality.GARBAGE.value
_isfinite = math.isfinite


def decode_block(block: Block, data: list) -> list[tuple[ChannelSpec, float | None, str]]:
    """Registers (or bits) of one block -> one (channel, value, quality) per channel."""
    out = []
    if block.register_type in BIT_REGISTERS:
        for ch in block.channels:
            i = ch.address - block.start
            if i >= len(data):
                out.append((ch, None, _GARBAGE))
            else:
                out.append((ch, 1.0 if data[i] else 0.0, _GOOD))
        return out
    if len(data) < block.count:
        return [(ch, None, _GARBAGE) for ch in block.channels]
    plan = block.plan
    if plan is None:
        plan = block.plan = _compile(block)
    append = out.append
    for ch, i, kind in plan:
        if kind == 1:
            raw = data[i]
        elif kind == 2:
            raw = data[i]
            if raw & 0x8000:
                raw -= 0x10000
        else:
            try:
                raw = words_to_raw(data[i : i + ch.words], ch.data_type, ch.byte_order, ch.word_order)
            except (struct.error, ValueError):
                append((ch, None, _GARBAGE))
                continue
            if not _isfinite(raw):
                append((ch, None, Quality.NAN.value))
                continue
        if ch.sentinels and raw in ch.sentinels:
            append((ch, None, Quality.SENTINEL.value))
            continue
        value = raw * ch.scale + ch.offset
        if not _isfinite(value):
            append((ch, None, Quality.NAN.value))
        elif (ch.range_low is not None and value < ch.range_low) or (
            ch.range_high is not None and value > ch.range_high
        ):
            append((ch, None, Quality.OUT_OF_RANGE.value))
        else:
            append((ch, value, _GOOD))
    return out
