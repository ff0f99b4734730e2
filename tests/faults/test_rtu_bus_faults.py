"""One silent RTU unit must not take its neighbours off scan: the real poller on a pseudo-terminal
against slaves of the test's own that behave like real ones on a shared line.

- ``swallow``: unit 2 is missing and the slave of unit 1 behaves like libmodbus: it takes the frame
  that follows a request to unit 2 for unit 2's reply and ignores it.
- ``libmodbus``: the same, with libmodbus' receive logic byte by byte (framing by length and
  timeouts): the frame after a request to unit 2 is read as unit 2's reply by length, and the rest
  of it throws the slave out of step until the line has been quiet for its timeouts.
- ``late``: unit 2 answers, but only after the master has given up, byte by byte, so its reply is
  still on the line when the next request would go out.

Over 60 s worth of 10 Hz samples (at a faster period), unit 1 stays on scan and every reading of
it is good and right; unit 2 is demoted; and no request goes out before the line has been silent
for 3.5 characters at the bus's baud rate.
"""

from __future__ import annotations

import pytest

from devices.choices import DeviceStatus, Quality
from devices.poller.daemon import silent_interval
from tests.devices.helpers import ch, device, poller, stop_workers
from tests.faults.modbus_support import Capture, FaultySlave, LibmodbusRtuSlave, PtyRtuSlave, start, until

pytestmark = pytest.mark.e2e

CASES = {
    # samples of unit 1, baud (sets the silent interval), period, timeout, the poller's rtu_recovery
    "swallow": {"samples": 600, "baudrate": 19200, "period": 0.02, "timeout": 0.1, "recovery": 0},
    "libmodbus": {"samples": 600, "baudrate": 19200, "period": 0.02, "timeout": 0.1, "recovery": 0.2},
    "late": {"samples": 250, "baudrate": 1200, "period": 0.04, "timeout": 0.15, "recovery": 0},
}


@pytest.mark.parametrize("case", list(CASES))
async def test_a_silent_unit_does_not_take_its_neighbour_off_scan(case, tmp_path):
    cfg = CASES[case]
    if case == "swallow":
        slave = FaultySlave(units=(1,))
        line = PtyRtuSlave(slave, tmp_path / "ttyBUS", swallow_after=2)
    elif case == "libmodbus":  # its 0.5 s timeouts, scaled like the poller's 0.3 s timeout
        slave = FaultySlave(units=(1,))
        line = LibmodbusRtuSlave(slave, tmp_path / "ttyBUS", unit=1, response_timeout=0.17, byte_timeout=0.17)
    else:
        slave = FaultySlave(units=(1, 2))
        char = 11 / cfg["baudrate"] * 0.8  # a little faster than the wire: the bytes of one reply
        line = PtyRtuSlave(slave, tmp_path / "ttyBUS", late={2: 0.8 * cfg["timeout"]}, char_s=char)
    slave.registers[1][0:2] = [1234, 4321]
    slave.registers.get(2, [0])[0] = 999
    line.open()
    level, flow = ch(1, 0, unit_id=1), ch(1, 1, unit_id=1)
    missing = ch(1, 0, unit_id=2)
    p, _readings, statuses = poller(demote_after=3, probe_interval=1.0, rtu_recovery=cfg["recovery"])
    seen = Capture(p)
    spec = device(
        1,
        0,
        [level, flow, missing],
        protocol="rtu",
        serial_port=str(tmp_path / "ttyBUS"),
        baudrate=cfg["baudrate"],
        period=cfg["period"],
        timeout=cfg["timeout"],
    )
    workers = await start(p, [spec])
    try:
        await until(
            lambda: len(seen.hook.get(level.id, ())) >= cfg["samples"],
            timeout=45,
            what=f"{cfg['samples']} readings of unit 1",
        )
        unit1 = workers[0].units[1]
        assert not unit1.demoted and unit1.failures == 0
    finally:
        await stop_workers(workers)
        p.flush_reads()
        line.close()
    assert seen.hook[level.id] and all(r == (1234, Quality.GOOD) for r in seen.hook[level.id]), [
        r for r in seen.hook[level.id] if r != (1234, Quality.GOOD)
    ][:5]
    assert all(r == (4321, Quality.GOOD) for r in seen.hook[flow.id])
    assert (1, DeviceStatus.DEMOTED, "从站 2 无应答，已降级探测") in statuses
    assert not any(s[1] == DeviceStatus.DEMOTED and "1" in s[2].split()[1].split(",") for s in statuses)
    assert all(q == Quality.TIMEOUT for _v, q in seen.hook[missing.id])
    # No request went out on a line that had not been silent for 3.5 characters.
    gap = silent_interval(cfg["baudrate"])
    assert min(line.gaps[1:]) >= 0.9 * gap, sorted(line.gaps)[:5]
    if case == "swallow":
        assert line.swallowed  # the slave did swallow frames: the poller made up for them
    if case == "libmodbus":
        assert line.ignored  # it did wait for unit 2's replies
