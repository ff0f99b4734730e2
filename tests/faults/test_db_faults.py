"""The database taken away from the real ``poll_devices`` process: frozen (SIGSTOP), crashed
(``pg_ctl -m immediate``), and the poller itself killed between a replay's commit and the removal
of its spool file. In every case each reading is stored once and the 1-minute aggregates agree
exactly with the readings (every sample is stored: heartbeat 0), so nothing is lost or counted twice.

Real parts: a private PostgreSQL cluster (tests.faultkit), a pymodbus TCP server on a free loopback
port, and ``manage.py poll_devices`` subprocesses.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.faultkit import PrivatePostgres, free_port, wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.skipif(not settings.USING_POSTGRES, reason="the database fault suite runs with PostgreSQL"),
]

ROOT = Path(__file__).resolve().parents[2]
CHANNELS = 4
TEMPLATE = "regulator_fault_template"

SETUP = """
from tests import factories as f
from devices.models import Channel, Device
regions = f.region_tree()
ent = f.enterprise(regions["county"], name="故障测试化工有限公司")
dev = Device.objects.create(enterprise=ent, name="FAULT-GW", host="127.0.0.1", port=1, poll_period_ms=100,
                            timeout_ms=500)
for i in range({n}):
    Channel.objects.create(device=dev, tag=f"GT-{{i}}", name=f"气体{{i}}", address=i, deadband=0, heartbeat_s=0)
"""


def _env(dsn: str, data_dir: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "REGULATOR_FAULT_"))}
    env.update(
        DATABASE_URL=dsn,
        REDIS_URL="",
        DATA_DIR=str(data_dir),
        PYTHONUNBUFFERED="1",
        DB_CONNECT_TIMEOUT_SECONDS="2",
        DB_CALL_DEADLINE_SECONDS="2",
        DB_STATEMENT_TIMEOUT_SECONDS="1",
        DEVICES_RELOAD_SECONDS="1",
        DEVICES_STATS_SECONDS="1",
        DEVICES_FLUSH_MS="200",
    )
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One private cluster for the module, with a migrated template database holding one gateway
    of CHANNELS channels; each test gets its own copy."""
    pg = PrivatePostgres()
    pg.setup()
    pg.start()
    try:
        dsn = pg.create_database(TEMPLATE)
        env = _env(dsn, tmp_path_factory.mktemp("template"))
        py = sys.executable
        subprocess.run([py, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
        subprocess.run(
            [py, "manage.py", "shell", "-c", SETUP.format(n=CHANNELS)], cwd=ROOT, env=env, check=True, timeout=120
        )
        yield pg
    finally:
        pg.close()


@pytest.fixture
def database(cluster, request):
    name = f"fault_{request.node.name[:40].lower()}"
    cluster.thaw()
    if not cluster.running():
        cluster.start()
    cluster.sql(f'DROP DATABASE IF EXISTS "{name}"')
    dsn = cluster.create_database(name, template=TEMPLATE)
    # The cluster runs with synchronous_commit off (fast): a crash (pg_ctl -m immediate) would
    # then lose the last transactions it had acknowledged, which no client can make up for.
    cluster.sql(f'ALTER DATABASE "{name}" SET synchronous_commit = on')
    return dsn


@pytest.fixture
def modbus_port():
    """A pymodbus TCP server in a thread of its own; the registers are constant: every read is
    stored anyway (heartbeat 0)."""
    from tests.devices.helpers import set_registers, tcp_server

    port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder = {}

    async def main():
        holder["server"] = server = await tcp_server(port, size=50)
        await set_registers(server, 1, 0, [10 + i for i in range(CHANNELS)])
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(main()), loop.run_forever()), daemon=True)
    thread.start()
    assert ready.wait(15), "the Modbus server did not start"
    yield port
    asyncio.run_coroutine_threadsafe(holder["server"].shutdown(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


class Pollers:
    """``manage.py poll_devices --name fault`` subprocesses against the test's database."""

    def __init__(self, dsn: str, data_dir: Path):
        self.dsn, self.data_dir = dsn, data_dir
        self.spool = data_dir / "spool" / "fault"
        self.procs: list[subprocess.Popen] = []

    def start(self, **env) -> subprocess.Popen:
        log = open(self.data_dir / f"poller-{len(self.procs)}.log", "wb")  # noqa: SIM115 - closed by the process
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "poll_devices", "--name", "fault"],
            cwd=ROOT,
            env=_env(self.dsn, self.data_dir, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 40) -> None:
        """SIGTERM: the final flush closes every open minute (spooled if the database is down)."""
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout)

    def spooled(self) -> int:
        return len(list(self.spool.glob("*.json"))) if self.spool.exists() else 0

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.data_dir.glob("poller-*.log")))

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture
def pollers(database, tmp_path, modbus_port, cluster):
    cluster.sql(f"UPDATE devices_device SET port = {modbus_port}", dbname=database.rsplit("/", 1)[1])
    p = Pollers(database, tmp_path)
    yield p
    p.close()
    if os.environ.get("FAULTS_SHOW_LOGS"):
        print(p.logs())


def _query(cluster, dsn, sql):
    dbname = dsn.rsplit("/", 1)[1]
    out = cluster.sql(sql, dbname=dbname)
    return [line.split("|") for line in out.splitlines() if line]


def _readings(cluster, dsn) -> int:
    return int(_query(cluster, dsn, "SELECT count(*) FROM devices_reading")[0][0])


