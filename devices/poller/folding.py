"""Decoding of register blocks, deadband compression and 1-minute aggregation of readings, compiled
with numba and run on a whole batch of reads at once.

The poller reads ~10,000 blocks (~100,000 channels) a second. Decoding, range-checking and folding
each channel in Python cost about half as much as pymodbus's own work for the read. On numpy columns
(the reads of a batch window at a time) the ~50 numpy calls of a batch were still 4.3% of the
poller's CPU (perf, bench/poll.py), half of it gathers missing the cache field by field. Compiled
loops over the batch (``decode`` and ``fold``, numba ``njit``, cached on disk) do the same work
reading by reading, in order, in one pass each: 2.9%.

``FoldState`` holds every channel's state in one array (``FoldState.a``, a row per slot):
the deadband memory (last stored value, quality, time) and the open minute bucket (min, max, sum,
count, bad count). How a channel is decoded is kept by slot too (``FoldState.params``, written when a
block's plan is made, see ``vector_plan``): the poller folds what is pending before a reload starts
workers with new plans.

``fold`` gives the same result, reading for reading, as folding the readings one at a time in
Python; ``decode`` the same values and qualities as ``decode.decode_events``
(tests/devices/test_storage_fastpath.py checks both against a one-at-a-time reference on random
streams of every data type and order).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from devices.choices import BIT_REGISTERS, Quality
from devices.poller import decode as _decode_py
from devices.poller.decode import IN_RANGE, NOT_FINITE, Block

# Quality strings as small codes (0: none yet). Unknown strings get a code on first sight.
QUALITIES: list[str | None] = [None, *(q.value for q in Quality)]
_QCODE: dict[str, int] = {q: i for i, q in enumerate(QUALITIES) if q is not None}
GOOD = _QCODE[Quality.GOOD.value]
NAN_Q = _QCODE[Quality.NAN.value]
SENTINEL_Q = _QCODE[Quality.SENTINEL.value]
OUT_OF_RANGE_Q = _QCODE[Quality.OUT_OF_RANGE.value]
GARBAGE_Q = _QCODE[Quality.GARBAGE.value]
_GOOD_STR = Quality.GOOD.value


def qcode(quality: str) -> int:
    code = _QCODE.get(quality)
    if code is None:
        code = _QCODE[quality] = len(QUALITIES)
        QUALITIES.append(quality)
    return code


# The state of a channel, its row of FoldState.a (a column per field, in this order): deadband and
# heartbeat, the last stored reading (value, time, quality code), the open minute bucket.
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
F_DEADBAND, F_HEARTBEAT, F_LAST_V, F_LAST_T, F_LAST_Q, F_MINUTE, F_MN, F_MX, F_SM, F_CNT, F_BAD, F_CID = range(
    len(_FIELDS)
)
_DEFAULTS = np.array(list(_FIELDS.values()), dtype=np.float64)

# How a channel's registers are decoded, its row of FoldState.params (columns in this order): offset in
# the block, scale, offset, low, high, kind, byte order little, word order little, then the
# sentinels (NaN: none).
_KIND = {"uint16": 1, "int16": 2, "uint32": 3, "int32": 4, "float32": 5, "float64": 6}
_MAX_SENTINELS = 4
P_OFF, P_SCALE, P_OFFSET, P_LOW, P_HIGH, P_KIND, P_BYTES, P_WORDS, P_SENT = range(9)
_ROWS = P_SENT + _MAX_SENTINELS


class FoldState:
    """Per-channel state in arrays, one slot per channel id."""

    def __init__(self, capacity: int = 256):
        self.slots: dict[int, int] = {}
        self.size = 0
        self.capacity = capacity
        self.a = np.repeat(_DEFAULTS[None, :], capacity, axis=0)
        self.params = np.full((capacity, _ROWS), math.nan, dtype=np.float64)
        # The plans' slots, one after the other: plan p's are table[start[p] : start[p] + n[p]].
        self.table = np.empty(0, dtype=np.int64)
        self.plan_start = np.empty(0, dtype=np.int64)
        self.plan_n = np.empty(0, dtype=np.int64)
        self.plan_ids: dict[tuple[int, ...], int] = {}

    def slot(self, channel_id: int) -> int:
        slot = self.slots.get(channel_id)
        if slot is None:
            if self.size == self.capacity:
                self.a = np.concatenate([self.a, np.repeat(_DEFAULTS[None, :], self.capacity, axis=0)])
                self.params = np.concatenate([self.params, np.full_like(self.params, math.nan)])
                self.capacity *= 2
            slot = self.slots[channel_id] = self.size
            self.size += 1
            self.a[slot, F_CID] = channel_id
        return slot

    def slot_array(self, channel_ids) -> np.ndarray:
        get = self.slots.get
        return np.fromiter(
            (s if (s := get(c)) is not None else self.slot(c) for c in channel_ids), np.int64, len(channel_ids)
        )

    def plan_id(self, slots: list[int]) -> int:
        """The id of a plan (its slots, in order) in the table, added on first sight."""
        key = tuple(slots)
        pid = self.plan_ids.get(key)
        if pid is None:
            pid = self.plan_ids[key] = self.plan_start.size
            self.plan_start = np.append(self.plan_start, self.table.size)
            self.plan_n = np.append(self.plan_n, len(slots))
            self.table = np.append(self.table, np.array(slots, dtype=np.int64))
        return pid

    def close_buckets(self, s: np.ndarray, out: list) -> None:
        """Emit the open buckets of slots ``s`` that hold something, and empty them."""
        closed = np.empty((s.size, 7), dtype=np.float64)
        out += bucket_rows(closed[: _close(self.a, s, closed)])


def _field(index: int) -> property:
    return property(lambda self: self.a[:, index], doc="the field's column of FoldState.a (a view), by slot")


for _index, _name in enumerate(_FIELDS):
    setattr(FoldState, _name, _field(_index))


@njit(cache=True, nogil=True, inline="always")
def _close_one(a, k, closed, n):  # pragma: no cover (compiled)
    """Emit slot k's open bucket into closed[n] if it holds something, and empty it; the new n."""
    if a[k, F_MINUTE] == a[k, F_MINUTE] and (a[k, F_CNT] > 0 or a[k, F_BAD] > 0):
        closed[n, 0] = a[k, F_CID]
        closed[n, 1] = a[k, F_MINUTE]
        closed[n, 2] = a[k, F_MN]
        closed[n, 3] = a[k, F_MX]
        closed[n, 4] = a[k, F_SM]
        closed[n, 5] = a[k, F_CNT]
        closed[n, 6] = a[k, F_BAD]
        n += 1
    a[k, F_MN] = np.inf
    a[k, F_MX] = -np.inf
    a[k, F_SM] = 0.0
    a[k, F_CNT] = 0.0
    a[k, F_BAD] = 0.0
    return n


