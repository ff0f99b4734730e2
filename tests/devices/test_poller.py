"""The polling daemon against real pymodbus servers on loopback (free ports, short timeouts)."""

from __future__ import annotations

import asyncio
import itertools
import math

import pytest

from devices.choices import DeviceStatus, Quality
from devices.hooks import register_poller_sink
from devices.poller.decode import Block, ChannelSpec, decode_block, plan_blocks, raw_to_words, words_to_raw
from tests.devices.helpers import ch, device, free_port, poller, run_workers, set_registers, stop_workers, tcp_server

TYPES = {
    "int16": -1234,
    "uint16": 54321,
    "int32": -123456789,
    "uint32": 3_000_000_000,
    "float32": 12.5,
    "float64": -98765.4321,
}


def latest(readings, channel_id):
    values = [r for r in readings if r.channel_id == channel_id]
    return values[-1] if values else None


def test_known_words_decode_without_the_encoder():
    # 0x3F800000 = 1.0f; word-swapped and byte-swapped layouts of the same number.
    assert words_to_raw([0x3F80, 0x0000], "float32") == 1.0
    assert words_to_raw([0x0000, 0x3F80], "float32", word_order="little") == 1.0
    assert words_to_raw([0x803F, 0x0000], "float32", byte_order="little") == 1.0
    assert words_to_raw([0xFFFF], "int16") == -1
    assert words_to_raw([0xFFFF], "uint16") == 65535
    assert words_to_raw([0x0001, 0x0000], "uint32", word_order="little") == 1
    assert words_to_raw([0x0100], "uint16", byte_order="little") == 1


def test_blocks_are_coalesced_within_limits_and_split_on_gaps():
    chans = [ch(1, a, data_type="float32") for a in range(0, 200, 2)] + [ch(1, 1000), ch(1, 0, unit_id=2)]
    blocks = plan_blocks(chans, max_gap=8)
    assert all(b.count <= 125 for b in blocks)
    unit1 = [b for b in blocks if b.unit_id == 1]
    assert [(b.start, b.count) for b in unit1] == [(0, 124), (124, 76), (1000, 1)]
    assert sum(len(b.channels) for b in blocks) == len(chans)


@pytest.mark.parametrize("store", [True, False], ids=["batched", "one-by-one"])
async def test_every_data_type_byte_and_word_order_with_scale_and_offset(store):
    port = free_port()
    server = await tcp_server(port)
    channels, expected = [], {}
    address = 0
    for (dtype, raw), byte_order, word_order in itertools.product(TYPES.items(), ["big", "little"], ["big", "little"]):
        spec = ch(1, address, data_type=dtype, byte_order=byte_order, word_order=word_order, scale=0.5, offset=-3.0)
        await set_registers(server, 1, address, raw_to_words(raw, dtype, byte_order, word_order))
        channels.append(spec)
        expected[spec.id] = raw * 0.5 - 3.0
        address += spec.words
    p, readings, _ = poller(store=store)
    workers = await run_workers(p, [device(1, port, channels)], 0.3)
    await stop_workers(workers)
    await server.shutdown()
    for spec in channels:
        r = latest(readings, spec.id)
        assert r is not None and r.quality == Quality.GOOD, (spec, r)
        assert r.value == pytest.approx(expected[spec.id], rel=1e-6), (spec.data_type, spec.byte_order, spec.word_order)


async def test_exception_response_is_bad_quality_and_polling_goes_on():
    port = free_port()
    server = await tcp_server(port, size=50)
    good = ch(1, 1)
    beyond = ch(1, 500)  # the server has 50 registers: illegal data address (exception code 2)
    await set_registers(server, 1, 1, [42])
    p, readings, _ = poller()
    workers = await run_workers(p, [device(1, port, [good, beyond])], 0.5)
    assert workers[0].task is not None and not workers[0].task.done()
    await stop_workers(workers)
    await server.shutdown()
    bad = [r for r in readings if r.channel_id == beyond.id]
    ok = [r for r in readings if r.channel_id == good.id]
    assert bad and all(r.quality == Quality.EXCEPTION and r.value is None and not r.good for r in bad)
    assert len(ok) >= 5 and all(r.value == 42 for r in ok)


@pytest.mark.parametrize("store", [True, False], ids=["batched", "one-by-one"])
async def test_nan_inf_sentinel_and_out_of_range_are_rejected(store):
    port = free_port()
    server = await tcp_server(port)
    nan = ch(1, 0, data_type="float32")
    inf = ch(1, 2, data_type="float32")
    neg_inf = ch(1, 4, data_type="float64")
    sentinel = ch(1, 8, sentinels=frozenset({65535}))
    out_of_range = ch(1, 9, range_low=0, range_high=100)
    fine = ch(1, 10, range_low=0, range_high=100)
    await set_registers(server, 1, 0, raw_to_words(float("nan"), "float32"))
    await set_registers(server, 1, 2, raw_to_words(float("inf"), "float32"))
    await set_registers(server, 1, 4, raw_to_words(float("-inf"), "float64"))
    await set_registers(server, 1, 8, [65535, 101, 55])
    p, readings, _ = poller(store=store)
    workers = await run_workers(p, [device(1, port, [nan, inf, neg_inf, sentinel, out_of_range, fine])], 0.3)
    await stop_workers(workers)
    await server.shutdown()
    assert latest(readings, nan.id).quality == Quality.NAN
    assert latest(readings, inf.id).quality == Quality.NAN
    assert latest(readings, neg_inf.id).quality == Quality.NAN
    assert latest(readings, sentinel.id).quality == Quality.SENTINEL
    over = latest(readings, out_of_range.id)
    assert (over.quality, over.value, over.good) == (Quality.OUT_OF_RANGE, 101, False)  # the value is kept
    assert latest(readings, fine.id).value == 55
    assert all(r.value is None or math.isfinite(r.value) for r in readings)


