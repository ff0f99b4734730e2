"""The configuration snapshot a poller starts on while the database is down: what it writes reads back
equal, a damaged file is ignored (never a crash), a write is atomic and happens only on a change, and
``Poller.reload`` polls on the snapshot when the database is unreachable."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import UTC, datetime
from datetime import time as dtime

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError, connections

from alerts import engine as eng
from alerts.runtime import ChannelInfo
from devices import hooks
from devices.models import Channel, Device
from devices.poller import daemon
from devices.poller.decode import ChannelSpec
from devices.poller.snapshot import ConfigSnapshot, snapshot_path

SIGNATURE_AT = datetime(2026, 12, 8, 3, 0, 0, 123456, tzinfo=UTC)


def device_specs() -> dict:
    channels = (
        ChannelSpec(
            1,
            7,
            "GT-101",
            1,
            "holding",
            0,
            scale=0.1,
            range_low=0.0,
            range_high=100.0,
            sentinels=frozenset({-1.0, 65535.0}),
        ),
        ChannelSpec(2, 7, "XV-101", 1, "coil", 3, data_type="bool"),
    )
    spec = daemon.DeviceSpec(
        id=7,
        name="罐区网关",
        enterprise_id=3,
        protocol="tcp",
        host="127.0.0.1",
        port=5020,
        serial_port="",
        baudrate=9600,
        parity="N",
        stopbits=1,
        bytesize=8,
        period_s=0.1,
        timeout_s=0.3,
        retries=1,
        enabled=True,
        maintenance=False,
        status="online",
        channels=channels,
        signature=(SIGNATURE_AT, ((1, SIGNATURE_AT), (2, SIGNATURE_AT))),
    )
    return {7: spec}


def runtime_data() -> dict:
    schedule = eng.Schedule(
        limits=eng.Limits(high=10.0), time_from=dtime(22, 0), time_to=dtime(6, 0), mode="shutdown", name="夜间"
    )
    config = eng.RuleConfig(
        limits=eng.Limits(50.0, 20.0, None, None),
        deadband=2.0,
        on_delay=2.0,
        schedules=(schedule,),
        over_range_high=100.0,
    )
    info = ChannelInfo(7, 3, 11, "GT-101", "罐区可燃气体", "%LEL", {"high": 2, "high_high": 1}, (7, 1, 0, True))
    return {"configs": {1: config}, "infos": {1: info}, "modes": {3: "normal"}}


RUNTIME_TYPES = (eng.RuleConfig, eng.Limits, eng.Schedule, ChannelInfo)


def test_device_specs_read_back_equal_signature_included(tmp_path):
    snap = ConfigSnapshot(tmp_path / "p.poller.json", "poller")
    assert snap.save(device_specs())
    specs, saved_at = ConfigSnapshot(snap.path, "poller").load((daemon.DeviceSpec, ChannelSpec))
    assert specs == device_specs()
    # Equal signatures: the reload that works when the database returns keeps the workers running.
    assert specs[7].signature == device_specs()[7].signature
    assert isinstance(specs[7].channels, tuple) and isinstance(specs[7].channels[0].sentinels, frozenset)
    assert abs((datetime.now(UTC) - saved_at).total_seconds()) < 60


def test_the_alert_runtime_data_reads_back_equal(tmp_path):
    snap = ConfigSnapshot(tmp_path / "p.alerts.json", "alerts")
    snap.save(runtime_data())
    data, _saved_at = ConfigSnapshot(snap.path, "alerts").load(RUNTIME_TYPES)
    assert data == runtime_data()
    assert data["infos"][1].linkage == (7, 1, 0, True)


def test_it_is_written_only_when_the_content_changed(tmp_path):
    snap = ConfigSnapshot(tmp_path / "p.poller.json", "poller")
    assert snap.save(device_specs())
    first = snap.path.read_text()
    assert not snap.save(device_specs())
    # A new process (a restart) compares against the file, not against nothing.
    assert not ConfigSnapshot(snap.path, "poller").save(device_specs())
    changed = device_specs()
    changed[8] = changed[7].__class__(**{**changed[7].__dict__, "id": 8})
    assert ConfigSnapshot(snap.path, "poller").save(changed)
    assert snap.path.read_text() != first


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # torn (a copy by hand, a full disk)
        lambda text: "",
        lambda text: "\x00\x01garbage",
        lambda text: text.replace('"version": 1', '"version": 99'),  # another version
        lambda text: text.replace('"kind": "poller"', '"kind": "alerts"'),
        lambda text: text.replace("127.0.0.1", "127.0.0.2"),  # edited: the checksum no longer matches
        lambda text: json.dumps({**json.loads(text), "data": {"__dc__": "Popen", "f": {}}}),  # not ours
    ],
)
def test_a_damaged_snapshot_is_logged_and_ignored(tmp_path, damage, caplog):
    snap = ConfigSnapshot(tmp_path / "p.poller.json", "poller")
    snap.save(device_specs())
    snap.path.write_text(damage(snap.path.read_text()))
    with caplog.at_level(logging.ERROR, logger="devices.poller.snapshot"):
        assert ConfigSnapshot(snap.path, "poller").load((daemon.DeviceSpec, ChannelSpec)) is None
    assert "unusable and ignored" in caplog.text


def test_a_class_the_reader_does_not_name_is_refused(tmp_path):
    snap = ConfigSnapshot(tmp_path / "p.alerts.json", "alerts")
    snap.save(runtime_data())
    assert ConfigSnapshot(snap.path, "alerts").load((eng.RuleConfig, eng.Limits)) is None


def test_a_failed_write_leaves_the_previous_snapshot_whole(tmp_path, monkeypatch):
    snap = ConfigSnapshot(tmp_path / "p.poller.json", "poller")
    snap.save(device_specs())
    before = snap.path.read_text()

    def crash(*args):
        raise OSError("disk pulled")

    monkeypatch.setattr(os, "replace", crash)
    changed = {8: device_specs()[7].__class__(**{**device_specs()[7].__dict__, "id": 8})}
    assert not snap.save(changed)  # logged, not raised
    assert snap.path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["p.poller.json"]  # no temporary file left behind
    monkeypatch.undo()
    assert snap.save(changed)  # (and not believed written: the next save writes it)


def test_the_write_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append("rename"), real_replace(a, b))[1])
    ConfigSnapshot(tmp_path / "p.poller.json", "poller").save(device_specs())
    assert calls == ["fsync", "rename", "fsync"]  # the file, the rename, the directory


# --- the poller ---------------------------------------------------------------------------------------


def _make_device(world):
    device = Device.objects.create(
        enterprise=world.here, name="罐区网关", host="127.0.0.1", port=1, poll_period_ms=100, timeout_ms=100
    )
    Channel.objects.create(device=device, tag="GT-101", name="可燃气体", address=0, scale=0.1)
    return device


def _poller(name="cold"):
    return daemon.Poller(daemon.PollerConfig(name=name, live_push_interval=0, snapshot=True), store_status=False)


@pytest.mark.django_db(transaction=True)
async def test_a_poller_started_while_the_database_is_down_polls_its_last_configuration(world, monkeypatch, caplog):
    device = await sync_to_async(_make_device)(world)
    first = _poller()
    await first.reload()
    assert snapshot_path("cold", "poller").exists()
    saves = []
    monkeypatch.setattr(first.snapshot, "save", saves.append)
    await first.reload()
    assert not saves  # an unchanged configuration is not encoded again at every reload
    monkeypatch.undo()
    await asyncio.gather(*(w.stop() for w in first.workers.values()))

    def unreachable(*args):
        raise OperationalError("connection refused")

    monkeypatch.setattr(daemon, "load_device_specs", unreachable)
    events = []
    monkeypatch.setattr(hooks, "_poller_sinks", [events.append])
    second = _poller()
    with caplog.at_level(logging.WARNING, logger="devices.poller"):
        await second.reload()
    try:
        assert set(second.workers) == {device.pk}
        assert second.specs == first.specs and second.config_source == "snapshot"
        assert "last known configuration" in caplog.text
        (event,) = events
        assert event.kind == "cold_start" and event.poller == "cold"
        await second.reload()  # still down: not loaded (nor announced) again
        assert len(events) == 1

        # The database returns: its configuration replaces the snapshot, the same worker goes on.
        worker = second.workers[device.pk]
        monkeypatch.undo()
        await second.reload()
        assert second.config_source == "database" and second.workers[device.pk] is worker
    finally:
        await asyncio.gather(*(w.stop() for w in second.workers.values()))
        for poller in (first, second):  # (their database threads hold connections)
            poller._db.submit(daemon._close_connection).result(timeout=10)
            poller._db.shutdown(wait=True)
        await sync_to_async(connections.close_all)()  # the ORM thread of sync_to_async keeps one open


@pytest.mark.django_db(transaction=True)
async def test_without_a_snapshot_a_start_during_an_outage_polls_nothing_and_says_so(world, monkeypatch, caplog):
    monkeypatch.setattr(daemon, "load_device_specs", lambda *a: (_ for _ in ()).throw(OperationalError("down")))
    poller = _poller("never-loaded")
    with caplog.at_level(logging.ERROR):
        await poller.reload()
    assert not poller.workers
    assert "no usable snapshot" in caplog.text
    poller._db.shutdown(wait=True)


def test_status_writes_waiting_for_a_hung_database_are_bounded(monkeypatch):
    """While the database hangs, each status change would wait in the database thread's queue."""
    release = __import__("threading").Event()
    monkeypatch.setattr(daemon, "_store_status", lambda *a: release.wait(10))
    monkeypatch.setattr(daemon, "STATUS_BACKLOG", 5)
    poller = daemon.Poller(daemon.PollerConfig(name="b"))
    spec = device_specs()[7]
    try:
        for i in range(50):
            poller.set_status(spec, "online" if i % 2 else "offline", "")
        assert poller._status_backlog == 5 and poller.status_dropped == 45
    finally:
        release.set()
        poller._db.shutdown(wait=True)
    assert poller._status_backlog == 0
