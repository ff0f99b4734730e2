"""The writer's column-wise decoding and folding give exactly what decoding and folding one reading at
a time give: the same events, the same stored rows, the same 1-minute aggregates.

The reference below is the one-reading-at-a-time fold the writer used before it worked on columns
(kept here as the specification): per channel, a late reading is a bucket of its own; a new minute
closes the open bucket; any value updates min/max (out of range ones too), good readings sum/count,
others count as bad; a reading is stored unless the last stored one has the same quality, is under
a heartbeat old and (both having values) within the deadband.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from devices.hooks import ReadingEvent, Readings, evaluation_rows
from devices.poller.decode import ChannelSpec, decode_events, plan_blocks, raw_to_words
from devices.poller.storage import ReadingWriter, to_us


class _Track:
    def __init__(self, deadband=0.0, heartbeat=60.0):
        self.deadband, self.heartbeat = deadband, heartbeat
        self.last_v = self.last_q = self.last_t = self.minute = None
        self.mn, self.mx, self.sm, self.cnt, self.bad = math.inf, -math.inf, 0.0, 0, 0

    def close(self, cid, out):
        if self.minute is not None and (self.cnt or self.bad):
            if self.mn <= self.mx:
                out.append((cid, self.minute, self.mn, self.mx, self.sm, self.cnt, self.bad))
            else:
                out.append((cid, self.minute, None, None, self.sm, self.cnt, self.bad))
        self.mn, self.mx, self.sm, self.cnt, self.bad = math.inf, -math.inf, 0.0, 0, 0


class Reference:
    """One reading at a time."""

    def __init__(self):
        self.tracks: dict[int, _Track] = {}
        self.closed: list = []
        self.rows: list = []
        self.aggs: list = []
        self.received = 0

    def configure(self, cid, deadband, heartbeat):
        tr = self.tracks.setdefault(cid, _Track())
        tr.deadband, tr.heartbeat = max(0.0, deadband), max(0.001, heartbeat)

    def submit(self, events):
        for cid, _dev, v, good, q, dt, device_time in events:
            t = dt.timestamp()
            minute = int(t // 60) * 60
            tr = self.tracks.setdefault(cid, _Track())
            self.received += 1
            if tr.minute != minute:
                if tr.minute is not None and minute < tr.minute:
                    self.closed.append(
                        (cid, minute, v, v, v or 0.0, 1, 0)
                        if good and v is not None
                        else (cid, minute, v, v, 0.0, 0, 1)
                    )
                    continue
                tr.close(cid, self.closed)
                tr.minute = minute
            if v is not None:  # any value spans min/max (out of range ones too); good ones the mean
                tr.mn, tr.mx = min(tr.mn, v), max(tr.mx, v)
            if good and v is not None:
                tr.sm += v
                tr.cnt += 1
            else:
                tr.bad += 1
            lt = tr.last_t
            if lt is not None and q == tr.last_q and lt <= t < lt + tr.heartbeat:
                lv = tr.last_v
                if v is None or lv is None or abs(v - lv) <= tr.deadband:
                    continue
            tr.last_v, tr.last_q, tr.last_t = v, q, t
            dev_us = to_us(device_time) if device_time is not None else None
            self.rows.append((cid, int(t * 1_000_000), v, q, dev_us, "t"))

    def flush(self, now, final=False):
        current = int(now // 60) * 60
        for cid, tr in self.tracks.items():
            if tr.minute is not None and (final or tr.minute < current) and (tr.cnt or tr.bad):
                tr.close(cid, self.closed)
        self.aggs += self.closed
        self.closed = []


def _writer(tmp_path, name, chans, stored, clock):
    def store(rows, aggs):
        stored["rows"].extend(rows)
        stored["aggs"].extend(aggs)
        return len(rows)

    w = ReadingWriter(poller="t", spool_dir=tmp_path / name, spool_max_bytes=10**8, store=store, clock=lambda: clock[0])
    for ch in chans:
        w.configure(ch.id, ch.deadband, 5.0)  # a short heartbeat, so it is exercised
    return w


def _merged(aggs):
    out = {}
    for cid, minute, mn, mx, sm, cnt, bad in aggs:
        o = out.setdefault((cid, minute), [math.inf, -math.inf, 0.0, 0, 0])
        if mn is not None:
            o[0], o[1] = min(o[0], mn), max(o[1], mx)
        o[2] += sm
        o[3] += cnt
        o[4] += bad
    return out


def _devices():
    """Three devices: plain 16-bit gas/pressure channels, every wide type and order, sentinels."""
    plain = [
        ChannelSpec(1, 1, "GT-1", 1, "holding", 0, "uint16", scale=0.1, range_low=0, range_high=100, deadband=0.5),
        ChannelSpec(
            2, 1, "GT-2", 1, "holding", 1, "int16", scale=0.01, offset=-5, range_low=-20, range_high=20, deadband=0.05
        ),
        ChannelSpec(3, 1, "PT-1", 1, "holding", 3, "uint16", scale=0.001, deadband=0.02),  # no range, a gap
        ChannelSpec(4, 1, "TT-1", 1, "holding", 4, "int16", scale=0.1, range_low=-40, range_high=120, deadband=1.0),
    ]
    wide = []
    address = 0
    cid = 10
    for data_type in ("uint32", "int32", "float32", "float64", "int16", "uint16"):
        for byte_order in ("big", "little"):
            for word_order in ("big", "little"):
                cid += 1
                wide.append(
                    ChannelSpec(
                        cid,
                        2,
                        f"W-{cid}",
                        1,
                        "input",
                        address,
                        data_type,
                        byte_order,
                        word_order,
                        scale=0.5,
                        offset=1.0,
                        range_low=-1e6,
                        range_high=1e6,
                        deadband=0.5,
                    )
                )
                address += {"float64": 4, "int16": 1, "uint16": 1}.get(data_type, 2)
    sentinels = [
        ChannelSpec(40, 3, "S-1", 2, "holding", 0, "uint16", scale=0.1, sentinels=frozenset({65535, 0})),
        ChannelSpec(41, 3, "S-2", 2, "holding", 1, "int16", sentinels=frozenset({-1})),
        ChannelSpec(42, 3, "S-3", 2, "holding", 2, "float32", sentinels=frozenset({-9999.0}), range_low=-100),
    ]
    return {1: plain, 2: wide, 3: sentinels}


def _registers(chans, rng, spike):
    """Registers for a device's block: values near the last ones, sometimes a jump or garbage."""
    count = max(ch.address + ch.words for ch in chans)
    regs = [0] * count
    for ch in chans:
        r = rng.random()
        if ch.data_type.startswith("float"):
            value = rng.choice([12.5, 12.75, 13.0, -9999.0, math.nan, math.inf, 3e38, rng.uniform(-50, 50)])
        elif ch.data_type == "int16":
            value = rng.choice([-1, 0, 1, 250, -250, 32767, -32768])
        elif ch.data_type == "int32":
            value = rng.choice([-1, 0, 70000, -70000, 2**31 - 1, -(2**31)])
        elif ch.data_type == "uint32":
            value = rng.choice([0, 1, 70000, 2**32 - 1, 123456])
        else:
            value = rng.choice([0, 1, 500, 505, 510, 65535])
        if spike and r < 0.3:
            value = rng.choice([0, 1]) if not ch.data_type.startswith("float") else rng.uniform(-1e7, 1e7)
        words = raw_to_words(value, ch.data_type, ch.byte_order, ch.word_order)
        regs[ch.address : ch.address + len(words)] = words
    return regs


