"""The poller's hot-path decoder gives the same verdicts as the general path: fast uint16/int16
channels, open ranges, sentinels, out of range, NaN/Inf from floats and from absurd scales."""

from __future__ import annotations

import math

import pytest

from devices.choices import Quality
from devices.hooks import ReadingEvent
from devices.poller.decode import decode_block, decode_events, plan_blocks, raw_to_words
from tests.devices.helpers import ch


def events(channels, data):
    block = plan_blocks(channels)[0]
    return {e.channel_id: e for e in decode_events(block, data, 7, "now", ReadingEvent)}


def test_fast_channels_scale_range_and_sentinels():
    chans = [
        ch(1, 0, scale=0.1, range_low=0, range_high=100),  # uint16 -> 25.0
        ch(1, 1, data_type="int16"),  # 0xFFFF -> -1, no range limits
        ch(1, 2, scale=0.1, range_low=0, range_high=100),  # 1001 -> 100.1 out of range
        ch(1, 3, sentinels=frozenset({0x7FFF})),
        ch(1, 4, data_type="int16", range_low=-10),  # -20 below the low limit, no high limit
    ]
    got = events(chans, [250, 0xFFFF, 1001, 0x7FFF, 0x10000 - 20])
    ids = [c.id for c in chans]
    assert got[ids[0]] == ReadingEvent(ids[0], 7, 25.0, True, Quality.GOOD, "now", None)
    assert got[ids[1]].value == -1 and got[ids[1]].good
    # Out of range is bad quality but keeps its value (a saturated gas detector is evaluated as a leak).
    over = got[ids[2]]
    assert (over.value, over.good, over.quality) == (pytest.approx(100.1), False, Quality.OUT_OF_RANGE)
    assert got[ids[3]].quality == Quality.SENTINEL and got[ids[3]].value is None
    assert (got[ids[4]].value, got[ids[4]].good, got[ids[4]].quality) == (-20, False, Quality.OUT_OF_RANGE)


def test_floats_nan_inf_and_overflowing_scale_are_bad_not_infinite():
    nan_words = raw_to_words(math.nan, "float32")
    inf_words = raw_to_words(math.inf, "float32")
    big_words = raw_to_words(1e300, "float64")
    chans = [
        ch(1, 0, data_type="float32"),
        ch(1, 2, data_type="float32"),
        ch(1, 4, data_type="float64", scale=1e10),  # 1e310 overflows to inf
        ch(1, 8, scale=1e306),  # uint16 with a scale too large for the fast path: 6.5e310 = inf
        ch(1, 9, data_type="float32", word_order="little"),
    ]
    data = nan_words + inf_words + big_words + [65535] + raw_to_words(1.5, "float32", word_order="little")
    got = events(chans, data)
    assert [got[c.id].quality for c in chans] == [Quality.NAN, Quality.NAN, Quality.NAN, Quality.NAN, Quality.GOOD]
    assert got[chans[4].id].value == 1.5


def test_short_answer_and_bits():
    chans = [ch(1, 0), ch(1, 1)]
    assert {e.quality for e in events(chans, [1]).values()} == {Quality.GARBAGE}
    coils = [ch(1, 0, register_type="coil", data_type="bool"), ch(1, 1, register_type="coil", data_type="bool")]
    got = events(coils, [True, False])
    assert [got[c.id].value for c in coils] == [1.0, 0.0]
    block = plan_blocks(coils)[0]
    assert block.bits and [v for _, v, _ in decode_block(block, [True])] == [1.0, None]


def test_both_decoders_keep_the_value_of_an_out_of_range_reading(tmp_path):
    """The event decoder and the compiled batch decoder (the poller's two paths, held equal) give a
    reading outside its range its value, bad, quality out_of_range: the engine evaluates 120 %LEL as
    a leak. NaN/Inf and sentinels still have no value."""
    from devices.poller.decode import ChannelSpec
    from devices.poller.storage import ReadingWriter

    chans = [
        ChannelSpec(1, 1, "GT-1", 1, "holding", 0, "uint16", scale=0.1, range_low=0, range_high=100),  # 1200
        ChannelSpec(2, 1, "GT-2", 1, "holding", 1, "int16", scale=0.1, range_low=0, range_high=100),  # -5.0
        ChannelSpec(3, 1, "GT-3", 1, "holding", 2, "uint16", scale=0.1, range_low=0, range_high=100),  # 55.0
        ChannelSpec(4, 1, "GT-4", 1, "holding", 3, "float32", range_high=100),  # 3e38
        ChannelSpec(5, 1, "GT-5", 1, "holding", 5, "float32", range_high=100),  # inf
        ChannelSpec(6, 1, "GT-6", 1, "holding", 7, "uint16", range_high=100, sentinels=frozenset({65535})),
    ]
    data = [1200, 0x10000 - 50, 550, *raw_to_words(3e38, "float32"), *raw_to_words(math.inf, "float32"), 65535]
    block = plan_blocks(chans)[0]
    expected = decode_events(block, data, 1, "now", ReadingEvent)
    assert [(e.value, e.good, e.quality) for e in expected] == [
        (pytest.approx(120.0), False, Quality.OUT_OF_RANGE),
        (pytest.approx(-5.0), False, Quality.OUT_OF_RANGE),
        (pytest.approx(55.0), True, Quality.GOOD),
        (pytest.approx(3e38, rel=1e-6), False, Quality.OUT_OF_RANGE),
        (None, False, Quality.NAN),
        (None, False, Quality.SENTINEL),
    ]
    stored, aggs = [], []

    def store(rows, closed):
        stored.extend(rows)
        aggs.extend(closed)
        return len(rows)

    writer = ReadingWriter(poller="t", spool_dir=tmp_path, spool_max_bytes=10**6, store=store)
    plan = writer.vector_plan(block)
    assert plan is not None
    batch = writer.fold_reads([(plan, data, 1, 1_000_000.0, block)])
    got = [(cid, value, good, quality) for cid, value, good, quality, _t in batch.evaluation_rows()]
    assert got == [(e.channel_id, e.value, e.good, e.quality) for e in expected]
    writer.flush(final=True)  # stored with its value too: the raw readings show the excursion
    assert {row[0]: (row[2], row[3]) for row in stored}[1] == (pytest.approx(120.0), Quality.OUT_OF_RANGE)
    # and the minute's trend shows it: min/max span it, the mean (sum, count) is of good readings only.
    by_channel = {agg[0]: agg[2:] for agg in aggs}
    assert by_channel[1] == (pytest.approx(120.0), pytest.approx(120.0), 0.0, 0, 1)
    assert by_channel[3] == (pytest.approx(55.0), pytest.approx(55.0), pytest.approx(55.0), 1, 0)
    assert by_channel[5] == (None, None, 0.0, 0, 1)  # inf: no value
