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
    fold_plan: tuple | None = None  # (writer, its VectorPlan or None), see ReadingWriter.vector_plan
    batch: int = -1  # the poller's batch this block's last good read joined, see Poller.add_read
    bits: bool = field(init=False)  # coils / discrete inputs (the response has .bits, not .registers)

    def __post_init__(self):
        self.bits = self.register_type in BIT_REGISTERS


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


# Verdicts of ``classify``.
IN_RANGE = 0
NOT_FINITE = 1
ABOVE_RANGE = 2
BELOW_RANGE = 3


def classify(value: float, low: float, high: float) -> int:
    """An engineering value against its range [low, high] (an open end is -inf / +inf).

    The one range rule of every path a reading comes in by: the poller's event decoder (below), its
    batch decoder (``folding``, which compiles this very function with numba) and HTTP ingest
    (``devices.services.ingest_readings``). NaN and +-Inf are never values. A value outside the
    range keeps its value, with quality ``out_of_range``: above the range a gas detector is
    saturated by the gas, and the alert engine makes that the highest alarm for fail-safe-high
    channels (see ``devices.choices.over_range_is_alarm``); below it, only a sensor fault.
    """
    if value - value != 0.0:  # NaN or +-Inf (inf - inf is NaN); one comparison, also under numba
        return NOT_FINITE
    if value > high:
        return ABOVE_RANGE
    if value < low:
        return BELOW_RANGE
    return IN_RANGE


def range_quality(value: float, low: float | None, high: float | None) -> tuple[float | None, str]:
    """``classify`` as (value to keep or None, quality), with None for an open end."""
    verdict = classify(value, -math.inf if low is None else low, math.inf if high is None else high)
    if verdict == IN_RANGE:
        return value, Quality.GOOD.value
    if verdict == NOT_FINITE:
        return None, Quality.NAN.value
    return value, Quality.OUT_OF_RANGE.value


def evaluate(ch: ChannelSpec, raw) -> tuple[float | None, str]:
    """Raw number -> (engineering value or None, quality); an out-of-range value is kept."""
    if raw in ch.sentinels:
        return None, Quality.SENTINEL.value
    if isinstance(raw, float) and not math.isfinite(raw):
        return None, Quality.NAN.value
    return range_quality(raw * ch.scale + ch.offset, ch.range_low, ch.range_high)


_GOOD = Quality.GOOD.value
_GARBAGE = Quality.GARBAGE.value
_NAN = Quality.NAN.value
_SENTINEL = Quality.SENTINEL.value
_OUT_OF_RANGE = Quality.OUT_OF_RANGE.value
_isfinite = math.isfinite
_classify = classify
_INF = math.inf
_new_event = tuple.__new__  # skips the NamedTuple's Python-level __new__: ~100,000 events a second


def _compile(block: Block) -> list[tuple]:
    """Per channel, everything the hot loop needs as plain locals:
    (channel id, offset in block, kind, scale, offset, low, high, sentinels, channel).

    kind 1 = big-endian uint16, 2 = big-endian int16 (both decoded without struct, and with a
    finite scale and offset their value cannot be NaN/Inf), 0 = general path. Missing range
    limits become -inf/+inf so the range check is one chained comparison (False for NaN too).
    """
    plan = []
    for ch in block.channels:
        kind = 0
        if _isfinite(abs(ch.scale) * 65536 + abs(ch.offset)) and ch.byte_order == "big":
            if ch.data_type == "uint16":
                kind = 1
            elif ch.data_type == "int16":
                kind = 2
        low = -_INF if ch.range_low is None else ch.range_low
        high = _INF if ch.range_high is None else ch.range_high
        plan.append((ch.id, ch.address - block.start, kind, ch.scale, ch.offset, low, high, ch.sentinels, ch))
    return plan


def _decode_general(ch: ChannelSpec, data: list, i: int):
    """Raw number of a channel outside the fast path, or a bad quality string."""
    try:
        raw = words_to_raw(data[i : i + ch.words], ch.data_type, ch.byte_order, ch.word_order)
    except (struct.error, ValueError):
        return None, _GARBAGE
    if not _isfinite(raw):
        return None, _NAN
    return raw, None


def decode_events(block: Block, data: list, device_id: int, now, event_type) -> list[tuple]:
    """Registers (or bits) of one block -> one ``event_type`` tuple per channel:
    (channel id, device id, value, good, quality, now, None).

    The poller's hot path: no intermediate tuples, attribute lookups compiled into the plan.
    """
    new = _new_event
    if block.register_type in BIT_REGISTERS:
        out = []
        n = len(data)
        for ch in block.channels:
            i = ch.address - block.start
            if i >= n:
                out.append(new(event_type, (ch.id, device_id, None, False, _GARBAGE, now, None)))
            else:
                out.append(new(event_type, (ch.id, device_id, 1.0 if data[i] else 0.0, True, _GOOD, now, None)))
        return out
    if len(data) < block.count:
        return [new(event_type, (ch.id, device_id, None, False, _GARBAGE, now, None)) for ch in block.channels]
    plan = block.plan
    if plan is None:
        plan = block.plan = _compile(block)
    out = []
    append = out.append
    for cid, i, kind, scale, offset, low, high, sentinels, ch in plan:
        raw = data[i]
        if kind == 2:
            if raw & 0x8000:
                raw -= 0x10000
        elif kind == 0:
            raw, bad = _decode_general(ch, data, i)
            if bad is not None:
                append(new(event_type, (cid, device_id, None, False, bad, now, None)))
                continue
        if sentinels and raw in sentinels:
            append(new(event_type, (cid, device_id, None, False, _SENTINEL, now, None)))
            continue
        value = raw * scale + offset
        # The common case inline (what ``classify`` calls in range; no call per channel), the rest by it.
        if low <= value <= high and (kind or _isfinite(value)):
            append(new(event_type, (cid, device_id, value, True, _GOOD, now, None)))
        elif _classify(value, low, high) == NOT_FINITE:
            append(new(event_type, (cid, device_id, None, False, _NAN, now, None)))
        else:  # out of range: the value is kept (it is evaluated and stored, with its quality)
            append(new(event_type, (cid, device_id, value, False, _OUT_OF_RANGE, now, None)))
    return out


def decode_block(block: Block, data: list) -> list[tuple[ChannelSpec, float | None, str]]:
    """Registers (or bits) of one block -> one (channel, value, quality) per channel."""
    by_id = {ch.id: ch for ch in block.channels}
    return [(by_id[ev[0]], ev[2], ev[4]) for ev in decode_events(block, data, 0, None, tuple)]


def split_block(block: Block) -> list[Block]:
    """The pieces to re-read a block that the device refused: its runs of channels with no register
    between them (the merge gaps left out) or, for a block that is one such run, its channels one
    by one (channels that share registers stay together). [] when it cannot be split."""
    pieces = plan_blocks(block.channels, max_gap=0)
    if len(pieces) == 1:
        pieces = plan_blocks(block.channels, max_gap=-1)
    return pieces if len(pieces) > 1 else []
