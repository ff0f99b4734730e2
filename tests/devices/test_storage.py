"""Storage: deadband/heartbeat, aggregates, and store-and-forward when the database is down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import OperationalError

from devices.choices import Quality
from devices.hooks import PollerEvent, ReadingEvent, register_poller_sink
from devices.models import Channel, Device, Reading, ReadingAggregate
from devices.poller import storage
from devices.poller.storage import ReadingWriter, Spool


@pytest.fixture
def channel(world):
    device = Device.objects.create(enterprise=world.here, name="GW-1", host="127.0.0.1", port=15999)
    return Channel.objects.create(device=device, tag="GT-101", name="可燃气体", address=0, deadband=0.5, heartbeat_s=10)


def ev(channel, t, value, quality=Quality.GOOD):
    return ReadingEvent(channel.pk, channel.device_id, value, quality == Quality.GOOD, quality, t)


def test_deadband_keeps_changes_quality_flips_and_heartbeats(channel, tmp_path):
    stored = []
    w = make_writer(tmp_path, store=lambda rows, aggs: stored.extend(rows) or len(rows))
    w.configure(channel.pk, deadband=0.5, heartbeat_s=10)
    base = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    samples = [
        (1.0, "good", 0),
        (1.2, "good", 1),
        (1.6, "good", 2),
        (1.7, "good", 3),
        (None, "timeout", 4),
        (None, "timeout", 5),
        (1.7, "good", 6),
        (1.7, "good", 16.5),
    ]
    w.submit([ev(channel, base + timedelta(seconds=s), v, q) for v, q, s in samples])
    w.flush()
    kept = [(v, q) for _c, _t, v, q, _d, _p in stored]
    assert kept == [(1.0, "good"), (1.6, "good"), (None, "timeout"), (1.7, "good"), (1.7, "good")]


def make_writer(tmp_path, store=storage.store_batch, max_bytes=10_000_000, now=None):
    clock = (lambda: now) if now is not None else None
    kwargs = {"clock": clock} if clock else {}
    return ReadingWriter(poller="t", spool_dir=tmp_path / "spool", spool_max_bytes=max_bytes, store=store, **kwargs)


def test_aggregates_cover_every_sample_and_raw_rows_are_compressed(channel, tmp_path):
    base = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    w = make_writer(tmp_path, now=(base + timedelta(minutes=5)).timestamp())
    w.configure(channel.pk, 0.5, 10)
    events = [ev(channel, base + timedelta(seconds=i * 0.1), 1.0 + (i % 3) * 0.1) for i in range(100)]
    events.append(ev(channel, base + timedelta(seconds=11), None, Quality.TIMEOUT))
    w.submit(events)
    w.flush()
    agg = ReadingAggregate.objects.get(channel=channel)
    assert (agg.count, agg.bad_count) == (100, 1)
    assert agg.min == pytest.approx(1.0) and agg.max == pytest.approx(1.2)
    assert agg.mean == pytest.approx(sum(e.value for e in events[:100]) / 100)
    # 100 samples within the deadband: the first, then the quality change
    assert Reading.objects.filter(channel=channel).count() == 2


def test_database_down_spools_in_order_and_flushes_without_loss_or_duplicates(channel, tmp_path):
    failures = {"left": 3}
    calls = []

    def flaky(rows, aggs):
        calls.append(len(rows))
        if failures["left"] > 0:
            failures["left"] -= 1
            raise OperationalError("connection refused")
        return storage.store_batch(rows, aggs)

    events_seen = []
    register_poller_sink(events_seen.append)
    w = make_writer(tmp_path, store=flaky)
    w.retry_interval = 0
    w.configure(channel.pk, 0.0, 1)
    base = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    sent = []
    for batch in range(6):
        evs = [ev(channel, base + timedelta(seconds=batch, milliseconds=i * 100), batch * 10 + i) for i in range(10)]
        sent.extend(evs)
        w.submit(evs)
        w.flush()
    w.flush(final=True)
    stored = list(Reading.objects.filter(channel=channel).order_by("time").values_list("time", "value"))
    assert [v for _t, v in stored] == [e.value for e in sent]
    assert len(w.spool) == 0
    kinds = [e.kind for e in events_seen if isinstance(e, PollerEvent) and e.poller == "t"]
    assert kinds[0] == "db_down" and "db_up" in kinds


def test_replaying_a_batch_after_a_crash_does_not_duplicate(channel, tmp_path):
    spool = Spool(tmp_path / "s", 10_000_000)
    t = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1e6)
    rows = [(channel.pk, t + i, float(i), "good", None, "t") for i in range(5)]
    spool.append(rows, [])
    storage.store_batch(rows, [])  # stored, but the process died before deleting the spool file
    w = ReadingWriter(poller="t", spool_dir=tmp_path / "s", spool_max_bytes=10_000_000)
    w.flush(final=True)
    assert Reading.objects.filter(channel=channel).count() == 5
    assert len(w.spool) == 0


def test_full_spool_drops_oldest_and_raises_an_alert(channel, tmp_path):
    events_seen = []
    register_poller_sink(events_seen.append)

    def down(rows, aggs):
        raise OperationalError("down")

    w = make_writer(tmp_path, store=down, max_bytes=2_000)
    w.configure(channel.pk, 0.0, 1)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for batch in range(20):
        w.submit([ev(channel, base + timedelta(seconds=batch, milliseconds=i), i) for i in range(5)])
        w.flush()
    assert w.spool.size_bytes <= 2_000
    assert w.stats["dropped_batches"] > 0
    full = [e for e in events_seen if isinstance(e, PollerEvent) and e.kind == "spool_full" and e.poller == "t"]
    assert len(full) == 1  # announced once per episode, not once per batch


def test_readings_of_a_deleted_channel_do_not_poison_the_batch(channel, tmp_path):
    other = Channel.objects.create(device=channel.device, tag="GT-102", name="x", address=1)
    t = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1e6)
    rows = [(channel.pk, t, 1.0, "good", None, "t"), (other.pk, t, 2.0, "good", None, "t")]
    other.delete()
    storage.store_batch(rows, [])
    assert list(Reading.objects.values_list("channel_id", flat=True)) == [channel.pk]


# --- replays are idempotent (issue 15.7) -------------------------------------------------------


def _minute_of_samples(channel, base, n=30):
    return [ev(channel, base + timedelta(seconds=i), float(i)) for i in range(n)]


def _aggregate(channel):
    agg = ReadingAggregate.objects.get(channel=channel)
    return agg.count, agg.bad_count, agg.sum, agg.min, agg.max


def test_a_spooled_batch_committed_before_a_crash_is_not_added_again_on_replay(channel, tmp_path):
    """kill -9 after a spooled batch committed but before its file was removed: the restarted
    writer replays the file; its aggregates must not be added a second time."""
    base = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)

    def down(rows, aggs, batch=None):
        raise OperationalError("connection refused")

    first = make_writer(tmp_path, store=down, now=(base + timedelta(minutes=5)).timestamp())
    first.configure(channel.pk, 0.0, 1)
    first.submit(_minute_of_samples(channel, base))
    first.flush(final=True)  # the database is down: the batch (readings and the minute) is spooled
    assert len(first.spool) == 1
    path, rows, aggs, batch = first.spool.peek()
    assert aggs and batch is not None
    storage.store_batch(rows, aggs, batch)  # the replay committed... and the process died here

    restarted = make_writer(tmp_path, now=(base + timedelta(minutes=6)).timestamp())
    restarted.flush(final=True)
    assert len(restarted.spool) == 0
    assert _aggregate(channel) == (30, 0, float(sum(range(30))), 0.0, 29.0)
    assert Reading.objects.filter(channel=channel).count() == 30


def test_a_commit_whose_reply_was_lost_is_not_counted_twice(channel, tmp_path):
    """The store committed but the connection broke before the reply: the batch goes to the spool
    all the same (the writer cannot know), and its replay is skipped."""
    base = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    calls = []

    def commit_then_lose_the_reply(rows, aggs, batch=None):
        stored = storage.store_batch(rows, aggs, batch)
        if not calls:
            calls.append(batch)
            raise OperationalError("server closed the connection unexpectedly")
        return stored

    w = make_writer(tmp_path, store=commit_then_lose_the_reply, now=(base + timedelta(minutes=5)).timestamp())
    w.retry_interval = 0
    w.configure(channel.pk, 0.0, 1)
    w.submit(_minute_of_samples(channel, base))
    w.flush(final=True)
    assert calls and len(w.spool) == 0
    assert _aggregate(channel)[:3] == (30, 0, float(sum(range(30))))


def test_batches_of_a_restarted_writer_are_never_mistaken_for_replays(channel, tmp_path):
    """Keys are unique across restarts: a new writer's first batch is stored, not skipped."""
    base = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    for run in range(2):
        w = make_writer(tmp_path, now=(base + timedelta(minutes=5)).timestamp())
        w.configure(channel.pk, 0.0, 1)
        w.submit([ev(channel, base + timedelta(seconds=run * 30 + i), 1.0) for i in range(10)])
        w.flush(final=True)
    assert _aggregate(channel)[:3] == (20, 0, 20.0)


