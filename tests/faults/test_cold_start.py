"""A poller restarted while PostgreSQL is down still closes the valve: the real ``poll_devices`` runs once
with the database up (and keeps its configuration snapshot), stops, PostgreSQL stops, the poller starts
again on its last known configuration, a leak closes the valve (the coil write seen on the Modbus
server) without the database, and when PostgreSQL returns the alert and the command row are stored
exactly once with the original times, with a notice that the poller ran on its snapshot.

Run: .venv/bin/python -m pytest tests/faults/test_cold_start.py -m e2e
"""

from __future__ import annotations

import pytest

from tests.faultkit import wait_until
from tests.faults.linkage_support import (
    psql,
    wait_online,
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

PERIOD_MS = 100


def test_a_poller_restarted_while_postgres_is_down_closes_the_valve_on_its_last_configuration(rig):
    pg, dbname, modbus, world, redis, poller = rig
    snapshots = poller.data_dir / "snapshot"
    poller.start()
    wait_online(pg, dbname, world["device"])
    wait_until(
        lambda: (snapshots / "fault.poller.json").exists() and (snapshots / "fault.alerts.json").exists(),
        timeout=30,
        what=f"the device and rule snapshots\n{poller.tail()}",
        interval=0.1,
    )
    poller.stop()
    wait_until(lambda: poller.outbox_rows() == 0, timeout=10, what="the first run's outbox empty")

    pg.stop()
    poller.start()  # as systemd restarts it after a crash, or the machine rebooted
    wait_until(
        lambda: "last known configuration" in poller.tail(20000),
        timeout=40,
        what=f"the poller on its snapshot\n{poller.tail()}",
        interval=0.1,
    )
    wait_until(
        lambda: "last known rules" in poller.tail(20000),
        timeout=40,
        what=f"the alert runtime on its snapshot\n{poller.tail()}",
        interval=0.1,
    )
    assert not modbus.coil(0)
    leak_at = modbus.set_register(0, 650)  # 65 %LEL: high-high, level 1, linkage to coil 0
    wait_until(lambda: modbus.coil(0), timeout=15, what=f"the coil write\n{poller.tail()}", interval=0.005)
    written_at = next(at for at, address, value in modbus.coil_writes if address == 0 and value)
    print(f"leak -> coil written by a poller started without the database: {(written_at - leak_at) * 1000:.0f} ms")
    assert written_at - leak_at < PERIOD_MS / 1000 + 1.0
    wait_until(lambda: poller.outbox_rows() >= 2, timeout=10, what="the raise and the write result queued")

    pg.start()
    wait_until(
        lambda: psql(pg, dbname, "SELECT linkage_status FROM alerts_alert WHERE kind = 'high_high'") == "confirmed",
        timeout=60,
        what=f"the linkage confirmed after the database returned\n{poller.tail()}",
        interval=0.2,
    )
    wait_until(lambda: poller.outbox_rows() == 0, timeout=20, what="the outbox emptied")
    assert psql(pg, dbname, "SELECT count(*) FROM alerts_alert WHERE kind = 'high_high'") == "1"
    raised = psql(pg, dbname, "SELECT extract(epoch FROM raised_at) FROM alerts_alert WHERE kind = 'high_high'")
    assert leak_at <= float(raised) <= written_at + 0.05, "raised at the reading's time, not at the replay"
    assert psql(pg, dbname, "SELECT level FROM alerts_alert WHERE kind = 'high_high'") == "1"
    commands = psql(
        pg, dbname, "SELECT status, readback, address, extract(epoch FROM finished_at) FROM devices_coilwritecommand"
    )
    (row,) = commands.splitlines()  # one command: the local write, recorded once
    status, readback, address, finished = row.split("|")
    assert (status, readback, address) == ("done", "t", "0")
    assert written_at - 0.05 <= float(finished) <= written_at + 2.0, "finished when the valve closed"
    assert len([w for w in modbus.coil_writes if w[1] == 0]) == 1
    # The first run's "采集进程已停止" is judged against the device's status once the rules come from the
    # database again (the snapshot restores no conditions: the database does).
    wait_until(
        lambda: (
            psql(pg, dbname, "SELECT bool_or(condition_active) FROM alerts_alert WHERE kind = 'device_offline'")
            in ("f", "")
        ),
        timeout=30,
        what=f"the stale offline alert returned\n{poller.tail()}",
        interval=0.2,
    )
    # The board learns that this poller ran on its snapshot, once.
    notices = psql(
        pg, dbname, "SELECT count(*) FROM alerts_alert WHERE kind = 'acquisition' AND message LIKE '%上次已知配置%'"
    )
    assert notices == "1"
