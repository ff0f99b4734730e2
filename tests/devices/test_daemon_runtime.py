"""The daemon's own process settings: uvloop and the GC tuning used by ``manage.py poll_devices``
(PollerConfig.from_settings) still poll a real pymodbus server, store readings and stop cleanly."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import threading

import pytest

from devices.choices import Quality
from devices.hooks import register_reading_sink
from devices.models import Channel, Device, Reading
from devices.poller.daemon import GC_THRESHOLD, PollerConfig, loop_factory, run_forever
from devices.poller.storage import ReadingWriter
from tests.devices.helpers import free_port, set_registers, tcp_server

pytestmark = pytest.mark.django_db(transaction=True)


class ServerThread(threading.Thread):
    """A pymodbus TCP server on its own event loop, because run_forever owns the main thread."""

    def __init__(self, port: int, words: list[int]):
        super().__init__(daemon=True)
        self.port, self.words = port, words
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()

    def run(self):
        async def main():
            self.server = await tcp_server(self.port)
            await set_registers(self.server, 1, 0, self.words)
            self.ready.set()
            await asyncio.Event().wait()

        try:
            self.loop.run_until_complete(main())
        except RuntimeError:
            pass  # stopped

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)


def test_production_settings_use_uvloop_and_tuned_gc():
    config = PollerConfig.from_settings()
    assert config.event_loop == "uvloop" and config.gc_tuning
    import uvloop

    assert loop_factory("uvloop") is uvloop.new_event_loop
    assert loop_factory("asyncio") is None


def test_daemon_on_uvloop_with_gc_tuning_polls_stores_and_restores_the_gc(world, tmp_path):
    port = free_port()
    server = ServerThread(port, [250, 0xFFFF])
    server.start()
    assert server.ready.wait(5)
    device = Device.objects.create(
        enterprise=world.here, name="罐区网关", host="127.0.0.1", port=port, poll_period_ms=50, timeout_ms=200
    )
    gas = Channel.objects.create(device=device, tag="GT-1", name="gas", address=0, scale=0.1, deadband=0)
    temp = Channel.objects.create(device=device, tag="TT-1", name="temp", address=1, data_type="int16", deadband=0)
    seen, loops = [], set()

    def sink(events):
        loops.add(type(asyncio.get_running_loop()).__module__.split(".")[0])
        seen.extend(events)

    register_reading_sink(sink)
    config = PollerConfig(
        name="uv",
        reload_interval=0.3,
        stats_interval=0.3,
        live_push_interval=0,
        backoff_base=0.05,
        event_loop="uvloop",
        gc_tuning=True,
    )
    writer = ReadingWriter(poller="uv", spool_dir=tmp_path / "spool", spool_max_bytes=10**6, flush_interval=0.1)
    before = gc.get_threshold()
    seen_threshold = []
    threading.Timer(0.5, lambda: seen_threshold.append(gc.get_threshold())).start()
    timer = threading.Timer(1.5, os.kill, args=(os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        run_forever(config, writer)
    finally:
        timer.cancel()
        server.stop()
    assert loops == {"uvloop"}
    assert seen_threshold == [GC_THRESHOLD]
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    good = [e for e in seen if e.channel_id == gas.pk and e.quality == Quality.GOOD]
    assert len(good) >= 10 and good[-1].value == pytest.approx(25.0)
    assert any(e.channel_id == temp.pk and e.value == -1 for e in seen)  # int16 0xFFFF
    assert Reading.objects.filter(channel=gas, value__gt=24.99, value__lt=25.01).exists()
