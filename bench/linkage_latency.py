"""Leak -> coil written: how long from a gas register crossing high-high on a Modbus server until the
real ``poll_devices`` process has written the linkage coil on that server, over N leaks, with the
database up and with it down (a private PostgreSQL stopped; Redis stopped too). Target: at most one
poll period + 50 ms in both.

    .venv/bin/python bench/linkage_latency.py [--leaks 50] [--period-ms 100]

Each leak is a re-occurrence of the level-1 condition on the still unacknowledged alert (the register
goes back to 0 in between), so every leak writes the coil again. Needs PostgreSQL server binaries and
redis-server (as the fault suite does).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "regulator.settings")

from tests.faultkit import PrivateRedis, wait_until  # noqa: E402
from tests.faults.linkage_support import (  # noqa: E402
    ModbusServer,
    PollerProcess,
    clone,
    make_world,
    migrated_postgres,
    wait_online,
)


def leaks(modbus: ModbusServer, n: int, period: float) -> list[float]:
    latencies = []
    rng = random.Random(15)
    for _ in range(n):
        modbus.reset_coil(0)
        before = len(modbus.coil_writes)
        leak_at = modbus.set_register(0, 650)
        wait_until(lambda b=before: len(modbus.coil_writes) > b, timeout=10, what="the coil write", interval=0.001)
        latencies.append(modbus.coil_writes[before][0] - leak_at)
        modbus.set_register(0, 0)
        # Long enough for the condition to return; a random phase against the poll cycle.
        time.sleep(4 * period + rng.uniform(0, period))
    return latencies


def describe(name: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
    return (
        f"{name:<14} n={len(ms):<4} p50 {statistics.median(ms):6.1f} ms  p99 {p99:6.1f} ms  "
        f"max {ms[-1]:6.1f} ms  min {ms[0]:6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaks", type=int, default=50)
    parser.add_argument("--period-ms", type=int, default=100)
    args = parser.parse_args()
    period = args.period_ms / 1000
    pg = migrated_postgres()
    modbus = ModbusServer().start()
    redis = PrivateRedis()
    redis.start()
    data_dir = Path(tempfile.mkdtemp(prefix="linkage-bench-"))
    poller = None
    try:
        dsn = clone(pg, "linkage_bench")
        world = make_world(dsn, modbus_port=modbus.port, period_ms=args.period_ms)
        poller = PollerProcess(dsn=dsn, redis_url=redis.url, data_dir=data_dir, name="bench")
        poller.start()
        wait_online(pg, "linkage_bench", world["device"])
        # Warm-up: the first leak waits for the runtime to have loaded the rules.
        modbus.set_register(0, 650)
        wait_until(lambda: modbus.coil(0), timeout=60, what="the first linkage write", interval=0.01)
        modbus.set_register(0, 0)
        time.sleep(1.0)
        up = leaks(modbus, args.leaks, period)
        pg.stop()
        redis.stop()
        down = leaks(modbus, args.leaks, period)
        print(f"leak -> coil written, poll period {args.period_ms} ms, target <= {args.period_ms + 50} ms")
        print(describe("database up", up))
        print(describe("database down", down))
        pg.start()
        redis.start()
        wait_until(lambda: poller.outbox_rows() == 0, timeout=120, what="the outbox drained")
        commands = pg.sql("SELECT count(*) FROM devices_coilwritecommand WHERE status = 'done'", dbname="linkage_bench")
        print(
            f"after the database returned: {commands} done coil-write commands stored (expected {1 + 2 * args.leaks})"
        )
    finally:
        if poller is not None:
            poller.stop()
        redis.stop()
        modbus.stop()
        pg.close()


if __name__ == "__main__":
    main()