def assert_stored_once_and_aggregates_exact(cluster, dsn, *, max_gap_s: float | None = None) -> None:
    """Per channel and minute, the aggregate counts exactly the stored readings (every sample is
    stored), with the same sum; and no reading is stored twice."""
    sql = "SELECT count(*), count(DISTINCT (channel_id, time)) FROM devices_reading"
    total, distinct = _query(cluster, dsn, sql)[0]
    assert int(total) == int(distinct) > 0
    readings = {
        (r[0], r[1]): (int(r[2]), int(r[3]), round(float(r[4] or 0), 6))
        for r in _query(
            cluster,
            dsn,
            "SELECT channel_id, extract(epoch FROM date_trunc('minute', time))::bigint, "
            "count(*) FILTER (WHERE quality = 'good'), count(*) FILTER (WHERE quality <> 'good'), "
            "coalesce(sum(value) FILTER (WHERE quality = 'good'), 0) FROM devices_reading GROUP BY 1, 2",
        )
    }
    aggregates = {
        (r[0], r[1]): (int(r[2]), int(r[3]), round(float(r[4]), 6))
        for r in _query(
            cluster,
            dsn,
            "SELECT channel_id, extract(epoch FROM minute)::bigint, count, bad_count, sum "
            "FROM devices_readingaggregate",
        )
    }
    wrong = {k: (readings.get(k), aggregates.get(k)) for k in readings.keys() | aggregates.keys()}
    wrong = {k: v for k, v in wrong.items() if v[0] != v[1]}
    assert not wrong, f"(readings, aggregate) per (channel, minute) that differ: {wrong}"
    if max_gap_s is not None:
        gap = _query(
            cluster,
            dsn,
            "SELECT coalesce(max(extract(epoch FROM d)), 0) FROM (SELECT time - lag(time) OVER "
            "(PARTITION BY channel_id ORDER BY time) AS d FROM devices_reading) g",
        )[0][0]
        assert float(gap) < max_gap_s, f"a channel has a hole of {float(gap):.1f} s in its readings"


def test_a_frozen_database_is_an_outage_readings_spool_within_seconds_and_drain_exactly(cluster, database, pollers):
    """SIGSTOP the database while the poller writes: within a few seconds (the 2 s deadline) the
    batches go to the spool instead of waiting in memory; after SIGCONT the spool drains, every
    reading is stored once and the aggregates match the readings."""
    proc = pollers.start()
    wait_until(lambda: _readings(cluster, database) > 20, timeout=40, what="the poller to store readings")
    cluster.freeze()
    try:
        frozen_at = time.monotonic()
        wait_until(lambda: pollers.spooled() >= 1, timeout=20, what="a batch in the spool while the database is frozen")
        took = time.monotonic() - frozen_at
        assert took < 10, f"readings waited {took:.1f} s in memory"
        wait_until(lambda: pollers.spooled() >= 5, timeout=20, what="more batches in the spool")
    finally:
        cluster.thaw()
    wait_until(lambda: pollers.spooled() == 0, timeout=40, what="the spool to drain after the thaw")
    assert proc.poll() is None, pollers.logs()
    pollers.stop(proc)
    assert pollers.spooled() == 0
    assert_stored_once_and_aggregates_exact(cluster, database, max_gap_s=3.0)


def test_kill_9_between_a_replay_commit_and_the_spool_file_removal_does_not_double_aggregates(
    cluster, database, pollers
):
    """A poller stops while the database is down (its last minutes are spooled with the
    readings); the next one commits the spooled batch holding those minutes and is killed -9
    before it removes the file; a third replays the spool. The minutes are counted once."""
    dbname = database.rsplit("/", 1)[1]
    first = pollers.start()
    wait_until(lambda: _readings(cluster, database) > 20, timeout=40, what="the poller to store readings")
    cluster.stop("fast")
    wait_until(lambda: pollers.spooled() >= 2, timeout=20, what="batches in the spool while the database is down")
    pollers.stop(first)  # the final flush spools the open minutes' aggregates too
    cluster.start()
    # The second poller only replays (no device to poll), so every aggregate it could lose in its
    # crash is one it replays: the comparison with the readings stays exact.
    cluster.sql("UPDATE devices_device SET enabled = false", dbname=dbname)
    spooled = pollers.spooled()
    crashing = pollers.start(REGULATOR_FAULT_KILL_AFTER_REPLAY_COMMIT="1")
    assert crashing.wait(60) == -signal.SIGKILL, pollers.logs()
    assert 0 < pollers.spooled() <= spooled  # the committed batch's file is still there
    cluster.sql("UPDATE devices_device SET enabled = true", dbname=dbname)
    third = pollers.start()
    wait_until(lambda: pollers.spooled() == 0, timeout=40, what="the restarted poller to replay the spool")
    before = _readings(cluster, database)
    wait_until(lambda: _readings(cluster, database) > before + 10, timeout=30, what="the third poller to poll")
    pollers.stop(third)
    assert_stored_once_and_aggregates_exact(cluster, database)


def test_a_database_crash_and_restart_loses_nothing_and_counts_nothing_twice(cluster, database, pollers):
    """pg_ctl -m immediate (every connection cut, a COPY perhaps half-way) and start again."""
    proc = pollers.start()
    wait_until(lambda: _readings(cluster, database) > 20, timeout=40, what="the poller to store readings")
    cluster.stop("immediate")
    wait_until(lambda: pollers.spooled() >= 3, timeout=20, what="batches in the spool while the database is down")
    cluster.start()
    wait_until(lambda: pollers.spooled() == 0, timeout=40, what="the spool to drain after the restart")
    before = _readings(cluster, database)
    wait_until(lambda: _readings(cluster, database) > before + 10, timeout=30, what="live writes to resume")
    assert proc.poll() is None, pollers.logs()
    pollers.stop(proc)
    assert_stored_once_and_aggregates_exact(cluster, database, max_gap_s=3.0)
