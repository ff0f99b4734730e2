"""Helpers for device tests: free loopback ports, real pymodbus servers, specs without the database."""

from __future__ import annotations

import asyncio
import logging
import socket
import tempfile
from datetime import datetime
from pathlib import Path

from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusTcpServer

from devices.poller.daemon import DeviceSpec, Poller, PollerConfig
from devices.poller.decode import ChannelSpec
from devices.poller.storage import ReadingWriter

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def context(units=(1,), size=200) -> ModbusServerContext:
    return ModbusServerContext(
        devices={
            u: ModbusDeviceContext(
                hr=ModbusSequentialDataBlock(1, [0] * size),
                ir=ModbusSequentialDataBlock(1, [0] * size),
                co=ModbusSequentialDataBlock(1, [False] * 64),
                di=ModbusSequentialDataBlock(1, [False] * 64),
            )
            for u in units
        },
        single=False,
    )


async def tcp_server(port: int, units=(1,), size=200, silent_missing=False) -> ModbusTcpServer:
    server = ModbusTcpServer(context(units, size), address=("127.0.0.1", port), ignore_missing_devices=silent_missing)
    if silent_missing:
        _silence_missing_units(server)
    await server.serve_forever(background=True)
    await asyncio.sleep(0.05)
    return server


def _silence_missing_units(server) -> None:
    """pymodbus 3.16's SimCore raises KeyError (answered as exception 4) instead of NoSuchIdException
    for an unknown unit, so ``ignore_missing_devices`` never applies; make missing units silent."""
    from pymodbus.exceptions import NoSuchIdException

    core = server.context
    original = core.async_getValues

    async def get_values(device_id, func_code, address, count=1):
        if device_id not in core.devices:
            raise NoSuchIdException(f"no unit {device_id}")
        return await original(device_id, func_code, address, count)

    core.async_getValues = get_values


async def set_registers(server, unit: int, address: int, words: list[int], fc: int = 16) -> None:
    await server.context.async_setValues(unit, fc, address, words)


_ids = iter(range(1, 10**9))


def ch(device_id: int, address: int, **kw) -> ChannelSpec:
    cid = kw.pop("id", next(_ids))
    return ChannelSpec(
        id=cid,
        device_id=device_id,
        tag=kw.pop("tag", f"T-{cid}"),
        unit_id=kw.pop("unit_id", 1),
        register_type=kw.pop("register_type", "holding"),
        address=address,
        **kw,
    )


def device(
    device_id: int,
    port: int,
    channels,
    *,
    period=0.05,
    timeout=0.1,
    retries=0,
    protocol="tcp",
    serial_port="",
    baudrate=19200,
) -> DeviceSpec:
    return DeviceSpec(
        id=device_id,
        name=f"dev{device_id}",
        enterprise_id=1,
        protocol=protocol,
        host="127.0.0.1",
        port=port,
        serial_port=serial_port,
        baudrate=baudrate,
        parity="N",
        stopbits=1,
        bytesize=8,
        period_s=period,
        timeout_s=timeout,
        retries=retries,
        enabled=True,
        maintenance=False,
        status="unknown",
        channels=tuple(channels),
        signature=(datetime.now(),),
    )


def poller(*, store: bool = True, **overrides) -> tuple[Poller, list, list]:
    """A poller without database side effects; returns (poller, readings, statuses).

    With ``store`` (the default) it has a writer whose storage does nothing, as the daemon has a
    writer: good block reads then go through the batched path (``Poller.add_read``); without, every
    reading is decoded one by one as by ``poll_devices --no-store``.
    """
    cfg = {"name": "test", "demote_after": 3, "probe_interval": 5.0, "backoff_base": 0.05, "backoff_cap": 0.2}
    cfg["live_push_interval"] = 0
    cfg.update(overrides)
    writer = None
    if store:
        spool = Path(tempfile.mkdtemp(prefix="poller-test-spool-"))
        writer = ReadingWriter(
            poller="test", spool_dir=spool, spool_max_bytes=10**6, store=lambda rows, aggs: len(rows)
        )
    p = Poller(PollerConfig(**cfg), writer, store_status=False)
    readings, statuses = [], []
    p.reading_hook = readings.extend
    original = p.set_status

    def capture(spec, status, reason):
        before = p.status.get(spec.id)
        original(spec, status, reason)
        if p.status.get(spec.id) != before:
            statuses.append((spec.id, status, reason))

    p.set_status = capture
    return p, readings, statuses


async def run_workers(p: Poller, specs, seconds: float):
    from devices.poller.daemon import DeviceWorker

    workers = []
    for spec in specs:
        w = DeviceWorker(spec, p)
        p.workers[spec.id] = w
        w.start()
        workers.append(w)
    await asyncio.sleep(seconds)
    return workers


async def stop_workers(workers):
    for w in workers:
        w.stopping = True
    await asyncio.gather(*(w.stop() for w in workers))


def login_scope(scope: dict, user) -> None:
    """Put ``user`` and a live session of theirs in a communicator's scope, as AuthMiddlewareStack
    would: every consumer checks the session at connect and at every heartbeat (regulator.consumers).
    Synchronous (database): call it through sync_to_async."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import Client

    client = Client()
    client.force_login(user)
    scope["user"] = user
    scope["session"] = SessionStore(session_key=client.cookies["sessionid"].value)