@pytest.mark.parametrize("seed", range(6))
def test_columns_give_the_same_events_rows_and_aggregates(tmp_path, seed):
    rng = random.Random(seed)
    devices = _devices()
    blocks = {d: plan_blocks(chans) for d, chans in devices.items()}
    assert all(len(b) == 1 for b in blocks.values())
    clock = [0.0]
    got = {"rows": [], "aggs": []}
    chans = [ch for cs in devices.values() for ch in cs]
    w = _writer(tmp_path, "w", chans, got, clock)
    ref = Reference()
    for ch in chans:
        ref.configure(ch.id, ch.deadband, 5.0)
    plans = {d: w.vector_plan(b[0]) for d, b in blocks.items()}
    assert all(plan is not None for plan in plans.values())
    at = datetime(2026, 3, 1, 8, 0, 50, tzinfo=UTC)
    for step in range(1500):
        at += timedelta(milliseconds=rng.choice([100, 100, 100, 100, 250, 3000]))
        if step == 700:
            at -= timedelta(seconds=70)  # the clock stepped back: readings for a closed minute
        if step % 100 == 50:
            at = at.replace(second=59, microsecond=990_000)  # this batch straddles a minute
        reads, expected = [], []
        for d, chans_d in devices.items():
            r = rng.random()
            if r < 0.03:  # the device times out: bad readings from the poller loop, folded one by one
                events = [ReadingEvent(ch.id, d, None, False, "timeout", at) for ch in chans_d]
                w.submit(events)
                ref.submit(events)
                continue
            if r < 0.5 and step % 7:  # not read in this batch
                continue
            data = _registers(chans_d, rng, spike=rng.random() < 0.05)
            at_d = at + timedelta(milliseconds=40 * d)  # one batch may straddle a minute
            reads.append((plans[d], data, d, at_d.timestamp(), blocks[d][0]))
            expected += decode_events(blocks[d][0], data, d, at_d, ReadingEvent)
        if reads:
            readings = w.fold_reads(reads)
            assert isinstance(readings, Readings)
            assert list(readings) == expected
            assert [tuple(e) for e in readings.rows()] == [tuple(e) for e in expected]
            assert list(evaluation_rows(readings)) == list(evaluation_rows(expected))
            ref.submit(expected)
        if rng.random() < 0.05:
            clock[0] = at.timestamp()
            w.flush()
            ref.flush(clock[0])
        if rng.random() < 0.005:  # reconfigured deadband
            w.configure(1, 0.2, 5.0)
            ref.configure(1, 0.2, 5.0)
    w.flush(final=True)
    ref.flush(clock[0], final=True)
    assert sorted(got["rows"], key=repr) == sorted(ref.rows, key=repr)
    assert _merged(got["aggs"]) == _merged(ref.aggs)
    assert w.stats["received"] == ref.received
    qualities = {row[3] for row in ref.rows}
    assert {"good", "nan", "sentinel", "out_of_range", "timeout"} <= qualities  # every case was met
    assert len(ref.rows) > 3000 and any(agg[5] == 1 for agg in ref.aggs)  # and late readings


