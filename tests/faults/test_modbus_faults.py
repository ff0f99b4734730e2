"""Device faults against the real poller: a Modbus TCP slave of the test's own that misbehaves per
request, and what reaches the reading hook, the writer and the coil-write results.

A reply that does not answer its request (function code, unit, transaction, byte or register count,
truncated) is garbage of that read and never a value; a merged block refused with exception 02 is
split once, and only the refused channel is bad.
"""

from __future__ import annotations

import asyncio

import pytest

from devices.choices import DeviceStatus, Quality
from devices.poller.daemon import CoilJob
from tests.devices.helpers import ch, device, free_port, poller, stop_workers
from tests.faults.modbus_support import GOOD, Capture, FaultySlave, FaultyTcpServer, start, until

pytestmark = pytest.mark.e2e

# Per request of the first device, in turn: each bad reply between good ones (so the unit is never
# demoted), and what the poller must make of it.
SCHEDULE = [
    (GOOD, Quality.GOOD),
    ("wrong_fc", Quality.GARBAGE),  # FC04 (with the input registers' values) to an FC03 request
    (GOOD, Quality.GOOD),
    ("wrong_unit", Quality.GARBAGE),  # unit 7 answering a request to unit 0
    (GOOD, Quality.GOOD),
    ("tid0", Quality.GARBAGE),  # transaction id 0: pymodbus does not check it
    (GOOD, Quality.GOOD),
    ("byte_count", Quality.GARBAGE),  # byte count 2 with 4 bytes: pymodbus took the first register
    (GOOD, Quality.GOOD),
    ("truncated", Quality.GARBAGE),  # byte count 2, 1 byte: pymodbus raised and dropped the connection
    (GOOD, Quality.GOOD),
    ("more", Quality.GARBAGE),  # 2 registers (0xDEAD first) where 1 was asked
    (GOOD, Quality.GOOD),
    ("silence", Quality.TIMEOUT),
    (GOOD, Quality.GOOD),
    ("exception", Quality.EXCEPTION),
]


@pytest.mark.parametrize("store", [True, False], ids=["batched", "one-by-one"])
async def test_replies_that_do_not_answer_the_request_are_never_values(store):
    port = free_port()
    slave = FaultySlave(units=(0, 1))
    slave.registers[0][4] = 42
    slave.inputs[0][4] = 999  # what a reply with the wrong function code carries
    slave.registers[0][5] = 999  # what a reply of two registers would carry second
    slave.registers[1][4] = 42
    n = len(SCHEDULE)
    counter = {0: 0}

    def misbehave(request):
        if request.unit == 1:
            return "wrong_unit"  # (pymodbus dropped it: the read timed out)
        i = counter[0]
        counter[0] += 1
        return SCHEDULE[i % n][0]

    slave.misbehave = misbehave
    server = await FaultyTcpServer(slave, port).start()
    gas = ch(1, 4, unit_id=0)
    other = ch(2, 4, unit_id=1)
    p, _readings, statuses = poller(store=store, demote_after=100)
    seen = Capture(p)
    # (timeouts generous for a loaded machine: a slow good reply must not time out)
    specs = [device(1, port, [gas], period=0.02, timeout=0.3), device(2, port, [other], period=0.05, timeout=0.3)]
    workers = await start(p, specs)
    try:
        await until(lambda: len(seen.hook.get(gas.id, ())) >= 2 * n, timeout=30, what=f"{2 * n} readings of unit 0")
    finally:
        await stop_workers(workers)
        p.flush_reads()
        await server.stop()
    got = seen.hook[gas.id][: 2 * n]
    expected = [quality.value for _mode, quality in SCHEDULE] * 2
    modes = [m for r, m in zip(slave.requests, slave.modes, strict=True) if r.unit == 0]
    assert [q for _v, q in got] == expected, list(zip(modes, got, strict=False))
    assert all(v == 42 for v, q in got if q == Quality.GOOD) and all(v is None for v, q in got if q != Quality.GOOD)
    if store:  # the writer saw the same: no value of a bad reply is stored
        assert all(v == 42 for v, q in seen.written[gas.id] if q == Quality.GOOD)
        assert {q for _v, q in seen.written[gas.id]} == {q.value for _m, q in SCHEDULE}
    # A bad reply is that read's fault, not a lost connection.
    assert not any(s[1] == DeviceStatus.OFFLINE for s in statuses)
    assert all(q == Quality.GARBAGE for _v, q in seen.hook.get(other.id, [])) and seen.hook.get(other.id)


async def test_coil_writes_are_confirmed_only_by_a_true_echo_and_read_back():
    port = free_port()
    slave = FaultySlave(units=(1,))
    plan = {}  # (fc, address) -> mode

    slave.misbehave = lambda request: plan.get((request.fc, request.address), GOOD)
    server = await FaultyTcpServer(slave, port).start()
    p, _readings, _statuses = poller(store=False)
    finished = []
    p.coil_write_finished = lambda job, *, ok, readback, error: finished.append((job.command_id, ok, readback, error))
    spec = device(1, port, [ch(1, 0)], period=0.02, timeout=0.5)
    workers = await start(p, [spec])
    worker = workers[0]
    plan[(5, 3)] = "wrong_address"  # echoes coil 4
    plan[(5, 5)] = "wrong_value"  # echoes OFF for ON
    plan[(1, 6)] = "wrong_fc"  # read-back answered as discrete inputs
    plan[(5, 7)] = "truncated"
    try:
        await until(lambda: worker.connected, timeout=10, what="the worker to connect")
        for command_id, address in enumerate((2, 3, 5, 6, 7), start=1):
            worker.jobs.append(CoilJob(command_id, 1, address, True))
        await until(lambda: len(finished) >= 5, timeout=20, what="five coil writes to finish")
    finally:
        await stop_workers(workers)
        await server.stop()
    results = {command_id: (ok, error) for command_id, ok, _rb, error in finished}
    assert results[1] == (True, "")
    assert results[2][0] is False and "回显" in results[2][1]
    assert results[3][0] is False and "回显" in results[3][1]
    assert results[4][0] is False and "回读应答无效" in results[4][1]
    assert results[5][0] is False


