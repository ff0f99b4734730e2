"""The writer's fast path (fold_block) stores exactly what the general path (decode + submit) stores."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from devices.hooks import ReadingEvent
from devices.poller.decode import ChannelSpec, decode_events, plan_blocks
from devices.poller.storage import ReadingWriter


def _channels(with_float: bool = False):
    chans = [
        ChannelSpec(1, 1, "GT-1", 1, "holding", 0, "uint16", scale=0.1, range_low=0, range_high=100, deadband=0.5),
        ChannelSpec(
            2, 1, "GT-2", 1, "holding", 1, "int16", scale=0.01, offset=-5, range_low=-20, range_high=20, deadband=0.05
        ),
        ChannelSpec(3, 1, "PT-1", 1, "holding", 3, "uint16", scale=0.001, deadband=0.02),  # no range, a gap
        ChannelSpec(4, 1, "TT-1", 1, "holding", 4, "int16", scale=0.1, range_low=-40, range_high=120, deadband=1.0),
    ]
    if with_float:
        chans.append(ChannelSpec(5, 1, "FT-1", 1, "holding", 5, "float32", deadband=0.1))
    return chans


def _writer(tmp_path, name, chans, stored):
    def store(rows, aggs):
        stored["rows"].extend(rows)
        stored["aggs"].extend(aggs)
        return len(rows)

    w = ReadingWriter(poller="t", spool_dir=tmp_path / name, spool_max_bytes=10**8, store=store, clock=lambda: 0.0)
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


@pytest.mark.parametrize("seed", range(6))
def test_fast_path_stores_the_same_rows_and_aggregates(tmp_path, seed):
    rng = random.Random(seed)
    chans = _channels(with_float=seed == 5)  # a float channel sends the whole block the general way
    block = plan_blocks(chans)[0]
    fast_block = plan_blocks(chans)[0]
    a, b = {"rows": [], "aggs": []}, {"rows": [], "aggs": []}
    fast, slow = _writer(tmp_path, "fast", chans, a), _writer(tmp_path, "slow", chans, b)
    regs = [500, 0, 7, 2000, 250, 0, 0]
    at = datetime(2026, 3, 1, 8, 0, 50, tzinfo=UTC)
    fast_reads = 0
    for step in range(3000):
        at += timedelta(milliseconds=rng.choice([100, 100, 100, 100, 250, 3000]))
        r = rng.random()
        if r < 0.01:  # the device times out: bad readings from the poller loop
            events = [ReadingEvent(ch.id, 1, None, False, "timeout", at) for ch in chans]
            fast.submit(events)
            slow.submit(events)
            continue
        for i in range(len(regs)):
            if r < 0.05:
                regs[i] = max(0, min(65535, regs[i] + rng.randrange(-30, 31)))  # moves beyond deadbands
            else:
                regs[i] = max(0, min(65535, regs[i] + rng.choice([-1, 0, 0, 0, 0, 0, 0, 0, 0, 1])))
        data = list(regs)
        if rng.random() < 0.02:  # a spike: out of range, negative int16, for this read only
            data[rng.randrange(len(data))] = rng.randrange(0, 65536)
        expected = decode_events(block, data, 1, at, ReadingEvent)
        got = fast.fold_block(fast_block, data, 1, at)
        assert got == expected
        fast_reads += fast_block.fold_plan[1] is not None
        slow.submit(expected)
        if rng.random() < 0.05:
            fast.flush()
            slow.flush()
        if rng.random() < 0.002:  # reconfigured deadband
            fast.configure(1, 0.2, 5.0)
            slow.configure(1, 0.2, 5.0)
    fast.flush(final=True)
    slow.flush(final=True)
    assert sorted(a["rows"]) == sorted(b["rows"])
    got, want = _merged(a["aggs"]), _merged(b["aggs"])
    assert got.keys() == want.keys()
    for key, (mn, mx, sm, cnt, bad) in want.items():
        assert got[key][0] == mn and got[key][1] == mx and (cnt, bad) == (got[key][3], got[key][4]), key
        assert got[key][2] == pytest.approx(sm, rel=1e-9, abs=1e-9), key
    assert fast.stats["received"] == slow.stats["received"]
    if seed != 5:
        assert fast_reads > 1000  # the fast path was really taken
    else:
        assert fast_reads == 0  # a float channel: the general decoder for the whole block


def test_fast_path_keeps_a_reading_only_beyond_its_deadband(tmp_path):
    chans = _channels()
    block = plan_blocks(chans)[0]
    stored = {"rows": [], "aggs": []}
    w = _writer(tmp_path, "w", chans, stored)
    at = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
    data = [500, 100, 0, 2000, 250]
    for k in range(20):  # 1.9 s of steady values: only the first reading of each channel is kept
        w.fold_block(block, data, 1, at + timedelta(milliseconds=100 * k))
    assert block.fold_plan[1] is not None
    w.flush()
    assert len(stored["rows"]) == 4 and stored["aggs"] == []  # the minute is still open
    w.fold_block(block, [510, 100, 0, 2000, 250], 1, at + timedelta(seconds=2))  # GT-1 +1.0 > 0.5
    w.flush(final=True)
    assert [r[2] for r in stored["rows"] if r[0] == 1] == [50.0, 51.0]
    (agg,) = [a for a in stored["aggs"] if a[0] == 1]
    assert agg[5] == 21 and agg[2] == 50.0 and agg[3] == 51.0
