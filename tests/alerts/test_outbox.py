"""The alert outbox: every engine change is on disk before the database is tried, applied in order,
kept while the database is down, replayed exactly once (also after a crash between commit and removal),
bounded (a full outbox says so); a level-1 linkage is written by the local poller without the database;
a restored offline condition is judged against the status the device reported before the restore."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError

from alerts.choices import AlertState, LinkageStatus, ResponseKind
from alerts.models import Alert, AlertChangeApplied, AlertTransition
from alerts.outbox import Outbox
from devices import hooks
from devices.hooks import DeviceStatusEvent, PollerEvent
from devices.models import CoilWriteCommand
from tests.alerts.conftest import reading

# --- the file itself -------------------------------------------------------------------------------


def test_changes_come_out_in_the_order_they_went_in_and_survive_a_reopen(tmp_path):
    path = tmp_path / "p.sqlite3"
    box = Outbox(path)
    for i in range(5):
        box.append({"n": i})
    assert [e.payload["n"] for e in box.peek()] == [0, 1, 2, 3, 4]
    box.remove(box.peek(1)[0])
    # A second process opening the file (the poller after a kill -9): nothing was held only in memory.
    again = Outbox(path)
    assert [e.payload["n"] for e in again.peek()] == [1, 2, 3, 4]
    assert len(again) == 4
    again.append({"n": 5})
    assert [e.payload["n"] for e in box.peek()] == [1, 2, 3, 4, 5]  # order is the file's, for both


def test_a_change_id_is_queued_once(tmp_path):
    box = Outbox(tmp_path / "p.sqlite3")
    box.append({"n": 1}, "abc")
    box.append({"n": 1}, "abc")
    assert len(box) == 1


def test_a_full_outbox_keeps_order_in_memory_and_refills_the_file(tmp_path, caplog):
    path = tmp_path / "p.sqlite3"
    box = Outbox(path, max_items=2)
    flags = [box.append({"n": i})[1] for i in range(4)]
    assert flags == [True, True, False, False]
    assert box.full and len(box) == 4
    assert [e.payload["n"] for e in box.peek()] == [0, 1, 2, 3]
    box.remove(box.peek(1)[0])  # one written: the oldest waiting change moves to the file
    assert len(Outbox(path, max_items=2)) == 2
    assert [e.payload["n"] for e in box.peek()] == [1, 2, 3]
    # Past the bound in memory as well, a change is dropped, loudly.
    small = Outbox(tmp_path / "q.sqlite3", max_items=1)
    with caplog.at_level(logging.CRITICAL):
        for i in range(3):
            small.append({"n": i})
    assert small.dropped == 1 and "dropped" in caplog.text


def test_a_change_the_database_refuses_is_set_aside_not_lost(tmp_path):
    box = Outbox(tmp_path / "p.sqlite3")
    first, _ = box.append({"n": 0})
    box.append({"n": 1})
    box.set_aside(first, "IntegrityError")
    assert [e.payload["n"] for e in box.peek()] == [1]
    assert box.set_aside_entries()[0][1:] == ({"n": 0}, "IntegrityError")


# --- the runtime with its outbox ------------------------------------------------------------------

pytestmark_db = pytest.mark.django_db(transaction=True)


def _down(monkeypatch, rt):
    """The database is down: every write raises OperationalError (as psycopg does)."""
    real = rt._apply_one

    def refuse(change, **kw):
        raise OperationalError("connection refused")

    monkeypatch.setattr(rt, "_apply_one", refuse)
    return real


@pytestmark_db
def test_an_alert_raised_while_the_database_is_down_is_written_when_it_returns(rt, gas, monkeypatch):
    real = _down(monkeypatch, rt)
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    rt.on_readings([reading(gas.channel, 30, t0)])
    rt.on_readings([reading(gas.channel, 35, t0 + timedelta(seconds=1))])  # still active: no new change
    assert not Alert.objects.exists()
    assert len(rt.outbox) == 1  # kept, not "could not record" and forgotten
    monkeypatch.setattr(rt, "_apply_one", real)
    assert rt.drain()
    alert = Alert.objects.get(channel=gas.channel, kind="high")
    assert alert.raised_at == t0 and alert.state == AlertState.ACTIVE_UNACK  # the original time
    assert len(rt.outbox) == 0


@pytestmark_db
def test_raise_and_return_are_replayed_in_order(rt, gas, monkeypatch):
    real = _down(monkeypatch, rt)
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    rt.on_readings([reading(gas.channel, 30, t0)])
    rt.on_readings([reading(gas.channel, 5, t0 + timedelta(seconds=10))])
    assert [e.payload["active"] for e in rt.outbox.peek()] == [True, False]
    monkeypatch.setattr(rt, "_apply_one", real)
    rt.drain()
    alert = Alert.objects.get(channel=gas.channel, kind="high")
    assert alert.raised_at == t0 and alert.cleared_at == t0 + timedelta(seconds=10)
    assert not alert.condition_active and alert.state == AlertState.CLEARED_UNACK


@pytestmark_db
def test_a_change_applied_but_not_removed_is_not_applied_twice(rt, gas, monkeypatch):
    """A kill -9 between the commit and the removal from the outbox: the replay finds the change id
    stored with what it wrote and does nothing."""
    real = _down(monkeypatch, rt)
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    rt.on_readings([reading(gas.channel, 30, t0)])
    monkeypatch.setattr(rt, "_apply_one", real)
    (entry,) = rt.outbox.peek()
    rt._apply_entry(entry)  # committed; the process dies before ``remove``
    # The restarted process opens the same file and drains it.
    rt._outbox_path = None
    assert len(rt.outbox) == 1
    rt.drain()
    alert = Alert.objects.get(channel=gas.channel, kind="high")
    assert alert.occurrences == 1
    assert AlertTransition.objects.filter(alert=alert).count() == 1
    assert AlertChangeApplied.objects.filter(change_id=entry.change_id, alert=alert).exists()
    assert len(rt.outbox) == 0


@pytestmark_db
def test_a_full_outbox_is_critical_and_a_spool_full_event(rt, gas, monkeypatch, settings, caplog):
    settings.ALERT_OUTBOX_MAX_CHANGES = 2
    events = []
    monkeypatch.setattr(hooks, "_poller_sinks", [events.append])
    real = _down(monkeypatch, rt)
    t0 = datetime.now(UTC)
    with caplog.at_level(logging.CRITICAL):
        rt.on_readings([reading(gas.channel, 30, t0)])
        rt.on_readings([reading(gas.channel, 5, t0 + timedelta(seconds=1))])
        rt.on_readings([reading(gas.channel, 30, t0 + timedelta(seconds=2))])
    assert len(rt.outbox) == 3  # nothing dropped yet: the rest wait in memory
    assert "alert outbox" in caplog.text and "full" in caplog.text
    full = [e for e in events if isinstance(e, PollerEvent) and e.kind == "spool_full"]
    assert len(full) == 1  # once per outage, not once per change
    # The database returns: the changes are written, and the board shows that the outbox overflowed.
    from alerts.runtime import poller_sink

    type(gas.device).objects.filter(pk=gas.device.pk).update(poller=full[0].poller)
    poller_sink(full[0])
    monkeypatch.setattr(rt, "_apply_one", real)
    assert rt.drain()
    notice = Alert.objects.get(kind="acquisition")
    assert notice.device == gas.device and notice.level == 2 and notice.state == AlertState.CLEARED_UNACK
    assert Alert.objects.get(kind="high").occurrences == 2


# --- linkage without the database ---------------------------------------------------------------


@pytest.fixture
def linked(gas):
    gas.rule.linkage_device = gas.device
    gas.rule.linkage_unit_id = 1
    gas.rule.linkage_address = 5
    gas.rule.save()
    return gas


@pytest.fixture
def local_poller(monkeypatch):
    """A poller in this process that polls every device: it takes the write and confirms it."""
    writes = []

    def writer(request):
        writes.append(request)
        return True

    monkeypatch.setattr(hooks, "_coil_writers", [writer])
    return writes


def _confirm(request, ok=True):
    finished = datetime.now(UTC)
    request.on_done(ok, ok, "" if ok else "设备无应答", request.requested_at, finished)
    return finished


@pytestmark_db
def test_a_level_one_leak_writes_the_coil_locally_with_the_database_down(rt, linked, local_poller, monkeypatch):
    real = _down(monkeypatch, rt)
    t0 = datetime.now(UTC) - timedelta(minutes=1)
    rt.on_readings([reading(linked.channel, 65, t0)])
    (request,) = local_poller  # asked at once, from the evaluating call, without the database
    assert (request.device_id, request.unit_id, request.address, request.value) == (linked.device.pk, 1, 5, True)
    finished = _confirm(request)
    assert not Alert.objects.exists() and not CoilWriteCommand.objects.exists()
    monkeypatch.setattr(rt, "_apply_one", real)
    assert rt.drain()
    alert = Alert.objects.get(kind="high_high")
    command = CoilWriteCommand.objects.get()
    assert alert.raised_at == t0
    assert str(command.uid).replace("-", "") == request.uid and command.status == "done" and command.readback
    assert command.finished_at == finished
    assert alert.linkage_command == command and alert.linkage_status == LinkageStatus.CONFIRMED
    assert alert.responses.filter(kind=ResponseKind.VALVE_CLOSED).count() == 1
    # Nobody issues a second write for this occurrence.
    from alerts import services

    services.alerts_sync_linkage()
    assert CoilWriteCommand.objects.count() == 1


@pytestmark_db
def test_a_local_write_replayed_twice_stores_one_command(rt, linked, local_poller, monkeypatch):
    real = _down(monkeypatch, rt)
    rt.on_readings([reading(linked.channel, 65)])
    _confirm(local_poller[0])
    monkeypatch.setattr(rt, "_apply_one", real)
    for entry in rt.outbox.peek():
        rt._apply_entry(entry)  # applied, never removed (kill -9)
    rt.drain()
    assert CoilWriteCommand.objects.count() == 1
    assert Alert.objects.get(kind="high_high").responses.filter(kind=ResponseKind.VALVE_CLOSED).count() == 1


@pytestmark_db
def test_without_a_local_poller_the_command_row_is_the_fallback(rt, linked, monkeypatch):
    monkeypatch.setattr(hooks, "_coil_writers", [])
    rt.on_readings([reading(linked.channel, 65)])
    command = CoilWriteCommand.objects.get()
    assert command.status == "pending"
    assert Alert.objects.get(kind="high_high").linkage_command == command


@pytestmark_db
def test_a_reoccurrence_on_an_unacknowledged_alert_writes_the_coil_again(rt, linked, local_poller):
    t0 = datetime.now(UTC) - timedelta(minutes=1)
    rt.on_readings([reading(linked.channel, 65, t0)])
    _confirm(local_poller[0])
    rt.drain()
    rt.on_readings([reading(linked.channel, 5, t0 + timedelta(seconds=5))])
    rt.on_readings([reading(linked.channel, 65, t0 + timedelta(seconds=10))])
    assert len(local_poller) == 2  # written again, locally
    rt.drain()
    from alerts import services

    services.alerts_sync_linkage()  # the first write's command must not confirm the second one
    assert Alert.objects.get(kind="high_high").linkage_status == LinkageStatus.REQUESTED
    _confirm(local_poller[1])
    rt.drain()
    alert = Alert.objects.get(kind="high_high")
    assert alert.occurrences == 2 and alert.state == AlertState.ACTIVE_UNACK
    assert CoilWriteCommand.objects.filter(status="done").count() == 2
    assert alert.linkage_status == LinkageStatus.CONFIRMED
    assert alert.linkage_command == CoilWriteCommand.objects.latest("id")
    assert alert.responses.filter(kind=ResponseKind.VALVE_CLOSED).count() == 2


@pytestmark_db
def test_a_reoccurrence_writes_the_coil_again_through_the_service_too(rt, linked, monkeypatch):
    monkeypatch.setattr(hooks, "_coil_writers", [])
    t0 = datetime.now(UTC) - timedelta(minutes=1)
    rt.on_readings([reading(linked.channel, 65, t0)])
    rt.on_readings([reading(linked.channel, 5, t0 + timedelta(seconds=5))])
    rt.on_readings([reading(linked.channel, 65, t0 + timedelta(seconds=10))])
    alert = Alert.objects.get(kind="high_high")
    assert alert.occurrences == 2
    assert CoilWriteCommand.objects.count() == 2  # before: occurrences=2 and no new command
    assert alert.linkage_command == CoilWriteCommand.objects.latest("id")


# --- restored conditions ---------------------------------------------------------------------------


@pytestmark_db
def test_a_restored_offline_returns_when_the_device_reported_online_before_the_restore(rt, gas):
    """A poller restart: the last one stored 采集进程已停止 (offline); the new one connects and reports
    online before its runtime has loaded the rules and restored the open offline alert."""
    from alerts import services

    t0 = datetime.now(UTC) - timedelta(minutes=1)
    services.alert_raise(
        enterprise=gas.device.enterprise,
        device=gas.device,
        kind="device_offline",
        level=3,
        message="设备离线(采集进程已停止)",
        at=t0,
    )
    fresh_online = t0 + timedelta(seconds=30)
    rt.on_status(DeviceStatusEvent(gas.device.pk, True, "", fresh_online, "online"))
    rt.maybe_reload(force=True)
    rt.drain()
    alert = Alert.objects.get(kind="device_offline")
    assert not alert.condition_active and alert.cleared_at == fresh_online


@pytestmark_db
def test_a_restored_offline_stays_when_the_device_did_not_report(rt, gas):
    from alerts import services

    services.alert_raise(
        enterprise=gas.device.enterprise, device=gas.device, kind="device_offline", level=3, message="离线"
    )
    rt.maybe_reload(force=True)
    rt.drain()
    assert Alert.objects.get(kind="device_offline").condition_active
    rt.on_status(DeviceStatusEvent(gas.device.pk, True, "", datetime.now(UTC), "online"))
    assert not Alert.objects.get(kind="device_offline").condition_active


@pytestmark_db
def test_a_restarted_process_replays_before_it_has_loaded_the_rules(rt, linked, monkeypatch):
    """The change carries what the engine knew (rule, level, names): a new process drains its
    predecessor's outbox before its own rules are loaded, and nothing is skipped."""
    from alerts.runtime import AlertRuntime

    _down(monkeypatch, rt)
    monkeypatch.setattr(hooks, "_coil_writers", [])
    t0 = datetime.now(UTC) - timedelta(minutes=1)
    rt.on_readings([reading(linked.channel, 65, t0)])
    assert len(rt.outbox) == 2  # high-high and high
    successor = AlertRuntime()
    assert not successor.channels
    assert successor.drain()
    alert = Alert.objects.get(kind="high_high")
    assert alert.level == 1 and alert.raised_at == t0 and alert.rule_id == linked.rule.pk
    assert "GT-101" in alert.message


