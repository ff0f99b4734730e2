"""A level-1 linkage asked of the poller in this process (devices.hooks.write_coil_locally) is written
by the worker of that device at once, between two cycles, not one period later, and read back; the
result goes to the caller, not to a command row."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from devices import hooks
from devices.hooks import LocalCoilWrite
from tests.devices.helpers import ch, device, free_port, poller, run_workers, stop_workers, tcp_server


def _request(device_id: int, results: list, loop) -> LocalCoilWrite:
    def done(ok, readback, error, started_at, finished_at):
        results.append((time.monotonic(), ok, readback, error))

    return LocalCoilWrite("u1", device_id, 1, 3, True, "test", datetime.now(UTC), done)


async def test_a_local_coil_write_is_done_before_the_next_cycle_and_read_back(monkeypatch):
    monkeypatch.setattr(hooks, "_coil_writers", [])
    port = free_port()
    server = await tcp_server(port)
    p, _readings, _statuses = poller()
    p._loop = asyncio.get_running_loop()
    hooks.register_coil_writer(p.write_coil_locally)
    period = 2.0  # a slow device: waiting for the next cycle would take up to 2 s
    workers = await run_workers(p, [device(1, port, [ch(1, 0)], period=period)], 0.5)
    results: list = []
    asked = time.monotonic()
    assert hooks.write_coil_locally(_request(1, results, p._loop))
    deadline = asked + 1.0
    while not results and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await stop_workers(workers)
    await server.shutdown()
    assert results, "the coil write did not happen within 1 s on a 2 s period"
    at, ok, readback, error = results[0]
    assert (ok, readback, error) == (True, True, "")
    assert at - asked < 0.5


async def test_a_device_this_poller_does_not_poll_is_not_taken(monkeypatch):
    monkeypatch.setattr(hooks, "_coil_writers", [])
    p, _readings, _statuses = poller()
    p._loop = asyncio.get_running_loop()
    hooks.register_coil_writer(p.write_coil_locally)
    assert not hooks.write_coil_locally(_request(99, [], p._loop))


async def test_a_restarted_poller_announces_a_status_that_is_already_stored(monkeypatch):
    """The database already says online (a predecessor died without storing offline): nothing is
    stored, but this process's alert runtime hears it, to return an offline alert it restored."""
    from dataclasses import replace

    heard = []
    monkeypatch.setattr(hooks, "_status_sinks", [heard.append])
    port = free_port()
    server = await tcp_server(port)
    p, _readings, _statuses = poller()
    spec = replace(device(1, port, [ch(1, 0)], period=0.05), status="online")
    workers = await run_workers(p, [spec], 0.5)
    await stop_workers(workers)
    await server.shutdown()
    assert [(e.device_id, e.online) for e in heard] == [(1, True)]
