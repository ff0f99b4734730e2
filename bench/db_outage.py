"""Database outage benchmark: 1,000 channels x 10 Hz into the reading writer while a private
PostgreSQL is taken away for a while, then given back.

    .venv/bin/python bench/db_outage.py [--channels 1000] [--hz 10] [--outage 600] [--mode stop]
                                        [--before 20] [--after 20] [--kept all|deadband] [--spool-mb 256]

The feed is synthetic and direct: every 1/hz s, one ReadingEvent per channel (receive time = now)
into ``ReadingWriter.submit``, in this process; the writer thread stores as the poller's does
(flush every DEVICES_FLUSH_MS, spool when the database is down or hangs, under the deadline).
No Modbus, no alerts runtime: alert changes are the outbox's and not counted here.

The database is a private cluster (tests.faultkit.PrivatePostgres, synchronous_commit on) taken
away with ``--mode``: ``stop`` (pg_ctl fast), ``immediate`` (a crash) or ``freeze`` (SIGSTOP).
``--kept all`` (default, the worst case for the spool): heartbeat 0, every sample is a row;
``deadband``: a slow random walk with a 0.5 deadband and a 60 s heartbeat keeps a few percent.

Prints: samples fed; rows the writer kept (what must be stored); rows stored, lost and duplicated;
aggregates vs samples (every sample counted once); spool peak (files, MB) and dropped batches;
time from the database's return to an empty spool, and the drain rate.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--outage", type=float, default=600.0, help="seconds the database is away")
    parser.add_argument("--mode", choices=["stop", "immediate", "freeze"], default="stop")
    parser.add_argument("--before", type=float, default=20.0, help="seconds of normal writing first")
    parser.add_argument("--after", type=float, default=20.0, help="seconds of feed after the spool drained")
    parser.add_argument("--kept", choices=["all", "deadband"], default="all")
    parser.add_argument("--spool-mb", type=int, default=None, help="default: DEVICES_SPOOL_MAX_MB")
    args = parser.parse_args()

    from tests.faultkit import PrivatePostgres

    pg = PrivatePostgres()
    pg.setup()
    pg.start()
    try:
        run(args, pg)
    finally:
        pg.close()


def run(args, pg) -> None:
    dsn = pg.create_database("regulator_bench_outage")
    pg.sql('ALTER DATABASE "regulator_bench_outage" SET synchronous_commit = on')
    os.environ["DATABASE_URL"] = dsn
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "regulator.settings")
    import django

    django.setup()
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from devices import hooks
    from devices.hooks import ReadingEvent
    from devices.models import Channel, Device
    from devices.poller.storage import ReadingWriter
    from tests import factories as f

    hooks._poller_sinks.clear()
    regions = f.region_tree()
    ent = f.enterprise(regions["county"], name="停库基准化工")
    device = Device.objects.create(enterprise=ent, name="bench", host="127.0.0.1", port=1)
    heartbeat = 0 if args.kept == "all" else 60
    deadband = 0.0 if args.kept == "all" else 0.5
    Channel.objects.bulk_create(
        [
            Channel(device=device, tag=f"B-{i}", name="b", address=i, deadband=deadband, heartbeat_s=heartbeat)
            for i in range(args.channels)
        ]
    )
    ids = list(Channel.objects.filter(device=device).order_by("id").values_list("id", flat=True))
    connection.close()  # the writer thread has its own; this one would hang on a frozen server

    kept_rows = [0]

    class CountingWriter(ReadingWriter):
        def _rows(self, kept, *a):
            rows = super()._rows(kept, *a)
            kept_rows[0] += len(rows)
            return rows

    spool_mb = args.spool_mb or settings.DEVICES_SPOOL_MAX_MB
    tmp = tempfile.mkdtemp(prefix="bench-outage-")
    writer = CountingWriter(
        poller="bench",
        spool_dir=Path(tmp) / "spool",
        spool_max_bytes=spool_mb * 1024 * 1024,
        flush_interval=settings.DEVICES_FLUSH_MS / 1000,
    )
    for cid in ids:
        writer.configure(cid, deadband, heartbeat)
    writer.start()

    rng = random.Random(15)
    values = [rng.uniform(10, 20) for _ in ids]
    fed = [0]
    lag = [0.0]
    stop = threading.Event()
    period = 1.0 / args.hz

    def feed():
        next_at = time.monotonic()
        k = 0
        while not stop.is_set():
            now = datetime.now(UTC)
            if args.kept == "all":  # a new value every sample, 3 decimals (as compressible as real data)
                rnd = rng.random
                evs = [ReadingEvent(cid, device.pk, round(10 + 10 * rnd(), 3), True, "good", now) for cid in ids]
            else:
                evs = []
                for i, cid in enumerate(ids):
                    values[i] += rng.gauss(0, 0.05)
                    evs.append(ReadingEvent(cid, device.pk, round(values[i], 2), True, "good", now))
            writer.submit(evs)
            fed[0] += len(evs)
            k += 1
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                lag[0] = max(lag[0], -delay)

    feeder = threading.Thread(target=feed, name="feed", daemon=True)
    feeder.start()
    peak = {"files": 0, "bytes": 0}

    def watch(seconds: float, until=None) -> float:
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            peak["files"] = max(peak["files"], len(writer.spool))
            peak["bytes"] = max(peak["bytes"], writer.spool.size_bytes)
            if until is not None and until():
                break
            time.sleep(0.2)
        return time.monotonic() - start

    print(f"{args.channels} channels x {args.hz:g} Hz, kept={args.kept}, outage {args.outage:g} s ({args.mode})")
    watch(args.before)
    took_down = time.monotonic()
    kept_at_down = kept_rows[0]
    {"stop": lambda: pg.stop("fast"), "immediate": lambda: pg.stop("immediate"), "freeze": pg.freeze}[args.mode]()
    first_spool = watch(60, until=lambda: len(writer.spool) > 0)
    print(f"first batch spooled {first_spool:.1f} s after the database went away")
    watch(args.outage - (time.monotonic() - took_down))
    at_return = {"files": len(writer.spool), "bytes": writer.spool.size_bytes, "kept": kept_rows[0]}
    if args.mode == "freeze":
        pg.thaw()
    else:
        pg.start()
    drain = watch(3600, until=lambda: len(writer.spool) == 0 and not writer.db_down)
    print(f"spool at the return: {at_return['files']} files, {at_return['bytes'] / 1e6:.1f} MB")
    print(f"spool drained {drain:.1f} s after the database returned")
    watch(args.after)
    stop.set()
    feeder.join(10)
    writer.stop(timeout=600)

    import psycopg

    with psycopg.connect(dsn) as conn:
        total, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT (channel_id, time)) FROM devices_reading"
        ).fetchone()
        agg_samples, minutes = conn.execute(
            "SELECT coalesce(sum(count + bad_count), 0), count(*) FROM devices_readingaggregate"
        ).fetchone()
        over = conn.execute(
            "SELECT count(*) FROM devices_readingaggregate a JOIN (SELECT channel_id, date_trunc('minute', time) m, "
            "count(*) n FROM devices_reading GROUP BY 1, 2) r ON r.channel_id = a.channel_id AND r.m = a.minute "
            "WHERE a.count + a.bad_count <> r.n"
        ).fetchone()[0]
    st = writer.stats
    print(f"samples fed            {fed[0]:>12,}   (feed lag max {lag[0] * 1000:.0f} ms)")
    print(f"rows kept by the writer{kept_rows[0]:>12,}")
    print(f"rows stored            {total:>12,}   lost {kept_rows[0] - total:,}   duplicates {total - distinct:,}")
    print(f"aggregate samples      {agg_samples:>12,}   vs fed: {agg_samples - fed[0]:+,} over {minutes:,} minute rows")
    if args.kept == "all":
        print(f"minute rows whose count differs from the stored readings: {over}")
    print(f"spool peak             {peak['files']:>12,} files {peak['bytes'] / 1e6:.1f} MB (cap {spool_mb} MB)")
    print(f"batches spooled {st['spooled_batches']:,}, dropped {st['dropped_batches']:,}")
    waiting = at_return["kept"] - kept_at_down
    if drain > 0:
        print(f"drain: ~{waiting:,} rows waited in the spool; {waiting / drain:,.0f} rows/s while the feed went on")


if __name__ == "__main__":
    main()