def test_keys_of_stored_batches_are_pruned_once_the_spool_is_empty(channel, tmp_path):
    from devices.models import StoredBatch

    base = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    w = make_writer(tmp_path, now=(base + timedelta(minutes=5)).timestamp())
    w.configure(channel.pk, 0.0, 1)
    w.submit(_minute_of_samples(channel, base))
    w.flush(final=True)
    assert StoredBatch.objects.filter(poller="t").count() == 1
    w.clock = lambda: (base + timedelta(hours=3)).timestamp()
    w.flush()
    assert StoredBatch.objects.filter(poller="t").count() == 0


def test_a_damaged_spool_file_is_set_aside_and_the_queue_behind_it_drains(channel, tmp_path):
    spool = Spool(tmp_path / "s", 10_000_000)
    t = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1e6)
    spool.append([(channel.pk, t, 1.0, "good", None, "t")], [])
    spool.append([(channel.pk, t + 1, 2.0, "good", None, "t")], [])
    first = sorted((tmp_path / "s").glob("*.json"))[0]
    first.write_bytes(b"\x78\x01garbage")  # a disk error, say: not a batch any more
    w = ReadingWriter(poller="t", spool_dir=tmp_path / "s", spool_max_bytes=10_000_000)
    w.flush(final=True)
    assert list(Reading.objects.values_list("value", flat=True)) == [2.0]
    assert len(w.spool) == 0 and first.with_suffix(".rejected").exists()


