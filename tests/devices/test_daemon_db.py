"""The daemon end to end with the database: status and stats stored, readings stored, config
changes picked up without a restart, linkage coil writes executed, confirmed and audited."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from devices.choices import CoilWriteStatus, DeviceStatus, Quality
from devices.models import Channel, CoilWriteCommand, Device, DeviceStatusChange, Reading
from devices.poller.daemon import Poller, PollerConfig
from devices.poller.storage import ReadingWriter
from devices.services import coil_write_execute_sync, request_coil_write
from regulator.models import AuditEntry
from tests.devices.helpers import free_port, set_registers, tcp_server

pytestmark = pytest.mark.django_db(transaction=True)


def make_device(world, port, **kw):
    device = Device.objects.create(
        enterprise=world.here, name="罐区网关", host="127.0.0.1", port=port, poll_period_ms=50, timeout_ms=100, **kw
    )
    gas = Channel.objects.create(device=device, tag="GT-101", name="可燃气体", address=0, scale=0.1, deadband=0)
    Channel.objects.create(
        device=device, tag="XV-101", name="切断阀", register_type="coil", data_type="bool", address=3, writable=True
    )
    return device, gas


async def test_daemon_stores_status_readings_reloads_config_and_writes_coils(world, tmp_path):
    port = free_port()
    server = await tcp_server(port)
    await set_registers(server, 1, 0, [250])
    device, gas = await sync_to_async(make_device)(world, port)
    config = PollerConfig(
        name="t", reload_interval=0.3, stats_interval=0.3, command_interval=0.1, live_push_interval=0, backoff_base=0.05
    )
    writer = ReadingWriter(poller="t", spool_dir=tmp_path / "spool", spool_max_bytes=10**7, flush_interval=0.2)
    writer.start()
    poller = Poller(config, writer)
    seen = []
    poller.reading_hook = seen.extend
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    await asyncio.sleep(0.8)
    assert any(r.channel_id == gas.pk and r.value == pytest.approx(25.0) for r in seen)

    # A configuration change is picked up without a restart.
    await sync_to_async(Channel.objects.filter(pk=gas.pk).update)(scale=1.0, updated_at=_now())
    await asyncio.sleep(0.8)
    assert seen[-1].value == 250 or any(r.channel_id == gas.pk and r.value == 250 for r in seen[-20:])

    # A linkage write goes through the poller and is confirmed by reading it back.
    cmd = await sync_to_async(request_coil_write)(
        device=device, unit_id=1, address=3, value=True, reason="GT-101 高高报联动关阀"
    )
    await asyncio.sleep(0.8)
    stop.set()
    await task
    writer.stop()
    coil = await server.context.async_getValues(1, 1, 3, 1)
    await server.shutdown()

    def check():
        cmd.refresh_from_db()
        assert cmd.status == CoilWriteStatus.DONE and cmd.readback is True and cmd.poller == "t"
        assert AuditEntry.objects.filter(event="devices.coil_write", object_id=str(cmd.pk), outcome="success").exists()
        d = Device.objects.get(pk=device.pk)
        # stopped cleanly: marked offline with the reason, history kept
        assert d.status == DeviceStatus.OFFLINE and d.status_reason == "采集进程已停止"
        assert d.last_seen is not None and d.achieved_rate_hz and d.achieved_rate_hz > 5
        changes = list(DeviceStatusChange.objects.filter(device=device).order_by("at").values_list("new", flat=True))
        assert changes == [DeviceStatus.ONLINE, DeviceStatus.OFFLINE]
        values = set(Reading.objects.filter(channel=gas, quality=Quality.GOOD).values_list("value", flat=True))
        assert {25.0, 250.0} <= values

    await sync_to_async(check)()
    assert coil == [True]
    await sync_to_async(connections.close_all)()  # the ORM thread of sync_to_async keeps one open


def _now():
    from django.utils import timezone

    return timezone.now()


def test_sync_coil_write_helper_confirms_and_audits(world):
    async def scenario():
        port = free_port()
        server = await tcp_server(port)
        device, _gas = await sync_to_async(make_device)(world, port)
        cmd = await sync_to_async(request_coil_write)(device=device, unit_id=1, address=3, value=True, reason="test")
        done = await sync_to_async(coil_write_execute_sync)(command=cmd)
        unreachable = await sync_to_async(_unreachable_write)(world)
        await server.shutdown()
        await sync_to_async(connections.close_all)()
        return done, unreachable

    done, unreachable = asyncio.run(scenario())
    assert done.status == CoilWriteStatus.DONE and done.readback is True
    assert unreachable.status == CoilWriteStatus.FAILED and unreachable.error
    assert AuditEntry.objects.filter(event="devices.coil_write", outcome="failure").exists()


def _unreachable_write(world):
    device = Device.objects.create(
        enterprise=world.here, name="断线网关", host="127.0.0.1", port=free_port(), timeout_ms=100
    )
    cmd = request_coil_write(device=device, unit_id=1, address=0, value=True, reason="test")
    return coil_write_execute_sync(command=cmd)


def test_pending_write_for_a_disabled_device_fails_instead_of_waiting_forever(world):
    from devices.services import coil_writes_claim

    device = Device.objects.create(enterprise=world.here, name="停用网关", host="127.0.0.1", port=1, enabled=False)
    cmd = request_coil_write(device=device, unit_id=1, address=0, value=True, reason="test")
    assert coil_writes_claim(device_ids=[], idle_device_ids=[device.pk], poller="t", timeout_s=30) == []
    cmd.refresh_from_db()
    assert cmd.status == CoilWriteStatus.FAILED and "停用" in cmd.error
    assert CoilWriteCommand.objects.filter(status=CoilWriteStatus.PENDING).count() == 0


def test_sigterm_stops_the_daemon_cleanly(world, tmp_path):
    import os
    import signal
    import threading
    import time

    from devices.poller.daemon import PollerConfig, run_forever

    device = Device.objects.create(
        enterprise=world.here, name="无人应答", host="127.0.0.1", port=free_port(), timeout_ms=50
    )
    Channel.objects.create(device=device, tag="GT-1", name="gas", address=0)
    config = PollerConfig(name="sig", reload_interval=0.2, stats_interval=0.2, live_push_interval=0, backoff_base=0.05)
    writer = ReadingWriter(poller="sig", spool_dir=tmp_path / "spool", spool_max_bytes=10**6, flush_interval=0.1)
    timer = threading.Timer(1.0, os.kill, args=(os.getpid(), signal.SIGTERM))
    timer.start()
    started = time.monotonic()
    run_forever(config, writer)
    assert time.monotonic() - started < 5
    assert writer._thread is not None and not writer._thread.is_alive()
    device.refresh_from_db()
    assert device.status == DeviceStatus.OFFLINE and device.poller == "sig"
    assert Reading.objects.filter(channel__device=device, quality=Quality.DISCONNECTED).exists()