@pytestmark_db
def test_a_local_linkage_that_never_reports_is_written_again_through_a_command(rt, linked, local_poller):
    """The poller died between the coil write and queueing its result: in doubt, close the valve again."""
    from alerts import services

    rt.on_readings([reading(linked.channel, 65)])  # the local write is asked, its result never comes
    alert = Alert.objects.get(kind="high_high")
    assert alert.linkage_status == LinkageStatus.REQUESTED and alert.linkage_command is None
    services.alerts_sync_linkage()
    assert not CoilWriteCommand.objects.exists()  # not yet: the result may still be on its way
    Alert.objects.filter(pk=alert.pk).update(updated_at=datetime.now(UTC) - timedelta(minutes=5))
    services.alerts_sync_linkage()
    command = CoilWriteCommand.objects.get()
    assert Alert.objects.get(pk=alert.pk).linkage_command == command and command.status == "pending"


@pytestmark_db
def test_a_change_whose_rule_was_deleted_meanwhile_still_raises_its_alert(rt, gas, monkeypatch):
    real = _down(monkeypatch, rt)
    rt.on_readings([reading(gas.channel, 30)])
    gas.rule.delete()
    monkeypatch.setattr(rt, "_apply_one", real)
    assert rt.drain()
    alert = Alert.objects.get(kind="high")
    assert alert.rule is None and alert.level == 2
