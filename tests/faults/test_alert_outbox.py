"""Alert changes survive a database outage and a kill -9 of the real ``poll_devices`` process: what the
engine decided while PostgreSQL was down is written once it is back, exactly once, with the original
times, by the restarted poller. And a restarted poller does not leave the "采集进程已停止" offline
alert of its predecessor active once the device is back online.

Run: .venv/bin/python -m pytest tests/faults/test_alert_outbox.py -m e2e
"""

from __future__ import annotations

import pytest

from tests.faultkit import wait_until
from tests.faults.linkage_support import (
    psql,
    wait_online,
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def q(pg, dbname, sql: str) -> str:
    return psql(pg, dbname, sql)


def test_changes_queued_while_postgres_is_down_survive_a_kill_9_and_are_written_once(rig):
    pg, dbname, modbus, world, _redis, poller = rig
    poller.start()
    wait_online(pg, dbname, world["device"])
    # The runtime holds the rules once a warm-up alert (level 2) is written.
    modbus.set_register(0, 300)
    wait_until(
        lambda: q(pg, dbname, "SELECT count(*) FROM alerts_alert WHERE kind = 'high'") == "1",
        timeout=40,
        what=f"the warm-up alert\n{poller.tail()}",
        interval=0.2,
    )

    pg.stop()
    raised_at = modbus.set_register(0, 650)  # high-high (level 1, linkage)
    wait_until(lambda: modbus.coil(0), timeout=10, what="the local linkage write")
    wait_until(lambda: poller.outbox_rows() >= 2, timeout=10, what="the raise and the write result queued")
    cleared_at = modbus.set_register(0, 0)
    wait_until(lambda: poller.outbox_rows() >= 4, timeout=10, what="the returns queued")
    poller.kill9()  # the only copy of these changes is now the outbox file
    assert poller.outbox_rows() >= 4

    pg.start()
    poller.start()
    wait_until(lambda: poller.outbox_rows() == 0, timeout=40, what=f"the restarted poller to drain\n{poller.tail()}")
    rows = q(
        pg,
        dbname,
        "SELECT extract(epoch FROM raised_at), extract(epoch FROM cleared_at), condition_active, occurrences, "
        "linkage_status FROM alerts_alert WHERE kind = 'high_high'",
    ).splitlines()
    assert len(rows) == 1, f"{rows}\n{poller.tail(8000)}"  # exactly one alert
    raised, cleared, active, occurrences, linkage = rows[0].split("|")
    assert raised_at <= float(raised) < raised_at + 1.0  # the time the engine saw it, not the replay's
    assert cleared_at <= float(cleared) < cleared_at + 1.0
    assert (active, occurrences, linkage) == ("f", "1", "confirmed")
    transitions = q(
        pg,
        dbname,
        "SELECT t.action FROM alerts_alerttransition t JOIN alerts_alert a ON a.id = t.alert_id "
        "WHERE a.kind = 'high_high' ORDER BY t.at, t.id",
    ).splitlines()
    assert transitions == ["raise", "return"]
    assert q(pg, dbname, "SELECT count(*) FROM devices_coilwritecommand WHERE status = 'done'") == "1"
    assert q(pg, dbname, "SELECT count(*) FROM devices_coilwritecommand") == "1"
    # The warm-up high stayed active through the leak and returned with it; nothing raised twice.
    assert q(pg, dbname, "SELECT occurrences, condition_active FROM alerts_alert WHERE kind = 'high'") == "1|f"


def test_a_restarted_poller_returns_the_stopped_poller_offline_alert_once_the_device_is_online(rig):
    pg, dbname, modbus, world, _redis, poller = rig
    poller.start()
    wait_online(pg, dbname, world["device"])
    poller.stop()  # SIGTERM: the device is stored offline, "采集进程已停止"
    assert "采集进程已停止" in q(pg, dbname, f"SELECT status_reason FROM devices_device WHERE id = {world['device']}")

    poller.start()
    wait_online(pg, dbname, world["device"])
    offline = "SELECT condition_active FROM alerts_alert WHERE kind = 'device_offline'"
    wait_until(
        lambda: q(pg, dbname, offline) == "f",
        timeout=20,
        what=f"the offline alert of the stopped poller to return to normal\n{q(pg, dbname, offline)!r}\n"
        f"{poller.tail()}",
        interval=0.2,
    )
    assert q(pg, dbname, "SELECT count(*) FROM alerts_alert WHERE kind = 'device_offline'") == "1"
    assert "采集进程已停止" in q(pg, dbname, "SELECT message FROM alerts_alert WHERE kind = 'device_offline'")
