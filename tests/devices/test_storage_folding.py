"""The writer thread folds readings in small slices between its (rarer) database writes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from devices.hooks import ReadingEvent
from devices.poller.storage import ReadingWriter


def test_readings_are_folded_between_flushes_and_all_stored_at_stop(tmp_path):
    stored = []
    writer = ReadingWriter(
        poller="t",
        spool_dir=tmp_path / "spool",
        spool_max_bytes=10_000_000,
        flush_interval=60.0,  # no timed write during the test: only the fold runs
        fold_interval=0.01,
        store=lambda rows, aggs: stored.extend(rows) or len(rows),
    )
    writer.configure(1, deadband=0.0, heartbeat_s=60)
    base = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    writer.start()
    try:
        for i in range(5):
            writer.submit([ReadingEvent(1, 1, float(i), True, "good", base + timedelta(seconds=i))])
        deadline = time.monotonic() + 5
        while writer.stats["received"] < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert writer.stats["received"] == 5  # folded by the thread ...
        assert writer.stats["flushes"] == 0 and stored == []  # ... but not written yet
    finally:
        writer.stop()
    assert [row[2] for row in stored] == [0.0, 1.0, 2.0, 3.0, 4.0]  # the final flush keeps every folded row
    assert writer.stats["flushes"] == 1
