"""Deadband compression and 1-minute aggregation of readings, and decoding of register blocks, on
columns of readings (numpy) rather than one reading at a time.

The poller reads ~10,000 blocks (~100,000 channels) a second. Decoding, range-checking and folding
each channel in Python cost about half as much as pymodbus's own work for the read; on columns of
about a thousand channels at once (the reads of a batch window) the same work costs about half of
that in the poller (bench/poll.py), and a fifth in isolation.

``FoldState`` holds every channel's state in arrays indexed by a slot: the deadband memory (last
stored value, quality, time), the open minute bucket (min, max, sum, count, bad count). ``fold``
applies one column batch in which every slot appears at most once; ``split_rounds`` cuts a batch
with repeated channels into such batches, in order. The result is the same, reading for reading,
as folding the readings one by one (tests/devices/test_storage_fastpath.py checks it against a
one-at-a-time reference on random streams).

``VectorPlan`` / ``decode_reads`` decode the good responses of register blocks into such columns
(every data type, byte and word order, scale, offset, sentinels, NaN/Inf, range), exactly as
``decode.decode_events`` does one channel at a time. How a channel is decoded is kept by slot too
(``FoldState.params``, written when a block's plan is made): the poller folds what is pending
before a reload starts workers with new plans.
"""

from __future__ import annotations

import math
from itertools import chain

import numpy as np

from devices.choices import BIT_REGISTERS, WORDS, Quality
from devices.poller.decode import Block

# Quality strings as small codes (0: none yet). Unknown strings get a code on first sight.
QUALITIES: list[str | None] = [None, *(q.value for q in Quality)]
_QCODE: dict[str, int] = {q: i for i, q in enumerate(QUALITIES) if q is not None}
GOOD = _QCODE[Quality.GOOD.value]
NAN_Q = _QCODE[Quality.NAN.value]
SENTINEL_Q = _QCODE[Quality.SENTINEL.value]
OUT_OF_RANGE_Q = _QCODE[Quality.OUT_OF_RANGE.value]
_GOOD_STR = Quality.GOOD.value


def qcode(quality: str) -> int:
    code = _QCODE.get(quality)
    if code is None:
        code = _QCODE[quality] = len(QUALITIES)
        QUALITIES.append(quality)
    return code


# The state of every channel, one array per field, indexed by slot: deadband and heartbeat, the
# last stored reading (value, time, quality code), the open minute bucket.
_FIELDS = {
    "deadband": 0.0,
    "heartbeat": 60.0,
    "last_v": math.nan,  # NaN: none (never stored, or the last stored reading had no value)
    "last_t": math.nan,
    "last_q": 0.0,  # quality code of the last stored reading; 0: none
    "minute": math.nan,  # start of the open bucket (epoch seconds); NaN: none open
    "mn": math.inf,
    "mx": -math.inf,
    "sm": 0.0,
    "cnt": 0.0,  # counts as floats: exact, and one dtype for every field
    "bad": 0.0,
    "cid": 0.0,
}


class FoldState:
    """Per-channel state in arrays, one slot per channel id."""

    def __init__(self, capacity: int = 256):
        self.slots: dict[int, int] = {}
        self.size = 0
        self.capacity = capacity
        for name, default in _FIELDS.items():
            setattr(self, name, np.full(capacity, default, dtype=np.float64))
        # How each channel's registers are decoded (rows P_*, see VectorPlan), set by vector_plan.
        self.params = np.full((_ROWS, capacity), math.nan, dtype=np.float64)

    def slot(self, channel_id: int) -> int:
        slot = self.slots.get(channel_id)
        if slot is None:
            if self.size == self.capacity:
                for name, default in _FIELDS.items():
                    grown = np.full(self.capacity * 2, default, dtype=np.float64)
                    grown[: self.capacity] = getattr(self, name)
                    setattr(self, name, grown)
                params = np.full((_ROWS, self.capacity * 2), math.nan, dtype=np.float64)
                params[:, : self.capacity] = self.params
                self.params = params
                self.capacity *= 2
            slot = self.slots[channel_id] = self.size
            self.size += 1
            self.cid[slot] = channel_id
        return slot

    def slot_array(self, channel_ids) -> np.ndarray:
        get = self.slots.get
        return np.fromiter(
            (s if (s := get(c)) is not None else self.slot(c) for c in channel_ids), np.int64, len(channel_ids)
        )

    def close_buckets(self, s: np.ndarray, out: list) -> None:
        """Emit the open buckets of slots ``s`` that hold something, and empty them."""
        minute, cnt, bad = self.minute[s], self.cnt[s], self.bad[s]
        has = ~np.isnan(minute) & ((cnt > 0) | (bad > 0))
        if has.any():
            h = s[has]
            for cid, m, mn, mx, sm, c, b in zip(
                self.cid[h].tolist(), minute[has].tolist(), self.mn[h].tolist(), self.mx[h].tolist(),
                self.sm[h].tolist(), cnt[has].tolist(), bad[has].tolist(), strict=True,
            ):  # fmt: skip
                if c:
                    out.append((int(cid), int(m), mn, mx, sm, int(c), int(b)))
                else:
                    out.append((int(cid), int(m), None, None, sm, 0, int(b)))
        self.mn[s] = math.inf
        self.mx[s] = -math.inf
        self.sm[s] = 0.0
        self.cnt[s] = 0.0
        self.bad[s] = 0.0


