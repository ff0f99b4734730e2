"""Modbus RTU over a pseudo-terminal pair, with a real pymodbus serial server."""

from __future__ import annotations

import asyncio

from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer

from devices.choices import DeviceStatus, Quality
from devices.poller.decode import raw_to_words
from devices.simulator import PtyBridge
from tests.devices.helpers import ch, context, device, poller, run_workers, stop_workers


async def test_rtu_bus_over_a_pty_pair(tmp_path):
    bridge = PtyBridge(tmp_path / "ttyRTU0")
    server_side = bridge.open()
    server = ModbusSerialServer(context(units=(3,)), framer=FramerType.RTU, port=server_side, baudrate=115200)
    await server.serve_forever(background=True)
    await server.context.async_setValues(3, 16, 10, raw_to_words(21.5, "float32"))
    gas = ch(1, 10, unit_id=3, data_type="float32")
    p, readings, statuses = poller()
    spec = device(1, 0, [gas], protocol="rtu", serial_port=str(tmp_path / "ttyRTU0"), baudrate=115200, timeout=0.3)
    workers = await run_workers(p, [spec], 1.0)
    await stop_workers(workers)
    await server.shutdown()
    bridge.close()
    good = [r for r in readings if r.channel_id == gas.id and r.quality == Quality.GOOD]
    assert len(good) >= 5 and good[-1].value == 21.5
    assert (1, DeviceStatus.ONLINE, "") in statuses
    await asyncio.sleep(0)
