"""The alert runtime of a process started while the database is down evaluates on the rules it last
loaded (devices/poller/snapshot.py): a level-1 leak still writes its linkage locally, and what it
raised is replayed once, with the original time and level, when the database returns; the first load
that works replaces the snapshot and restores the open conditions from the database."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError

from alerts import runtime as runtime_module
from alerts.choices import LinkageStatus
from alerts.models import Alert, AlertRule
from alerts.runtime import AlertRuntime
from devices import hooks
from devices.hooks import PollerEvent
from devices.models import CoilWriteCommand
from devices.poller.snapshot import snapshot_path
from tests.alerts.conftest import reading

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def linked(gas):
    gas.rule.linkage_device = gas.device
    gas.rule.linkage_unit_id = 1
    gas.rule.linkage_address = 5
    gas.rule.save()
    return gas


def _database_down(monkeypatch, runtime):
    """Every query of this runtime raises as psycopg does with PostgreSQL stopped."""

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(runtime, "_signature", refuse)
    monkeypatch.setattr(runtime, "_apply_one", refuse)


def test_a_runtime_started_without_the_database_alarms_and_links_on_its_last_rules(linked, monkeypatch, caplog):
    hooks.set_process_name("cold")
    try:
        first = AlertRuntime()
        first.start()  # the database is up: loaded from it, and the snapshot written
        assert snapshot_path("cold", "alerts").exists()

        restarted = AlertRuntime()
        _database_down(monkeypatch, restarted)
        writes = []
        monkeypatch.setattr(hooks, "_coil_writers", [lambda request: writes.append(request) or True])
        with caplog.at_level(logging.WARNING, logger="alerts.runtime"):
            restarted.start()
        assert "last known rules" in caplog.text
        assert restarted.channels == first.channels and restarted.signature is None  # the database still decides

        t0 = datetime.now(UTC) - timedelta(minutes=1)
        monkeypatch.setattr(runtime_module, "_in_event_loop", lambda: True)  # as from the poller's loop
        restarted.on_readings([reading(linked.channel, 65, t0)])  # 65 %LEL: high-high, level 1
        (request,) = writes  # the valve closes without the database
        assert (request.device_id, request.address, request.value) == (linked.device.pk, 5, True)
        request.on_done(True, True, "", request.requested_at, datetime.now(UTC))  # the poller read it back
        assert not Alert.objects.exists()

        # The database returns; the rule changed meanwhile: what was decided on the snapshot stands.
        monkeypatch.undo()
        AlertRule.objects.filter(pk=linked.rule.pk).update(level_high_high=2)
        assert restarted.drain()
        alert = Alert.objects.get(kind="high_high")
        assert alert.raised_at == t0 and alert.level == 1 and alert.rule_id == linked.rule.pk
        assert alert.linkage_status == LinkageStatus.CONFIRMED
        command = CoilWriteCommand.objects.get()  # the local write, recorded once
        assert str(command.uid).replace("-", "") == request.uid and command.status == "done"
        assert restarted.drain() and Alert.objects.filter(kind="high_high").count() == 1

        # The first load that works replaces the snapshot (and now restores the open conditions).
        restarted.maybe_reload(force=True)
        assert restarted.signature is not None and restarted.restored
        assert restarted.channels[linked.channel.pk].levels["high_high"] == 2
    finally:
        hooks.set_process_name("")


def test_no_snapshot_means_no_rules_and_an_error_not_a_crash(gas, monkeypatch, caplog):
    hooks.set_process_name("never-loaded")
    try:
        runtime = AlertRuntime()
        _database_down(monkeypatch, runtime)
        with caplog.at_level(logging.ERROR, logger="alerts.runtime"):
            runtime.start()
        assert not runtime.channels and "no snapshot" in caplog.text
    finally:
        hooks.set_process_name("")


def test_a_cold_start_reaches_the_alert_board_when_the_database_is_back(gas, monkeypatch):
    gas.device.poller = "cold"
    gas.device.save()
    runtime = AlertRuntime()
    monkeypatch.setattr(runtime, "_signature", lambda: None)
    runtime.on_poller_event(PollerEvent("cold_start", "cold", "按 2026-12-08 03:00:00 的配置采集", datetime.now(UTC)))
    assert runtime.drain()
    alert = Alert.objects.get(kind="acquisition")
    assert alert.level == 3 and "上次已知配置" in alert.message and not alert.condition_active