async def test_silent_unit_is_demoted_while_the_others_keep_their_rate():
    port = free_port()
    other_port = free_port()
    # Unit 2 does not exist and the gateway stays silent for it (like a dead RS-485 slave).
    server = await tcp_server(port, units=(1,), silent_missing=True)
    other = await tcp_server(other_port)
    alive, dead, elsewhere = ch(1, 0, unit_id=1), ch(1, 0, unit_id=2), ch(2, 0)
    period = 0.05
    p, readings, statuses = poller(demote_after=3, probe_interval=5.0)
    poller_events = []
    register_poller_sink(poller_events.append)
    specs = [
        device(1, port, [alive, dead], period=period, timeout=0.1),
        device(2, other_port, [elsewhere], period=period),
    ]
    seconds = 2.0
    workers = await run_workers(p, specs, seconds)
    await stop_workers(workers)
    await server.shutdown()
    await other.shutdown()
    dead_readings = [r for r in readings if r.channel_id == dead.id]
    assert [r.quality for r in dead_readings] == [Quality.TIMEOUT] * 3  # then off scan until the probe
    assert (1, DeviceStatus.DEMOTED, "从站 2 无应答，已降级探测") in statuses
    # 100 ms timeouts on a 50 ms period: the overrun is announced (once, not once per cycle)
    overruns = [e for e in poller_events if e.kind == "overrun" and "dev1:" in e.detail]
    assert len(overruns) == 1
    expected = seconds / period
    alive_count = sum(1 for r in readings if r.channel_id == alive.id and r.good)
    other_count = sum(1 for r in readings if r.channel_id == elsewhere.id and r.good)
    # Three timeouts cost 0.3 s on the shared gateway; after demotion unit 1 runs at full rate.
    assert alive_count >= 0.75 * expected, alive_count
    assert other_count >= 0.9 * expected, other_count


async def test_demoted_unit_is_probed_periodically_not_every_cycle():
    port = free_port()
    server = await tcp_server(port, units=(1,), silent_missing=True)
    dead = ch(1, 0, unit_id=2)
    p, readings, statuses = poller(demote_after=2, probe_interval=0.3)
    workers = await run_workers(p, [device(1, port, [dead], timeout=0.05)], 1.2)
    await stop_workers(workers)
    await server.shutdown()
    timeouts = [r for r in readings if r.channel_id == dead.id]
    # 2 failures to demote, then roughly one probe per 0.3 s (not one per 50 ms cycle)
    assert 3 <= len(timeouts) <= 8
    assert [s[1] for s in statuses] == [DeviceStatus.DEMOTED]  # no flapping to offline while probing


async def test_reconnects_after_the_server_restarts():
    port = free_port()
    server = await tcp_server(port)
    spec = ch(1, 0)
    await set_registers(server, 1, 0, [7])
    p, readings, statuses = poller(backoff_base=0.05, backoff_cap=0.2)
    workers = await run_workers(p, [device(1, port, [spec])], 0.3)
    await server.shutdown()
    await asyncio.sleep(0.6)
    assert any(s[1] == DeviceStatus.OFFLINE for s in statuses)
    assert any(r.quality == Quality.DISCONNECTED for r in readings)
    server = await tcp_server(port)
    await set_registers(server, 1, 0, [8])
    await asyncio.sleep(1.0)
    await stop_workers(workers)
    await server.shutdown()
    assert latest(readings, spec.id).value == 8
    assert statuses[-1][1] == DeviceStatus.ONLINE


def test_backoff_is_capped_and_jittered():
    import random

    from devices.poller.daemon import Backoff

    b = Backoff(0.5, 30, rng=random.Random(1))
    delays = [b.next() for _ in range(12)]
    assert delays[0] <= 0.5 and delays[3] > delays[0]
    assert max(delays) <= 30 and min(delays[-4:]) >= 15
    assert len(set(delays[-4:])) == 4  # jitter: a fleet does not reconnect in lockstep


def test_decode_block_short_answer_is_garbage():
    spec = ChannelSpec(id=1, device_id=1, tag="X", unit_id=1, register_type="holding", address=0, data_type="float32")
    block = Block(1, "holding", 0, 2, [spec])
    assert decode_block(block, [1])[0][2] == Quality.GARBAGE
