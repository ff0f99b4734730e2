"""Ingest benchmark (PostgreSQL): readings/s through the devices writer vs raw COPY, same run.

    .venv/bin/python bench/ingest.py [--channels 1000] [--samples 500] [--batch 50000]

Uses its own database (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/
regulator_bench_ingest), created and migrated if missing; the readings tables are emptied
between measurements. Measures:

- raw COPY: psycopg ``cursor.copy`` straight into devices_reading, one transaction per batch;
- store_postgres: the writer's storage step alone (COPY into a staging table, INSERT .. ON
  CONFLICT DO NOTHING joined to the channels, aggregate upsert);
- writer end to end: ReadingEvents -> deadband + 1-minute aggregation -> store_postgres;
- replay: the same batches again (every row a conflict), as after a spool flush that was
  interrupted after commit.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/regulator_bench_ingest")


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=500, help="samples per channel")
    parser.add_argument("--batch", type=int, default=50_000, help="rows per transaction (~0.5 s at 100k/s)")
    args = parser.parse_args()

    ensure_database(DB_URL)
    os.environ["DATABASE_URL"] = DB_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "regulator.settings")
    import django

    django.setup()
    import logging

    logging.disable(logging.WARNING)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from devices import hooks
    from devices.models import Channel, Device, Reading
    from devices.poller.storage import ReadingWriter, from_us, store_postgres
    from tests import factories as f

    hooks._poller_sinks.clear()
    regions = f.region_tree()
    ent = f.enterprise(regions["county"], name="基准测试化工") if not Device.objects.exists() else None
    device = Device.objects.first() or Device.objects.create(enterprise=ent, name="bench", host="127.0.0.1", port=1)
    have = Channel.objects.filter(device=device).count()
    Channel.objects.bulk_create(
        [Channel(device=device, tag=f"B-{i}", name="b", address=i, deadband=0.0) for i in range(have, args.channels)]
    )
    channel_ids = list(Channel.objects.filter(device=device).order_by("id").values_list("id", flat=True))[
        : args.channels
    ]

    def reset():
        with connection.cursor() as c:
            c.execute("TRUNCATE devices_reading, devices_readingaggregate")

    base = datetime(2026, 1, 1, tzinfo=UTC)
    t0_us = int(base.timestamp() * 1e6)
    # 10 Hz samples; every value differs so the deadband keeps them all (worst case for storage)
    rows = [
        (cid, t0_us + k * 100_000, float(k % 97) + i * 0.001, "good", None, "bench")
        for k in range(args.samples)
        for i, cid in enumerate(channel_ids)
    ]
    total = len(rows)
    batches = [rows[i : i + args.batch] for i in range(0, total, args.batch)]
    results = {}

    # 1) raw COPY straight into the table
    reset()
    start = time.perf_counter()
    for batch in batches:
        with (
            connection.cursor() as c,
            c.copy("COPY devices_reading (channel_id, time, value, quality, device_time, poller) FROM STDIN") as cp,
        ):
            for ch, t, v, q, _d, p in batch:
                cp.write_row((ch, from_us(t), v, q, None, p))
    results["raw COPY"] = total / (time.perf_counter() - start)

    # 2) the writer's storage step alone
    reset()
    start = time.perf_counter()
    for batch in batches:
        store_postgres(batch, [])
    results["store_postgres (COPY, staged fallback on overlap)"] = total / (time.perf_counter() - start)

    # 3) replay of the same batches: all conflicts, nothing inserted
    start = time.perf_counter()
    for batch in batches:
        store_postgres(batch, [])
    results["replay (all duplicates)"] = total / (time.perf_counter() - start)
    assert Reading.objects.count() == total, "replay must not duplicate"

    # 4) the writer end to end from ReadingEvents (deadband + aggregates + store)
    reset()
    from devices.hooks import ReadingEvent

    events = []
    per_sample = len(channel_ids)
    for k in range(args.samples):
        at = base + timedelta(milliseconds=100 * k)
        events.append(
            [
                ReadingEvent(cid, device.pk, float(k % 97) + i * 0.001, True, "good", at)
                for i, cid in enumerate(channel_ids)
            ]
        )
    with tempfile.TemporaryDirectory() as tmp:
        clock = [base.timestamp()]
        writer = ReadingWriter(
            poller="bench", spool_dir=Path(tmp), spool_max_bytes=10**9, store=store_postgres, clock=lambda: clock[0]
        )
        for cid in channel_ids:
            writer.configure(cid, 0.0, 60)
        samples_per_flush = max(1, args.batch // per_sample)
        start = time.perf_counter()
        for k, batch in enumerate(events, start=1):
            writer.submit(batch)
            if k % samples_per_flush == 0:
                clock[0] = base.timestamp() + k * 0.1
                writer.flush()
        writer.flush(final=True)
        elapsed = time.perf_counter() - start
    results["writer end to end (events -> deadband -> aggregates -> store)"] = total / elapsed
    stored = Reading.objects.count()
    from devices.models import ReadingAggregate

    agg_count = sum(ReadingAggregate.objects.values_list("count", flat=True))
    print(
        f"PostgreSQL {connection.pg_version // 10000}, {total:,} readings "
        f"({len(channel_ids)} channels x {args.samples} samples), {args.batch:,} rows per transaction"
    )
    width = max(len(k) for k in results)
    for name, rate in results.items():
        print(f"  {name:<{width}}  {rate:>10,.0f} readings/s")
    print(f"  writer stored {stored:,} rows, aggregates cover {agg_count:,} samples (expected {total:,})")
    writer_rate = results["writer end to end (events -> deadband -> aggregates -> store)"]
    print(f"  writer / raw COPY: {writer_rate / results['raw COPY']:.2f}")


if __name__ == "__main__":
    main()