async def test_an_illegal_register_in_a_merge_gap_splits_the_block_once_and_only_its_channel_is_bad():
    port = free_port()
    slave = FaultySlave(units=(1,))
    # Channels at 0, 1, 5, 6, 7 are read as one block 0+8; 3 (in the merge gap) and 6 (a channel)
    # are illegal addresses (exception 02), like a strict device's unmapped registers.
    slave.illegal = {3, 6}
    for address in (0, 1, 5, 6, 7):
        slave.registers[1][address] = 100 + address
    chans = {a: ch(1, a) for a in (0, 1, 5, 6, 7)}
    p, _readings, statuses = poller(demote_after=3)
    seen = Capture(p)
    spec = device(1, port, chans.values(), period=0.02, timeout=0.5)
    server = await FaultyTcpServer(slave, port).start()
    workers = await start(p, [spec])
    try:
        await until(lambda: len(seen.hook.get(chans[7].id, ())) >= 20, timeout=20, what="20 cycles")
        split_at = len(slave.requests)
        before = {cid: len(got) for cid, got in seen.hook.items()}
        server.drop_connections()  # the split survives a reconnect (only a reconfiguration re-merges)
        await until(lambda: len(slave.requests) > split_at + 60, timeout=20, what="polling after the reconnect")
    finally:
        await stop_workers(workers)
        p.flush_reads()
        await server.stop()
    for address, channel in chans.items():
        got = seen.hook[channel.id]
        # the read in flight when the connection drops may time out; nothing else is bad
        after = [r for r in got[before[channel.id] :] if r[1] not in (Quality.DISCONNECTED, Quality.TIMEOUT)]
        if address == 6:
            assert all(r == (None, Quality.EXCEPTION) for r in got[: before[channel.id]] + after)
        else:
            # good from the first cycle on: the pieces were re-read at once
            assert all(r == (100 + address, Quality.GOOD) for r in got[: before[channel.id]] + after), got[:3]
        assert len(after) >= 8
    reads = [(r.address, r.count) for r in slave.requests]
    assert reads[0] == (0, 8)
    # the first cycle: the block, its runs (0+2 good, 5+3 refused), then 5+3's channels one by one
    assert reads[1:6] == [(0, 2), (5, 3), (5, 1), (6, 1), (7, 1)]
    assert set(reads[6:]) == {(0, 2), (5, 1), (6, 1), (7, 1)}  # remembered, also after the reconnect
    assert not any(s[1] == DeviceStatus.DEMOTED for s in statuses)


async def test_a_block_refused_whole_is_not_split_every_cycle():
    # Every read refused (exception 04, a failing device): splitting finds no piece that answers, so
    # the block stays whole and is not split again before the probe interval.
    port = free_port()
    slave = FaultySlave(units=(1,))
    slave.misbehave = lambda request: "exception"
    chans = [ch(1, a) for a in (0, 2, 4)]
    p, _readings, _statuses = poller(demote_after=1000, probe_interval=30.0)
    seen = Capture(p)
    server = await FaultyTcpServer(slave, port).start()
    workers = await start(p, [device(1, port, chans, period=0.02, timeout=0.5)])
    try:
        await until(lambda: len(slave.requests) >= 30, timeout=20, what="30 requests")
    finally:
        await stop_workers(workers)
        await server.stop()
    reads = [(r.address, r.count) for r in slave.requests]
    assert reads[:4] == [(0, 5), (0, 1), (2, 1), (4, 1)]
    assert set(reads[4:]) == {(0, 5)}
    assert all(q == Quality.EXCEPTION for c in chans for _v, q in seen.hook[c.id])


async def test_the_poll_loop_survives_a_reply_storm():
    # Every kind of bad reply, at random, for a while: the worker never dies and values stay right.
    import random

    port = free_port()
    slave = FaultySlave(units=(0,))
    slave.registers[0][0:3] = [7, 8, 9]
    slave.inputs[0][0:3] = [1, 1, 1]
    rng = random.Random(15)
    modes = [mode for mode, _q in SCHEDULE if mode not in ("silence",)]
    slave.misbehave = lambda request: rng.choice(modes)
    server = await FaultyTcpServer(slave, port).start()
    chans = [ch(1, a, unit_id=0) for a in range(3)]
    p, _readings, _statuses = poller(demote_after=1000)
    seen = Capture(p)
    workers = await start(p, [device(1, port, chans, period=0.005, timeout=0.1)])
    try:
        await until(lambda: len(slave.requests) >= 300, timeout=30, what="300 requests")
        assert not workers[0].task.done()
    finally:
        await stop_workers(workers)
        p.flush_reads()
        await server.stop()
    for i, channel in enumerate(chans):
        values = {v for v, q in seen.hook[channel.id] if q == Quality.GOOD}
        assert values == {7 + i}
    await asyncio.sleep(0)