@pytest.mark.parametrize("seed", range(3))
def test_submit_with_repeated_channels_folds_in_order(tmp_path, seed):
    """HTTP-style batches: many readings of the same channels in one call, some late or bad."""
    rng = random.Random(seed)
    clock = [0.0]
    got = {"rows": [], "aggs": []}
    chans = _devices()[1]
    w = _writer(tmp_path, "w", chans, got, clock)
    ref = Reference()
    for ch in chans:
        ref.configure(ch.id, ch.deadband, 5.0)
    at = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
    for _ in range(60):
        batch = []
        for _ in range(rng.randrange(1, 40)):
            at += timedelta(milliseconds=rng.choice([50, 100, 700, 4000, -61000]))
            cid = rng.choice([1, 2, 3, 4])
            good = rng.random() > 0.1
            value = round(rng.uniform(0, 3), 1) if good else None
            device_time = at - timedelta(milliseconds=5) if rng.random() < 0.3 else None
            batch.append(ReadingEvent(cid, 1, value, good, "good" if good else "crc", at, device_time))
        w.submit(batch)
        ref.submit(batch)
        clock[0] = at.timestamp()
        w.flush()
        ref.flush(clock[0])
    w.flush(final=True)
    ref.flush(clock[0], final=True)
    assert got["rows"] == ref.rows  # in the order given
    assert _merged(got["aggs"]) == _merged(ref.aggs)


def test_a_reading_is_kept_only_beyond_its_deadband(tmp_path):
    chans = _devices()[1]
    block = plan_blocks(chans)[0]
    stored = {"rows": [], "aggs": []}
    w = _writer(tmp_path, "w", chans, stored, [0.0])
    plan = w.vector_plan(block)
    at = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
    data = [500, 100, 0, 2000, 250]
    for k in range(20):  # 1.9 s of steady values: only the first reading of each channel is kept
        w.fold_reads([(plan, data, 1, (at + timedelta(milliseconds=100 * k)).timestamp(), block)])
    w.flush()
    assert len(stored["rows"]) == 4 and stored["aggs"] == []  # the minute is still open
    later = (at + timedelta(seconds=2)).timestamp()
    w.fold_reads([(plan, [510, 100, 0, 2000, 250], 1, later, block)])  # GT-1 +1.0 > 0.5
    w.flush(final=True)
    assert [r[2] for r in stored["rows"] if r[0] == 1] == [50.0, 51.0]
    (agg,) = [a for a in stored["aggs"] if a[0] == 1]
    assert agg[5] == 21 and agg[2] == 50.0 and agg[3] == 51.0


