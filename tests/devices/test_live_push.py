"""The poller pushes each device's newest value per channel to the channel pages' group."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from devices.hooks import ReadingEvent
from devices.poller.daemon import DeviceWorker, live_group
from devices.poller.decode import plan_blocks
from tests.devices.helpers import ch, device, poller


class _Layer:
    def __init__(self, fail=False):
        self.sent, self.fail = [], fail

    async def group_send(self, group, message):
        if self.fail:
            raise ConnectionError("redis went away")
        self.sent.append((group, message))


def _worker(p, device_id, channels):
    spec = device(device_id, 1502, channels)
    worker = DeviceWorker(spec, p)
    p.workers[device_id] = worker
    return worker


def test_push_sends_the_newest_value_of_each_channel_and_forgets_the_cycles(monkeypatch):
    layer = _Layer()
    monkeypatch.setattr("channels.layers.get_channel_layer", lambda: layer)
    p, _readings, _statuses = poller(live_push_interval=1.0)
    a, b = ch(7, 0), ch(7, 1)
    worker = _worker(p, 7, [a, b])
    t0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    worker.recent.append([ReadingEvent(a.id, 7, 1.0, True, "good", t0), ReadingEvent(b.id, 7, 2.0, True, "good", t0)])
    t1 = t0 + timedelta(milliseconds=100)
    worker.recent.append([ReadingEvent(a.id, 7, 1.5, True, "good", t1)])  # b's unit did not answer this cycle
    asyncio.run(p.push_live())
    ((group, message),) = layer.sent
    assert group == live_group(7)
    assert message["values"] == {
        str(a.id): [1.5, "good", t1.timestamp()],
        str(b.id): [2.0, "good", t0.timestamp()],  # its newest, from the earlier cycle
    }
    assert worker.recent == []
    asyncio.run(p.push_live())
    assert len(layer.sent) == 1  # nothing new, nothing sent


def test_nothing_piles_up_when_no_layer_can_take_the_values(monkeypatch):
    p, _readings, _statuses = poller(live_push_interval=1.0)
    worker = _worker(p, 8, [ch(8, 0)])
    event = ReadingEvent(worker.spec.channels[0].id, 8, 3.0, True, "good", datetime.now(UTC))
    for layer in (None, _Layer(fail=True)):
        monkeypatch.setattr("channels.layers.get_channel_layer", lambda layer=layer: layer)
        worker.recent.extend([[event]] * 5)
        asyncio.run(p.push_live())
        assert worker.recent == []


def test_batched_reads_and_cycle_events_give_the_newest_value_of_each_channel(monkeypatch):
    """Good block reads reach the push as batches (newest read of each block wins); a newer event of
    a cycle (here a timeout) wins over an older batched value."""
    layer = _Layer()
    monkeypatch.setattr("channels.layers.get_channel_layer", lambda: layer)
    p, readings, _statuses = poller(live_push_interval=1.0)
    a, b = ch(9, 0), ch(9, 1)
    worker = _worker(p, 9, [a, b])
    block = plan_blocks([a, b])[0]
    plan = p.writer.vector_plan(block)
    t0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    t1, t2 = t0 + timedelta(milliseconds=100), t0 + timedelta(milliseconds=200)

    async def run():
        p.add_read(plan, [10, 20], 9, t0.timestamp(), block)
        p.add_read(plan, [11, 21], 9, t1.timestamp(), block)  # the same block again: the first read is flushed first
        p.flush_reads()
        p.emit([ReadingEvent(b.id, 9, None, False, "timeout", t2)])
        worker.recent.append([ReadingEvent(b.id, 9, None, False, "timeout", t2)])
        await p.push_live()

    asyncio.run(run())
    assert [(r.channel_id, r.value) for r in readings[:4]] == [(a.id, 10), (b.id, 20), (a.id, 11), (b.id, 21)]
    ((group, message),) = layer.sent
    assert group == live_group(9)
    assert message["values"] == {str(a.id): [11, "good", t1.timestamp()], str(b.id): [None, "timeout", t2.timestamp()]}
    assert p.live_batches == [] and worker.recent == []


def test_a_devices_other_readings_come_after_its_batched_ones_and_the_window_flushes():
    p, readings, _statuses = poller()
    a, b = ch(5, 0), ch(6, 0)
    block_a, block_b = plan_blocks([a])[0], plan_blocks([b])[0]
    t0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    t1 = t0 + timedelta(milliseconds=50)

    async def run():
        p.add_read(p.writer.vector_plan(block_a), [7], 5, t0.timestamp(), block_a)
        p.add_read(p.writer.vector_plan(block_b), [8], 6, t0.timestamp(), block_b)
        p.emit([ReadingEvent(a.id, 5, None, False, "timeout", t1)])  # device 5: its batch goes first
        assert p.pending == []
        p.add_read(p.writer.vector_plan(block_b), [9], 6, t1.timestamp(), block_b)
        await asyncio.sleep(p.config.batch_window * 4)  # the window closes by itself

    asyncio.run(run())
    assert [(r.channel_id, r.value, r.quality) for r in readings] == [
        (a.id, 7, "good"),
        (b.id, 8, "good"),
        (a.id, None, "timeout"),
        (b.id, 9, "good"),
    ]
    assert p.writer.stats["received"] == 4