def fold(
    state: FoldState,
    s: np.ndarray,
    t: np.ndarray,
    v: np.ndarray,
    good: np.ndarray,
    q: np.ndarray,
    closed: list,
    all_good: bool = False,
) -> np.ndarray:
    """Fold one batch of readings in which no slot repeats; return the indices (into the batch) of
    the readings to store, ascending.

    s: slots; t: receive times (epoch s); v: values (NaN for none); good: the reading's good flag;
    q: quality codes (``all_good``: the caller knows that every reading is good, with a value).
    Per reading, as one at a time: a reading for an earlier minute than the open
    bucket is a bucket of its own (merged by the database's upsert) and is not stored raw; a later
    minute closes the open bucket first; a good reading with a value updates min/max/sum/count,
    anything else counts as bad; then the reading is stored unless the last stored one has the same
    quality, is less than a heartbeat old, and (both having values) is within the deadband.
    """
    st = state
    index = None  # positions in the caller's batch, once late readings were taken out
    first, last = t.min(), t.max()
    m0 = float(first // 60.0 * 60.0)
    m = m0 if last < m0 + 60.0 else np.floor_divide(t, 60.0) * 60.0  # usually one minute for all
    cur = st.minute[s]
    same = m == cur
    if not same.all():
        if np.ndim(m) == 0:
            m = np.full(t.size, m)
        late = m < cur
        if late.any():
            for cid, minute, value, ok in zip(
                st.cid[s[late]].tolist(), m[late].tolist(), v[late].tolist(), good[late].tolist(), strict=True
            ):
                if ok and value == value:
                    closed.append((int(cid), int(minute), value, value, value or 0.0, 1, 0))
                else:
                    closed.append((int(cid), int(minute), None, None, 0.0, 0, 1))
            keep = ~late
            index = np.flatnonzero(keep)
            s, t, v, good, q, m, same = s[keep], t[keep], v[keep], good[keep], q[keep], m[keep], same[keep]
        roll = ~same
        if roll.any():
            rs = s[roll]
            st.close_buckets(rs, closed)
            st.minute[rs] = m[roll]
    ok = None if all_good else good & (v == v)
    if ok is None or ok.all():
        sg, vg = s, v
    else:
        sg, vg = s[ok], v[ok]
        st.bad[s[~ok]] += 1.0
    st.mn[sg] = np.minimum(st.mn[sg], vg)
    st.mx[sg] = np.maximum(st.mx[sg], vg)
    st.sm[sg] += vg
    st.cnt[sg] += 1.0
    lt = st.last_t[s]
    drop = (lt <= t) & (t < lt + st.heartbeat[s]) & (st.last_q[s] == q)
    drop &= ~(np.abs(v - st.last_v[s]) > st.deadband[s])  # NaN on either side: no comparison, dropped
    kept = np.flatnonzero(~drop)
    if kept.size:
        ks = s[kept]
        st.last_v[ks] = v[kept]
        st.last_q[ks] = q[kept]
        st.last_t[ks] = t[kept]
    return kept if index is None else index[kept]


def split_rounds(s: np.ndarray) -> list[np.ndarray] | None:
    """None when no slot repeats; else index arrays, in order, each holding every slot at most once
    (the k-th readings of every channel in round k), so that folding them round by round is folding
    the readings in order."""
    if np.unique(s).size == s.size:
        return None
    seen: dict[int, int] = {}
    rank = []
    for slot in s.tolist():
        k = seen.get(slot, 0)
        seen[slot] = k + 1
        rank.append(k)
    ranks = np.array(rank)
    return [np.flatnonzero(ranks == k) for k in range(int(ranks.max()) + 1)]


# --- decoding of register blocks ---------------------------------------------------------------

_KIND = {"uint16": 1, "int16": 2, "uint32": 3, "int32": 4, "float32": 5, "float64": 6}
_MAX_SENTINELS = 4
# How a channel's registers are decoded, as rows of FoldState.params (one column per slot): its
# slot, offset in the block, scale, offset, low, high, kind, byte order little, word order little,
# then the sentinels (NaN: none). A batch gathers the rows it needs for its channels' slots.
P_SLOT, P_OFF, P_SCALE, P_OFFSET, P_LOW, P_HIGH, P_KIND, P_BYTES, P_WORDS, P_SENT = range(10)
_ROWS = P_SENT + _MAX_SENTINELS
# VectorPlan.flags, what decoding a batch must do: 32/64-bit channels, little-endian bytes,
# sentinels, int16 channels, registers that are no channel's (gaps) or more than one word a channel.
WIDE, SWAP, SENTINELS, SIGNED, GAPS = 1, 2, 4, 8, 16


class VectorPlan:
    """A block's channels as arrays, for ``decode_reads``; ``vector_plan`` gives None instead when
    some channel cannot be decoded this way (bits, more than four sentinels, a non-finite scale)."""

    __slots__ = ("n", "slots", "channel_ids", "flags")

    def __init__(self, slots: np.ndarray, channel_ids: list[int], flags: int):
        self.n = slots.size
        self.slots = slots
        self.channel_ids = channel_ids
        self.flags = flags


def vector_plan(block: Block, state: FoldState) -> VectorPlan | None:
    if block.register_type in BIT_REGISTERS:
        return None
    columns = []
    flags = 0
    for ch in block.channels:
        if ch.data_type not in _KIND or len(ch.sentinels) > _MAX_SENTINELS:
            return None
        if not (math.isfinite(ch.scale) and math.isfinite(ch.offset)):
            return None
        if any(not isinstance(x, int | float) or not math.isfinite(x) for x in ch.sentinels):
            return None
        low = -math.inf if ch.range_low is None else ch.range_low
        high = math.inf if ch.range_high is None else ch.range_high
        sentinels = sorted(float(x) for x in ch.sentinels) + [math.nan] * (_MAX_SENTINELS - len(ch.sentinels))
        kind = _KIND[ch.data_type]
        flags |= (
            (WIDE if WORDS[ch.data_type] > 1 else 0)
            | (SWAP if ch.byte_order == "little" else 0)
            | (SENTINELS if ch.sentinels else 0)
            | (SIGNED if kind == 2 else 0)
        )
        columns.append(
            [
                state.slot(ch.id),
                ch.address - block.start,
                ch.scale,
                ch.offset,
                low,
                high,
                kind,
                ch.byte_order == "little",
                ch.word_order == "little",
                *sentinels,
            ]
        )
    offsets = [column[P_OFF] for column in columns]
    if flags & WIDE or block.count != len(columns) or offsets != list(range(len(columns))):
        flags |= GAPS
    params = np.array(columns, dtype=np.float64).reshape(len(columns), _ROWS).T
    slots = params[P_SLOT].astype(np.int64)
    state.params[:, slots] = params
    return VectorPlan(slots, [ch.id for ch in block.channels], flags)


def _swap_bytes(w: np.ndarray, little: np.ndarray) -> np.ndarray:
    return np.where(little, ((w & 0xFF) << 8) | (w >> 8), w)


class _Columns:
    """``p[k]``: row k of the decoding parameters for the batch's channels, gathered when needed."""

    __slots__ = ("params", "s", "rows")

    def __init__(self, params: np.ndarray, s: np.ndarray):
        self.params, self.s, self.rows = params, s, {}

    def __getitem__(self, k: int) -> np.ndarray:
        row = self.rows.get(k)
        if row is None:
            row = self.rows[k] = self.params[k][self.s]
        return row


def decode_reads(state: FoldState, plans: list[VectorPlan], datas: list[list[int]], flags: int):
    """The registers of several reads -> (slots, values, quality codes, good), one entry per channel
    in order. ``datas[k]`` holds at least its block's count of registers; ``flags`` is the union of
    the plans' flags."""
    s = np.concatenate([plan.slots for plan in plans]) if len(plans) > 1 else plans[0].slots
    p = _Columns(state.params, s)
    flat = np.fromiter(chain.from_iterable(datas), np.int64)
    total = flat.size
    if flags & GAPS or total != s.size:
        pos = p[P_OFF].astype(np.int64)
        if len(datas) > 1:
            counts = np.fromiter(map(len, datas), np.int64, len(datas))
            pos += np.repeat(np.cumsum(counts) - counts, [plan.n for plan in plans])
        w0 = flat[pos]
    else:  # one register per channel, no gaps: the registers are the channels, in order
        w0 = flat
    if flags & SWAP:
        byte_little = p[P_BYTES] > 0
        w0 = _swap_bytes(w0, byte_little)
    if flags & SIGNED:
        w0 = np.where((p[P_KIND] == 2) & (w0 >= 0x8000), w0 - 0x10000, w0)
    raw = w0.astype(np.float64)
    if flags & WIDE:
        kind = p[P_KIND]
        last = total - 1
        w1 = flat[np.minimum(pos + 1, last)]
        if flags & SWAP:
            w1 = _swap_bytes(w1, byte_little)
        word_little = p[P_WORDS] > 0
        u32 = np.where(word_little, (w1 << 16) | w0, (w0 << 16) | w1)
        raw = np.where(kind == 3, u32, raw)
        raw = np.where(kind == 4, np.where(u32 >= 0x80000000, u32 - 0x100000000, u32), raw)
        is_f32 = kind == 5
        if is_f32.any():
            with np.errstate(invalid="ignore"):  # NaN payloads: NaN either way
                f32 = u32.astype(np.uint32).view(np.float32).astype(np.float64)
            raw = np.where(is_f32, f32, raw)
        is_f64 = kind == 6
        if is_f64.any():
            w2 = flat[np.minimum(pos + 2, last)]
            w3 = flat[np.minimum(pos + 3, last)]
            if flags & SWAP:
                w2, w3 = _swap_bytes(w2, byte_little), _swap_bytes(w3, byte_little)
            words = [x.astype(np.uint64) for x in (w0, w1, w2, w3)]
            big = (words[0] << 48) | (words[1] << 32) | (words[2] << 16) | words[3]
            little = (words[3] << 48) | (words[2] << 32) | (words[1] << 16) | words[0]
            u64 = np.where(word_little, little, big)
            raw = np.where(is_f64, u64.view(np.float64), raw)
        with np.errstate(invalid="ignore", over="ignore"):
            value = raw * p[P_SCALE] + p[P_OFFSET]
        good = (p[P_LOW] <= value) & (value <= p[P_HIGH]) & np.isfinite(value)
    else:  # 16-bit registers with a finite scale and offset: always a finite value
        value = raw * p[P_SCALE] + p[P_OFFSET]
        good = (p[P_LOW] <= value) & (value <= p[P_HIGH])
    all_good = good.all()
    q = np.full(s.size, GOOD, dtype=np.float64)
    if not all_good:
        q[~good] = OUT_OF_RANGE_Q
        q[~good & ~np.isfinite(value)] = NAN_Q
    if flags & SENTINELS:
        hit = raw == p[P_SENT]
        for k in range(1, _MAX_SENTINELS):
            hit |= raw == p[P_SENT + k]
        if hit.any():  # (a NaN/Inf raw value never equals one, and is NaN as in decode_events)
            q[hit] = SENTINEL_Q
            good &= ~hit
            all_good = False
    if not all_good:
        value = np.where(good, value, np.nan)
    return s, value, q, good, all_good


def quality_strings(q: np.ndarray, all_good: bool) -> list[str]:
    if all_good:
        return [_GOOD_STR] * q.size
    names = QUALITIES
    return [names[int(c)] for c in q.tolist()]
