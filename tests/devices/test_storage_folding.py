"""Readings are folded as they are submitted; the writer thread only stores what was kept."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from devices.hooks import ReadingEvent
from devices.poller.storage import ReadingWriter


def test_readings_are_folded_on_submit_and_all_stored_at_stop(tmp_path):
    stored = []
    writer = ReadingWriter(
        poller="t",
        spool_dir=tmp_path / "spool",
        spool_max_bytes=10_000_000,
        flush_interval=60.0,  # no timed write during the test
        store=lambda rows, aggs: stored.extend(rows) or len(rows),
    )
    writer.configure(1, deadband=0.0, heartbeat_s=60)
    base = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    writer.start()
    try:
        for i in range(5):
            writer.submit([ReadingEvent(1, 1, float(i), True, "good", base + timedelta(seconds=i))])
        assert writer.stats["received"] == 5  # folded at once, in the caller's thread ...
        assert writer.stats["flushes"] == 0 and stored == []  # ... but not written yet
    finally:
        writer.stop()
    assert [row[2] for row in stored] == [0.0, 1.0, 2.0, 3.0, 4.0]  # the final flush keeps every folded row
    assert writer.stats["flushes"] == 1


def test_concurrent_submit_and_flush_lose_and_duplicate_nothing(tmp_path):
    """The poller's loop folds while the writer thread flushes and closes minutes."""
    stored, aggs_stored = [], []

    def store(rows, aggs):
        stored.extend(rows)
        aggs_stored.extend(aggs)
        return len(rows)

    writer = ReadingWriter(poller="t", spool_dir=tmp_path / "spool", spool_max_bytes=10**7, store=store)
    for cid in range(1, 11):
        writer.configure(cid, deadband=0.0, heartbeat_s=60)
    base = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    done = threading.Event()

    def flusher():
        while not done.is_set():
            writer.flush()

    thread = threading.Thread(target=flusher)
    thread.start()
    try:
        for k in range(3000):  # 5 minutes at 10 Hz, every value different
            at = base + timedelta(milliseconds=100 * k)
            writer.submit([ReadingEvent(cid, 1, float(k), True, "good", at) for cid in range(1, 11)])
    finally:
        done.set()
        thread.join()
    writer.flush(final=True)
    assert len(stored) == 30_000 and len({(r[0], r[1]) for r in stored}) == 30_000
    per_channel = {}
    for cid, _minute, _mn, _mx, _sm, count, _bad in aggs_stored:
        per_channel[cid] = per_channel.get(cid, 0) + count
    assert per_channel == dict.fromkeys(range(1, 11), 3000)