def test_blocks_the_columns_cannot_decode_have_no_plan(tmp_path):
    w = _writer(tmp_path, "w", [], {"rows": [], "aggs": []}, [0.0])
    coils = plan_blocks([ChannelSpec(1, 1, "XV-1", 1, "coil", 0)])[0]
    many = plan_blocks([ChannelSpec(2, 1, "S", 1, "holding", 0, sentinels=frozenset({1, 2, 3, 4, 5}))])[0]
    assert w.vector_plan(coils) is None and w.vector_plan(many) is None


def test_replanned_blocks_share_their_plan_and_the_loops_compile_once(tmp_path):
    """A reload plans every block again (new Block objects): the same channels in the same order get
    the same plan, so the table of slots does not grow with reloads. The state grows past its first
    capacity without losing what it holds. And the compiled loops see one set of argument types
    only, so no batch ever waits for numba to compile."""
    from devices.poller import folding

    stored = {"rows": [], "aggs": []}
    chans = [
        ChannelSpec(100 + i, 1 + i // 10, f"GT-{i}", 1, "holding", i % 10, scale=0.1, range_low=0, range_high=100)
        for i in range(400)  # more than FoldState's first capacity (256 slots)
    ]
    w = _writer(tmp_path, "w", chans, stored, [0.0])
    blocks = [plan_blocks([ch for ch in chans if ch.device_id == d])[0] for d in range(1, 41)]
    plans = [w.vector_plan(b) for b in blocks]
    again = [w.vector_plan(plan_blocks(list(b.channels))[0]) for b in blocks]
    assert [p.pid for p in plans] == [p.pid for p in again] == list(range(40))
    swapped = plan_blocks(list(blocks[0].channels))[0]
    swapped.channels.reverse()
    assert w.vector_plan(swapped).pid == 40
    at = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
    data = [100 + i for i in range(10)]
    readings = w.fold_reads([(p, data, d + 1, at.timestamp(), blocks[d]) for d, p in enumerate(plans)])
    assert list(readings) == [e for d, b in enumerate(blocks) for e in decode_events(b, data, d + 1, at, ReadingEvent)]
    w.submit([ReadingEvent(100, 1, None, False, "timeout", at + timedelta(seconds=1))])
    w.flush(final=True)
    assert len(stored["rows"]) == 401 and len(stored["aggs"]) == 400
    assert {a[0]: (a[5], a[6]) for a in stored["aggs"]}[100] == (1, 1)
    for kernel in (folding._decode, folding._fold, folding._close):
        assert len(kernel.signatures) == 1, kernel


def test_a_read_shorter_than_its_block_never_reads_past_its_registers(tmp_path):
    """The poller sends short responses to decode_events (all garbage); the compiled decode, handed
    one anyway, marks the channels whose registers are missing as garbage instead of reading the
    next read's registers (or past the end: numba does not check bounds)."""
    chans = _devices()[1]
    block = plan_blocks(chans)[0]
    w = _writer(tmp_path, "w", chans, {"rows": [], "aggs": []}, [0.0])
    plan = w.vector_plan(block)
    at = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC).timestamp()
    short = w.fold_reads([(plan, [500, 100], 1, at, block)])  # registers 0-1 of 0-4
    assert [(r.channel_id, r.quality) for r in short] == [(1, "good"), (2, "good"), (3, "garbage"), (4, "garbage")]
    both = w.fold_reads([(plan, [500, 100], 1, at + 1, block), (plan, [500, 100, 0, 2000, 250], 1, at + 2, block)])
    assert [r.quality for r in both][:4] == ["good", "good", "garbage", "garbage"]
    assert [r.value for r in both][4:] == [50.0, -4.0, 2.0, 25.0]
