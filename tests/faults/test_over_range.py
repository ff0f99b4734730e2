"""A gas detector that runs past the top of its range, read by the real poller from a Modbus TCP
server on loopback: the level-1 high-high alert is raised at once (the rule's 30 s on-delay is not
waited for), its linkage is requested and the poller writes the shut-off coil. Both decoders (the
compiled batch path with a reading writer, the event path without) are exercised."""

from __future__ import annotations

import asyncio
import threading

import pytest
from django.db import connection, connections

from alerts import runtime as runtime_module
from alerts.models import Alert, AlertRule
from devices.models import Channel, CoilWriteCommand, Device, Reading
from devices.poller.daemon import Poller, PollerConfig
from devices.poller.storage import ReadingWriter
from tests.devices.helpers import set_registers, tcp_server
from tests.faultkit import free_port, wait_until

# PostgreSQL only: the poller's threads, the alert writer and this test read and write at once, and the
# in-memory SQLite test database answers "table is locked" to that.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (set DATABASE_URL)"),
]


class PollerThread(threading.Thread):
    """A pymodbus server and the poller on one event loop of their own (the test thread waits on the
    database). The gas register holds 1200: 120.0 %LEL on a 0-100 %LEL channel."""

    def __init__(self, port: int, writer: ReadingWriter | None):
        super().__init__(daemon=True, name="over-range-poller")
        self.port, self.writer = port, writer
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def run(self):
        async def main():
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()
            server = await tcp_server(self.port)
            await set_registers(server, 1, 0, [1200])
            self.ready.set()
            config = PollerConfig(
                name="over-range", reload_interval=0.5, stats_interval=5, live_push_interval=0, backoff_base=0.05
            )
            poller = Poller(config, self.writer)
            try:
                await poller.run(self.stop_event)
            finally:
                await server.shutdown()

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc
            self.ready.set()

    def stop(self):
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.join(15)


@pytest.fixture
def runtime(settings):
    settings.ALERT_RUNTIME_BACKGROUND = True  # as in the daemon: alerts are written by the runtime's thread
    settings.ALERT_RULE_REFRESH_SECONDS = 0
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    fresh = runtime_module.AlertRuntime()
    run = fresh._run

    def run_then_close():  # the writer thread's connection must not outlive the test database
        try:
            run()
        finally:
            connections.close_all()

    fresh._run = run_then_close
    old, runtime_module.runtime = runtime_module.runtime, fresh
    yield fresh
    fresh.stop()
    if fresh.thread is not None:
        fresh.thread.join(5)
    runtime_module.runtime = old


@pytest.mark.parametrize("batched", [True, False], ids=["batch-decoder", "event-decoder"])
def test_over_range_gas_raises_level_one_with_linkage_through_the_poller(world, runtime, tmp_path, batched):
    port = free_port()
    device = Device.objects.create(
        enterprise=world.here,
        name="可燃气体报警控制器",
        host="127.0.0.1",
        port=port,
        poll_period_ms=100,
        timeout_ms=500,
    )
    gas = Channel.objects.create(
        device=device,
        tag="GT-101",
        name="罐区可燃气体",
        address=0,
        scale=0.1,
        quantity="combustible_gas",
        unit="%LEL",
        range_low=0,
        range_high=100,
        deadband=0,
    )
    AlertRule.objects.create(
        name="可燃气体",
        quantity="combustible_gas",
        high=20,
        high_high=50,
        deadband=2,
        on_delay_s=30,  # longer than the test waits: only the over-range rule can raise in time
        level_high=2,
        level_high_high=1,
        linkage_device=device,
        linkage_unit_id=1,
        linkage_address=0,
        linkage_value=True,
    )
    writer = None
    if batched:
        writer = ReadingWriter(poller="over-range", spool_dir=tmp_path / "spool", spool_max_bytes=10**7)
        writer.flush_interval = 0.1
        writer.start()
    thread = PollerThread(port, writer)
    thread.start()
    try:
        assert thread.ready.wait(10) and thread.error is None, thread.error
        hh = wait_until(
            lambda: Alert.objects.filter(channel=gas, kind="high_high", linkage_status="requested").first(),
            timeout=20,
            what="the level-1 high-high alert with its linkage requested",
        )
        assert hh.level == 1 and hh.value == pytest.approx(120.0) and "超量程" in hh.message
        # The poller writes the coil itself (no database on that path) and the command row that
        # records it is linked to the alert once written: wait for that row, done.
        command = wait_until(
            lambda: CoilWriteCommand.objects.filter(
                pk=Alert.objects.get(pk=hh.pk).linkage_command_id, status="done"
            ).first(),
            timeout=20,
            what="the poller to write and read back the shut-off coil",
        )
        assert command.value is True and command.address == 0
        if batched:
            stored = wait_until(
                lambda: Reading.objects.filter(channel=gas, quality="out_of_range").first(),
                timeout=20,
                what="the over-range reading to be stored",
            )
            assert stored.value == pytest.approx(120.0)
    finally:
        thread.stop()
        if writer is not None:
            writer.stop()
    assert thread.error is None, thread.error