def test_spool_files_of_the_previous_format_are_still_replayed(channel, tmp_path):
    import json

    (tmp_path / "s").mkdir()
    t = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1e6)
    plain = {"rows": [[channel.pk, t, 3.0, "good", None, "t"]], "aggs": []}
    (tmp_path / "s" / f"{0:015d}.json").write_text(json.dumps(plain))
    w = ReadingWriter(poller="t", spool_dir=tmp_path / "s", spool_max_bytes=10_000_000)
    w.flush(final=True)
    assert list(Reading.objects.values_list("value", flat=True)) == [3.0]


def test_a_long_drain_yields_so_new_readings_queue_on_disk_behind_it_in_order(channel, tmp_path):
    """After a long outage the drain takes a while: it stops after its time budget, the next flush
    spools the readings that arrived meanwhile behind the rest, and nothing is lost or reordered."""
    import time as _time

    def down(rows, aggs, batch=None):
        raise OperationalError("down")

    def slow(rows, aggs, batch=None):
        _time.sleep(0.4)
        return storage.store_batch(rows, aggs, batch)

    base = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    w = make_writer(tmp_path, store=down)
    w.retry_interval = 0
    w.flush_interval = 0.1  # a budget of 1 s per flush
    w.configure(channel.pk, 0.0, 1)
    sent = 0
    for batch in range(5):
        w.submit([ev(channel, base + timedelta(seconds=batch), float(sent))])
        sent += 1
        w.flush()
    assert len(w.spool) == 5
    w.store, w._store_takes_batch = slow, True
    w.flush()  # the database is back: ~2 of 5 batches within the budget
    assert 0 < len(w.spool) < 5
    w.submit([ev(channel, base + timedelta(seconds=10), float(sent))])
    sent += 1
    w.flush()
    w.flush(final=True)
    assert len(w.spool) == 0
    assert list(Reading.objects.order_by("time").values_list("value", flat=True)) == [float(i) for i in range(sent)]


def test_a_large_flush_is_stored_as_bounded_batches_in_order(channel, tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "MAX_BATCH_ROWS", 4)
    batches = []
    w = make_writer(tmp_path, store=lambda rows, aggs: batches.append((list(rows), list(aggs))) or len(rows))
    w.configure(channel.pk, 0.0, 0)
    base = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    w.submit([ev(channel, base + timedelta(seconds=i), float(i)) for i in range(10)])
    w.flush(final=True)
    assert [len(rows) for rows, _aggs in batches] == [4, 4, 2]
    assert [v for rows, _aggs in batches for _c, _t, v, *_ in rows] == [float(i) for i in range(10)]
    assert [bool(aggs) for _rows, aggs in batches] == [False, False, True]