@njit(cache=True, nogil=True)
def _close(a, s, closed):  # pragma: no cover (compiled)
    n = 0
    for k in s:
        n = _close_one(a, k, closed, n)
    return n


def bucket_rows(closed: np.ndarray) -> list[tuple]:
    """Rows of closed buckets (cid, minute, min, max, sum, count, bad) as storage's AggRow tuples."""
    out = []
    for cid, minute, mn, mx, sm, cnt, bad in closed.tolist():
        if mn <= mx:  # some value was read (an empty bucket has inf/-inf, a late one without a value NaN)
            out.append((int(cid), int(minute), mn, mx, sm, int(cnt), int(bad)))
        else:
            out.append((int(cid), int(minute), None, None, sm, int(cnt), int(bad)))
    return out


@njit(cache=True, nogil=True)
def _fold(a, s, t, v, good, q, kept, closed):  # pragma: no cover (compiled)
    nk = 0
    nc = 0
    for i in range(s.size):
        k = s[i]
        ti = t[i]
        vi = v[i]
        ok = good[i] and vi == vi
        m = ti // 60.0 * 60.0
        cur = a[k, F_MINUTE]
        if m != cur:
            if m < cur:  # a late reading: a bucket of its own (merged by the upsert), not stored raw
                closed[nc, 0] = a[k, F_CID]
                closed[nc, 1] = m
                closed[nc, 2] = vi  # NaN: none
                closed[nc, 3] = vi
                if ok:
                    closed[nc, 4] = vi if vi != 0.0 else 0.0
                    closed[nc, 5] = 1.0
                    closed[nc, 6] = 0.0
                else:
                    closed[nc, 4] = 0.0
                    closed[nc, 5] = 0.0
                    closed[nc, 6] = 1.0
                nc += 1
                continue
            nc = _close_one(a, k, closed, nc)  # a later minute: close the open bucket first
            a[k, F_MINUTE] = m
        # Min and max span every value read, out of range ones too (the trend shows the excursion);
        # the sum and count (the mean) are of good readings only. (False for NaN: no value.)
        if vi < a[k, F_MN]:
            a[k, F_MN] = vi
        if vi > a[k, F_MX]:
            a[k, F_MX] = vi
        if ok:
            a[k, F_SM] += vi
            a[k, F_CNT] += 1.0
        else:
            a[k, F_BAD] += 1.0
        lt = a[k, F_LAST_T]
        if lt <= ti and ti < lt + a[k, F_HEARTBEAT] and a[k, F_LAST_Q] == q[i]:
            if not (abs(vi - a[k, F_LAST_V]) > a[k, F_DEADBAND]):  # NaN on either side: no comparison
                continue
        a[k, F_LAST_V] = vi
        a[k, F_LAST_Q] = q[i]
        a[k, F_LAST_T] = ti
        kept[nk] = i
        nk += 1
    return nk, nc


def fold(
    state: FoldState, s: np.ndarray, t: np.ndarray, v: np.ndarray, good: np.ndarray, q: np.ndarray, closed: list
) -> np.ndarray:
    """Fold readings in order (a channel may repeat); return the indices of those to store.

    s: slots; t: receive times (epoch s); v: values (NaN for none); good: the reading's good flag;
    q: quality codes. Per reading, as one at a time: a reading for an earlier minute than the open
    bucket is a bucket of its own (merged by the database's upsert) and is not stored raw; a later
    minute closes the open bucket first; any value (out of range ones too) updates min/max, a good
    reading with a value sum/count, anything else counts as bad; then the reading is stored unless
    the last stored one has the same quality, is less than a heartbeat old, and (both having
    values) is within the deadband.
    Closed buckets are appended to ``closed`` as AggRow tuples.
    """
    kept = np.empty(s.size, dtype=np.int64)
    buckets = np.empty((s.size, 7), dtype=np.float64)
    nk, nc = _fold(state.a, s, t, v, good, q, kept, buckets)
    if nc:
        closed += bucket_rows(buckets[:nc])
    return kept[:nk]


# --- decoding of register blocks ---------------------------------------------------------------


class VectorPlan:
    """A block's channels for ``decode``: the plan's id in FoldState's table of slots (decoding
    parameters in FoldState.params, channel ids in FoldState.a) and their number; ``vector_plan``
    gives None instead when some channel cannot be decoded this way (bits, more than four
    sentinels, a non-finite scale)."""

    __slots__ = ("pid", "n")

    def __init__(self, pid: int, n: int):
        self.pid = pid
        self.n = n


def vector_plan(block: Block, state: FoldState) -> VectorPlan | None:
    if block.register_type in BIT_REGISTERS:
        return None
    columns = []
    for ch in block.channels:
        if ch.data_type not in _KIND or len(ch.sentinels) > _MAX_SENTINELS:
            return None
        if not (math.isfinite(ch.scale) and math.isfinite(ch.offset)):
            return None
        if any(not isinstance(x, int | float) or not math.isfinite(x) for x in ch.sentinels):
            return None
        low = -math.inf if ch.range_low is None else ch.range_low
        high = math.inf if ch.range_high is None else ch.range_high
        sentinels = [float(x) for x in ch.sentinels] + [math.nan] * (_MAX_SENTINELS - len(ch.sentinels))
        columns.append(
            [
                ch.address - block.start,
                ch.scale,
                ch.offset,
                low,
                high,
                _KIND[ch.data_type],
                ch.byte_order == "little",
                ch.word_order == "little",
                *sentinels,
            ]
        )
    slots = [state.slot(ch.id) for ch in block.channels]
    state.params[slots] = np.array(columns, dtype=np.float64).reshape(len(columns), _ROWS)
    return VectorPlan(state.plan_id(slots), len(slots))


# decode.classify itself, compiled into _decode: one range rule for both decoders. (numba's disk cache
# is keyed on this file: after changing classify, touch this file or clear the cache; the
# equivalence tests in tests/devices/test_storage_fastpath.py catch a stale one.)
_classify = njit(nogil=True, inline="always")(_decode_py.classify)


@njit(cache=True, nogil=True, inline="always")
def _word(flat, i, swap):  # pragma: no cover (compiled)
    w = flat[i]
    return ((w & 0xFF) << 8) | (w >> 8) if swap else w


@njit(cache=True, nogil=True)
def _decode(a, params, table, plan_start, plan_n, pids, flat, counts, times, s, c, t, v, q, good):  # pragma: no cover
    """Registers -> slot, channel id, time, engineering value, quality code, good, one per channel;
    True when all are good."""
    u32 = np.zeros(1, dtype=np.uint32)
    f32 = u32.view(np.float32)
    u64 = np.zeros(1, dtype=np.uint64)
    f64 = u64.view(np.float64)
    all_good = True
    i = 0
    start = 0
    for r in range(pids.size):
        pid = pids[r]
        first = plan_start[pid]
        received = times[r]
        for j in range(plan_n[pid]):
            k = table[first + j]
            s[i] = k
            c[i] = np.int64(a[k, F_CID])
            t[i] = received
            pos = start + np.int64(params[k, P_OFF])
            kind = params[k, P_KIND]
            if pos + (1 if kind <= 2.0 else 4 if kind == 6.0 else 2) > start + counts[r]:
                v[i] = np.nan  # fewer registers than the block's (the poller never batches such a read)
                q[i] = GARBAGE_Q
                good[i] = False
                all_good = False
                i += 1
                continue
            swap = params[k, P_BYTES] > 0
            w0 = _word(flat, pos, swap)
            if kind == 1.0:
                raw = float(w0)
            elif kind == 2.0:
                raw = float(w0 - 0x10000 if w0 >= 0x8000 else w0)
            else:
                w1 = _word(flat, pos + 1, swap)
                little = params[k, P_WORDS] > 0
                x = (w1 << 16) | w0 if little else (w0 << 16) | w1
                if kind == 3.0:
                    raw = float(x)
                elif kind == 4.0:
                    raw = float(x - 0x100000000 if x >= 0x80000000 else x)
                elif kind == 5.0:
                    u32[0] = x
                    raw = float(f32[0])
                else:
                    w2 = _word(flat, pos + 2, swap)
                    w3 = _word(flat, pos + 3, swap)
                    if little:
                        w0, w1, w2, w3 = w3, w2, w1, w0
                    u64[0] = np.uint64((w0 << 48) | (w1 << 32) | (w2 << 16) | w3)
                    raw = f64[0]
            value = raw * params[k, P_SCALE] + params[k, P_OFFSET]
            if (
                raw == params[k, P_SENT]
                or raw == params[k, P_SENT + 1]
                or raw == params[k, P_SENT + 2]
                or raw == params[k, P_SENT + 3]
            ):
                code = SENTINEL_Q  # (a NaN/Inf raw value never equals one, and is NaN as in decode_events)
                value = np.nan
            else:
                verdict = _classify(value, params[k, P_LOW], params[k, P_HIGH])
                if verdict == IN_RANGE:
                    code = GOOD
                elif verdict == NOT_FINITE:
                    code = NAN_Q
                    value = np.nan
                else:  # out of range: the value is kept, as in decode_events
                    code = OUT_OF_RANGE_Q
            v[i] = value
            if code == GOOD:
                good[i] = True
            else:
                good[i] = False
                all_good = False
            q[i] = code
            i += 1
        start += counts[r]
    return all_good


def decode(state: FoldState, pids: np.ndarray, flat: np.ndarray, counts: np.ndarray, times: np.ndarray, n: int):
    """Several reads -> (slots, channel ids, times, values, quality codes, good, all good), one
    entry per channel, in order. Read r: plan ``pids[r]``, received at ``times[r]``, ``counts[r]`` registers
    (at least its block's count) in ``flat``, after those of the reads before it; ``n`` channels
    in all."""
    s = np.empty(n, dtype=np.int64)
    c = np.empty(n, dtype=np.int64)
    t = np.empty(n, dtype=np.float64)
    v = np.empty(n, dtype=np.float64)
    q = np.empty(n, dtype=np.float64)
    good = np.empty(n, dtype=np.bool_)
    st = state
    all_good = _decode(
        st.a, st.params, st.table, st.plan_start, st.plan_n, pids, flat, counts, times, s, c, t, v, q, good
    )
    return s, c, t, v, q, good, all_good


_warm = False


def warm_up() -> None:
    """Compile the loops (or load them from numba's on-disk cache, ~0.3 s) for the argument types
    the writer passes, so that the poller's first batch does not stall its event loop (~2 s)."""
    global _warm
    if _warm:
        return
    state = FoldState(1)
    pid = state.plan_id([state.slot(0)])
    state.params[0] = [0, 1, 0, -math.inf, math.inf, 1, 0, 0, *[math.nan] * _MAX_SENTINELS]
    one = np.ones(1, dtype=np.int64)
    s, _c, t, v, q, good, _all_good = decode(state, one * pid, one, one, np.zeros(1), 1)
    fold(state, s, t, v, good, q, [])
    state.close_buckets(s, [])
    _warm = True


def quality_strings(q: np.ndarray, all_good: bool) -> list[str]:
    if all_good:
        return [_GOOD_STR] * q.size
    names = QUALITIES
    return [names[int(c)] for c in q.tolist()]
