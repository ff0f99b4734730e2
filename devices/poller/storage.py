"""Batched storage of readings: deadband compression, 1-minute aggregates, COPY, and a disk spool.

The poller hands its batches of good block reads to ``ReadingWriter.fold_reads`` and any other
reading to ``ReadingWriter.submit``; both fold them at once, in the caller's thread, with
compiled loops over the batch (``devices.poller.folding``), into each channel's open 1-minute
aggregate, and keep a reading only when it passes the channel's deadband/heartbeat (a few percent
of readings for steady values). A writer thread takes what was kept every ``flush_interval`` and
writes it in one transaction:

- PostgreSQL: COPY straight into devices_reading (rows of deleted channels filtered first); if
  the batch overlaps stored rows (a spool replayed after a crash) the COPY fails on the unique
  index inside a savepoint and the batch goes through a staging table with ``INSERT .. ON
  CONFLICT DO NOTHING``. Aggregates are merged with ``ON CONFLICT DO UPDATE``.
- SQLite: ``bulk_create(ignore_conflicts=True)`` and the same aggregate upsert.

Every batch has a key (the writer's random boot id and a sequence number) that is written, in the
same transaction, to devices_storedbatch; a batch whose key is already there is skipped. So a
batch stored twice (its spool file outlived the commit: a kill -9 between the two, or a commit whose
reply was lost) does not add its aggregates twice. Readings would not duplicate anyway (unique index).

When the database is unreachable or hangs (every store runs under ``regulator.dbdeadline``),
batches go in order, with their keys, to a bounded on-disk spool (one file per batch under
``DATA_DIR/spool/<poller>``), and while the spool is not empty new batches queue behind it so that
order is kept. When the spool is full the oldest batches are dropped, logged and announced through
``devices.hooks.publish_poller_event`` (kind ``spool_full``).
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import secrets
import signal
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

import numpy as np
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)

from devices.hooks import PollerEvent, ReadingEvent, Readings, publish_poller_event
from devices.poller.decode import Block
from devices.poller.folding import (
    QUALITIES,
    FoldState,
    VectorPlan,
    decode,
    fold,
    qcode,
    quality_strings,
    vector_plan,
    warm_up,
)
from regulator.dbdeadline import close_broken_connection, db_deadline

logger = logging.getLogger(__name__)

# (channel_id, time_us, value, quality, device_time_us, poller); times as UTC epoch microseconds.
Row = tuple[int, int, float | None, str, int | None, str]
# (channel_id, minute_epoch_s, min, max, sum, count, bad_count)
AggRow = tuple[int, int, float | None, float | None, float, int, int]


class Batch(NamedTuple):
    """What makes a stored batch recognisable when it comes back from the spool."""

    key: str  # "<boot>.<seq>": the writer's random boot id, then its batch sequence number
    poller: str
    created_us: int  # when the writer made it (its own clock): for pruning


try:  # psycopg's COPY is not wrapped by Django: its errors arrive raw
    from psycopg import Error as _PgError
    from psycopg import InterfaceError as _PgInterfaceError
    from psycopg import OperationalError as _PgOperationalError
except ImportError:  # pragma: no cover - SQLite-only installs
    _PgError = _PgInterfaceError = _PgOperationalError = DatabaseError

_DB_DOWN = (OperationalError, InterfaceError, _PgOperationalError, _PgInterfaceError)
_DB_REFUSED = (DatabaseError, _PgError)
# Fault-injection hook for the fault suite only: SIGKILL the process right after a spooled batch
# with aggregates has been committed and before its file is removed (the window of issue 15.7).
_KILL_AFTER_REPLAY_COMMIT = "REGULATOR_FAULT_KILL_AFTER_REPLAY_COMMIT"
# A stored batch's key is kept this long after the spool was last seen empty: only a batch still
# in some spool can come back, and a spool of this poller is this writer's own directory.
STORED_BATCH_KEEP = timedelta(hours=1)
# Rows per stored (or spooled) batch at most: ~0.1-0.3 s of COPY, well inside the statement timeout.
MAX_BATCH_ROWS = 20_000
_NAN = float("nan")
_PID = attrgetter("pid")
_N = attrgetter("n")


def to_us(dt: datetime) -> int:
    return int(dt.timestamp() * 1_000_000)


def from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


# --- database backends -------------------------------------------------------------------------

_AGG_UPSERT_PG = """
INSERT INTO devices_readingaggregate (channel_id, minute, min, max, sum, count, bad_count)
SELECT v.channel_id, v.minute, v.min, v.max, v.sum, v.count, v.bad_count
FROM (VALUES {values}) AS v(channel_id, minute, min, max, sum, count, bad_count)
JOIN devices_channel c ON c.id = v.channel_id
ON CONFLICT (channel_id, minute) DO UPDATE SET
  min = LEAST(devices_readingaggregate.min, EXCLUDED.min),
  max = GREATEST(devices_readingaggregate.max, EXCLUDED.max),
  sum = devices_readingaggregate.sum + EXCLUDED.sum,
  count = devices_readingaggregate.count + EXCLUDED.count,
  bad_count = devices_readingaggregate.bad_count + EXCLUDED.bad_count
"""

_AGG_UPSERT_SQLITE = """
INSERT INTO devices_readingaggregate (channel_id, minute, min, max, sum, count, bad_count)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (channel_id, minute) DO UPDATE SET
  min = min(coalesce(devices_readingaggregate.min, excluded.min), coalesce(excluded.min, devices_readingaggregate.min)),
  max = max(coalesce(devices_readingaggregate.max, excluded.max), coalesce(excluded.max, devices_readingaggregate.max)),
  sum = devices_readingaggregate.sum + excluded.sum,
  count = devices_readingaggregate.count + excluded.count,
  bad_count = devices_readingaggregate.bad_count + excluded.bad_count
"""


def _write_aggregates_pg(cursor, aggs: Sequence[AggRow]) -> None:
    for start in range(0, len(aggs), 1000):
        chunk = aggs[start : start + 1000]
        values = ",".join(
            ["(%s::bigint, %s::timestamptz, %s::float8, %s::float8, %s::float8, %s::int, %s::int)"] * len(chunk)
        )
        params = []
        for ch, minute, mn, mx, sm, cnt, bad in chunk:
            params.extend([ch, from_us(minute * 1_000_000), mn, mx, sm, cnt, bad])
        cursor.execute(_AGG_UPSERT_PG.format(values=values), params)


_COLUMNS = "(channel_id, time, value, quality, device_time, poller)"


def _copy_rows(cursor, table: str, rows: Sequence[Row]) -> None:
    with cursor.copy(f"COPY {table} {_COLUMNS} FROM STDIN") as copy:
        write = copy.write_row
        for ch, t, v, q, dt, p in rows:
            write((ch, from_us(t), v, q, from_us(dt) if dt is not None else None, p))


def store_postgres(rows: Sequence[Row], aggs: Sequence[AggRow], batch: Batch | None = None) -> int:
    """COPY a batch; returns rows handed over (0 when ``batch`` was stored before: skipped).

    The common case is a straight COPY into devices_reading (rows of deleted channels are dropped
    first). When the batch overlaps stored rows (a spool replayed after a crash), the COPY fails
    on the unique (channel, time) index inside a savepoint and the batch goes through a staging
    table with ``INSERT .. ON CONFLICT DO NOTHING`` instead: nothing is duplicated either way.
    """
    from psycopg import errors

    with transaction.atomic(), connection.cursor() as cursor:
        if batch is not None and not _claim_batch(cursor, batch):
            return 0
        if rows:
            ids = list({r[0] for r in rows})
            cursor.execute("SELECT id FROM devices_channel WHERE id = ANY(%s)", [ids])
            existing = {r[0] for r in cursor.fetchall()}
            if len(existing) < len(ids):
                rows = [r for r in rows if r[0] in existing]
            try:
                with transaction.atomic():
                    _copy_rows(cursor, "devices_reading", rows)
            except (errors.UniqueViolation, IntegrityError) as exc:
                # psycopg's copy() is not wrapped by Django, so the raw error may arrive
                if isinstance(exc, IntegrityError) and not isinstance(exc.__cause__, errors.UniqueViolation):
                    raise
                cursor.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS devices_reading_stage "
                    "(channel_id bigint, time timestamptz, value float8, quality varchar(16), "
                    "device_time timestamptz, poller varchar(64)) ON COMMIT DELETE ROWS"
                )
                _copy_rows(cursor, "devices_reading_stage", rows)
                cursor.execute(
                    "INSERT INTO devices_reading (channel_id, time, value, quality, device_time, poller) "
                    "SELECT channel_id, time, value, quality, device_time, poller FROM devices_reading_stage "
                    "ON CONFLICT (channel_id, time) DO NOTHING"
                )
        if aggs:
            _write_aggregates_pg(cursor, aggs)
    return len(rows)


def _claim_batch(cursor, batch: Batch) -> bool:
    """Record the batch's key in the caller's transaction; False when it was stored before."""
    cursor.execute(
        "INSERT INTO devices_storedbatch (key, poller, created) VALUES (%s, %s, %s) ON CONFLICT (key) DO NOTHING",
        [batch.key, batch.poller, from_us(batch.created_us)],
    )
    if cursor.rowcount == 0:
        logger.info("batch %s of %s was stored before; skipped", batch.key, batch.poller)
        return False
    return True


def store_sqlite(rows: Sequence[Row], aggs: Sequence[AggRow], batch: Batch | None = None) -> int:
    from devices.models import Channel, Reading

    with transaction.atomic():
        if batch is not None:
            with connection.cursor() as cursor:
                if not _claim_batch(cursor, batch):
                    return 0
        ids = {r[0] for r in rows} | {a[0] for a in aggs}
        existing = set(Channel.objects.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
        Reading.objects.bulk_create(
            [
                Reading(
                    channel_id=ch,
                    time=from_us(t),
                    value=v,
                    quality=q,
                    device_time=from_us(dt) if dt is not None else None,
                    poller=p,
                )
                for ch, t, v, q, dt, p in rows
                if ch in existing
            ],
            ignore_conflicts=True,
            batch_size=500,
        )
        if aggs:
            with connection.cursor() as cursor:
                cursor.executemany(
                    _AGG_UPSERT_SQLITE,
                    [
                        (ch, from_us(m * 1_000_000), mn, mx, sm, c, b)
                        for ch, m, mn, mx, sm, c, b in aggs
                        if ch in existing
                    ],
                )
    return len(rows)


def store_batch(rows: Sequence[Row], aggs: Sequence[AggRow], batch: Batch | None = None) -> int:
    if connection.vendor == "postgresql":
        return store_postgres(rows, aggs, batch)
    return store_sqlite(rows, aggs, batch)


def prune_stored_batches(poller: str, before_us: int) -> int:
    """Forget the keys of ``poller``'s batches made before ``before_us``; returns how many."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM devices_storedbatch WHERE poller = %s AND created < %s", [poller, from_us(before_us)]
        )
        return cursor.rowcount


# --- spool -------------------------------------------------------------------------------------


class Spool:
    """Bounded, ordered on-disk queue of batches; one file per batch (zlib-compressed JSON),
    written atomically (a temporary file, fsync, rename).

    Compressed, a row takes ~10 bytes instead of ~52 (1 ms per 5,000-row batch): at 10,000 rows/s
    the default 256 MB hold ~45 minutes of outage instead of ~8.
    """

    def __init__(self, directory: Path, max_bytes: int):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        for tmp in self.directory.glob("*.tmp"):
            tmp.unlink(missing_ok=True)
        files = self._files()
        self._seq = int(files[-1].stem) + 1 if files else 0
        self._bytes = sum(f.stat().st_size for f in files)

    def _files(self) -> list[Path]:
        return sorted(self.directory.glob("*.json"))

    def __len__(self) -> int:
        return len(self._files())

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def append(self, rows: Sequence[Row], aggs: Sequence[AggRow], batch: Batch | None = None) -> int:
        """Write one batch (with its key); returns how many old batches were dropped to make room."""
        payload = {"rows": list(rows), "aggs": list(aggs)}
        if batch is not None:
            payload["batch"] = list(batch)
        data = zlib.compress(json.dumps(payload, separators=(",", ":")).encode(), 1)
        dropped = 0
        files = self._files()
        while files and self._bytes + len(data) > self.max_bytes:
            oldest = files.pop(0)
            self._bytes -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)
            dropped += 1
        path = self.directory / f"{self._seq:015d}.json"
        self._seq += 1
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        self._bytes += len(data)
        return dropped

    def peek(self) -> tuple[Path, list[Row], list[AggRow], Batch | None] | None:
        """The oldest batch; its key is None for files written before batches had keys."""
        for path in self._files():
            try:
                data = path.read_bytes()
                if data[:1] != b"{":  # files of earlier versions are plain JSON
                    data = zlib.decompress(data)
                payload = json.loads(data)
                batch = Batch(*payload["batch"]) if payload.get("batch") else None
                return path, [tuple(r) for r in payload["rows"]], [tuple(a) for a in payload["aggs"]], batch
            except (OSError, ValueError, TypeError, KeyError, zlib.error):
                # A damaged file must not stop the queue behind it: aside, for a human.
                logger.exception("spooled batch %s cannot be read; moving it aside", path.name)
                self.set_aside(path)
        return None

    def set_aside(self, path: Path) -> None:
        """Keep a batch the database refuses (not an outage) out of the queue, for a human to look at."""
        try:
            size = path.stat().st_size
            path.rename(path.with_suffix(".rejected"))
        except FileNotFoundError:
            return
        self._bytes -= size

    def remove(self, path: Path) -> None:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return
        path.unlink(missing_ok=True)
        self._bytes -= size


# --- writer ------------------------------------------------------------------------------------


class ReadingWriter:
    """Folds readings where they arrive (``submit``), stores them from its own thread."""

    def __init__(
        self,
        *,
        poller: str,
        spool_dir: Path,
        spool_max_bytes: int,
        flush_interval: float = 0.5,
        retry_interval: float = 2.0,
        store: Callable[..., int] = store_batch,
        clock: Callable[[], float] = time.time,
        deadline: float | None = None,
    ):
        """``store(rows, aggs, batch=None)`` writes one batch (a store without the ``batch``
        argument still works, without replay protection); ``deadline``: seconds a store may take
        before the database counts as down (default ``DB_CALL_DEADLINE_SECONDS``)."""
        self.poller = poller
        self.flush_interval = flush_interval
        self.retry_interval = retry_interval
        self.store = store
        try:
            self._store_takes_batch = "batch" in inspect.signature(store).parameters
        except (TypeError, ValueError):
            self._store_takes_batch = False
        self.clock = clock
        self.deadline = deadline
        # Keys of this writer's batches: random per start, so a restart (whose spool may hold
        # batches of an earlier start) never reuses one.
        self._boot = secrets.token_hex(8)
        self._seq = 0
        self._kill_after_replay_commit = os.environ.get(_KILL_AFTER_REPLAY_COMMIT) == "1"
        self._next_prune = 0.0
        self._draining = False  # a drain yielded with batches left
        self._drained = 0  # batches stored since the drain began
        self._state = FoldState()  # every channel's deadband memory and open minute, as arrays
        warm_up()  # compile (or load from numba's cache) the batch loops before the first batch
        self._closed: list[AggRow] = []
        # Folding happens in submit() / fold_reads(), on the caller's thread (the poller's event
        # loop), with no hand-off. Queued to a writer thread instead (as before), the fold cost the
        # same and the GIL hand-offs came on top: in bench/poll.py the writer thread was ~13% of the
        # poller's samples, a quarter of them waiting for the GIL. The lock only guards the state
        # against the writer thread closing the minutes of quiet channels.
        self._lock = threading.Lock()
        self._kept: deque[list[Row]] = deque()  # lists of rows that passed the deadband, in order
        self.spool = Spool(spool_dir, spool_max_bytes)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._db_down = False
        self._next_retry = 0.0
        self._spool_full_announced = False
        self._closed_through = -1  # the last minute whose stale buckets were closed
        self.stats = {"received": 0, "stored": 0, "spooled_batches": 0, "dropped_batches": 0, "flushes": 0}

    def submit(self, events: Sequence[ReadingEvent]) -> None:
        """Fold ``events`` (thread-safe), in order: what the poller does with readings that are not
        good register blocks (timeouts, exceptions, coils, ...), and any other producer."""
        if not events:
            return
        cids, _devices, values, goods, qualities, ats, device_times = zip(*events, strict=True)
        t = np.array([at.timestamp() for at in ats], dtype=np.float64)
        v = np.array([_NAN if x is None else x for x in values], dtype=np.float64)
        good = np.array(goods, dtype=bool)
        q = np.array([qcode(x) for x in qualities], dtype=np.float64)
        dev_us = None
        if any(d is not None for d in device_times):
            dev_us = [None if d is None else to_us(d) for d in device_times]
        with self._lock:
            kept = fold(self._state, self._state.slot_array(cids), t, v, good, q, self._closed)
            self.stats["received"] += len(events)
        if kept.size:
            self._kept.append(self._rows(kept, cids, t, v, q, dev_us))

    def _rows(self, kept: np.ndarray, cids, t: np.ndarray, v: np.ndarray, q: np.ndarray, dev_us) -> list[Row]:
        poller, names = self.poller, QUALITIES
        us = (t[kept] * 1_000_000).astype(np.int64).tolist()
        values = [None if x != x else x for x in v[kept].tolist()]
        index = kept.tolist()
        return [
            (cids[i], u, value, names[int(code)], None if dev_us is None else dev_us[i], poller)
            for i, u, value, code in zip(index, us, values, q[kept].tolist(), strict=True)
        ]

    def vector_plan(self, block: Block) -> VectorPlan | None:
        """The block's plan for ``fold_reads`` (cached on the block), or None when its channels
        need the general decoder (``decode_events`` + ``submit``)."""
        cached = block.fold_plan
        if cached is None or cached[0] is not self:
            with self._lock:
                cached = block.fold_plan = (self, vector_plan(block, self._state))
        return cached[1]

    def fold_reads(self, reads: Sequence[tuple[VectorPlan, list, int, float, object]]) -> Readings:
        """Decode and fold the good responses of several block reads at once (thread-safe).

        ``reads``: (plan, registers, device id, receive time in epoch seconds, key) per read, in
        order (a block read twice is folded in order). Returns their readings, for the hook.
        """
        plans, datas, devices, times, keys = zip(*reads, strict=True)
        size = len(reads)
        pids = np.fromiter(map(_PID, plans), np.int64, size)
        ns = list(map(_N, plans))
        lengths = list(map(len, datas))
        flat = np.fromiter(chain.from_iterable(datas), np.int64, sum(lengths))
        counts = np.array(lengths, dtype=np.int64)
        at = np.array(times, dtype=np.float64)
        with self._lock:
            s, c, t, v, q, good, all_good = decode(self._state, pids, flat, counts, at, sum(ns))
            kept = fold(self._state, s, t, v, good, q, self._closed)
            self.stats["received"] += s.size
        # New int objects, rather than references to the plans' (a cache miss each, in the poller).
        cids = c.tolist()
        if kept.size:
            self._kept.append(self._rows(kept, cids, t, v, q, None))
        values = v.tolist()
        if not all_good:  # bad readings have no value (NaN), except out of range ones, which keep theirs
            for i in np.flatnonzero(~good).tolist():
                if values[i] != values[i]:
                    values[i] = None
        return Readings(
            list(zip(devices, times, ns, keys, strict=True)),
            cids,
            values,
            quality_strings(q, all_good),
            [True] * len(cids) if all_good else good.tolist(),
        )

    def configure(self, channel_id: int, deadband: float, heartbeat_s: float) -> None:
        with self._lock:
            slot = self._state.slot(channel_id)
            self._state.deadband[slot] = max(0.0, deadband)
            self._state.heartbeat[slot] = max(0.001, heartbeat_s)

    @property
    def db_down(self) -> bool:
        return self._db_down

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"reading-writer-{self.poller}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            # While a drain is under way (it yields after its budget) the next flush comes at once.
            while not self._stop.wait(0 if self._draining else self.flush_interval):
                try:
                    self.flush()
                except Exception:  # never the writer's end; what failed is on disk or logged
                    logger.exception("flushing readings failed")
            self.flush(final=True)
        finally:
            close_broken_connection()

    # one flush; public so tests and benchmarks can drive it synchronously
    def flush(self, final: bool = False) -> None:
        rows: list[Row] = []
        kept = self._kept
        while kept:
            rows += kept.popleft()
        aggs = self._pop_closed(self.clock(), everything=final)
        self.stats["flushes"] += 1
        if rows or aggs:
            # Bounded batches: after a long drain or a hang, a flush may have collected a million
            # rows; as one batch its COPY outlived the statement timeout (and failed again on every
            # retry), and its JSON held the GIL for a second.
            last = max(0, len(rows) - 1) // MAX_BATCH_ROWS
            for part in range(last + 1):
                chunk = rows[part * MAX_BATCH_ROWS : (part + 1) * MAX_BATCH_ROWS]
                chunk_aggs = aggs if part == last else []
                batch = self._new_batch()
                if len(self.spool) or self._db_down:
                    self._to_spool(chunk, chunk_aggs, batch)
                else:
                    self._write_or_spool(chunk, chunk_aggs, batch)
        if len(self.spool) and (final or self.clock() >= self._next_retry):
            self._drain_spool(budget=None if final else max(1.0, 4 * self.flush_interval))
        if not self._db_down and not len(self.spool) and self.clock() >= self._next_prune:
            self._prune()

    def _new_batch(self) -> Batch:
        self._seq += 1
        return Batch(f"{self._boot}.{self._seq}", self.poller, int(self.clock() * 1_000_000))

    def _store(self, rows, aggs, batch: Batch | None) -> int:
        """One batch, under the deadline: a hung database raises an OperationalError like a down one."""
        with db_deadline(self.deadline):
            if self._store_takes_batch:
                return self.store(rows, aggs, batch=batch)
            return self.store(rows, aggs)

    def _prune(self) -> None:
        """With the spool empty no batch of this poller can come back: forget old keys."""
        self._next_prune = self.clock() + 600
        if self.store is not store_batch:
            return
        try:
            with db_deadline(self.deadline):
                prune_stored_batches(self.poller, int((self.clock() - STORED_BATCH_KEEP.total_seconds()) * 1e6))
        except _DB_DOWN as exc:
            self._mark_down(exc)
        except _DB_REFUSED:
            logger.exception("pruning stored batch keys failed")

    def _pop_closed(self, now: float, everything: bool = False) -> list[AggRow]:
        """Buckets closed by the fold, plus (once a minute) those of channels that went quiet."""
        current = int(now // 60) * 60
        with self._lock:
            if everything or current != self._closed_through:
                self._closed_through = current
                state = self._state
                minutes = state.minute[: state.size]
                stale = np.flatnonzero(~np.isnan(minutes) if everything else minutes < current)
                if stale.size:
                    state.close_buckets(stale, self._closed)
            closed, self._closed = self._closed, []
        return closed

    def _write_or_spool(self, rows, aggs, batch: Batch) -> None:
        try:
            self.stats["stored"] += self._store(rows, aggs, batch)
        except _DB_DOWN as exc:
            # Perhaps committed all the same (a lost reply): the spooled copy keeps the key.
            self._mark_down(exc)
            self._to_spool(rows, aggs, batch)
        except Exception:
            # Not an outage: this batch cannot be stored as it is. Keep it on disk for a human.
            logger.exception("batch of %d readings rejected by the database; kept in the spool", len(rows))
            self._to_spool(rows, aggs, batch)
            self._next_retry = self.clock() + self.retry_interval

    def _to_spool(self, rows, aggs, batch: Batch | None = None) -> None:
        dropped = self.spool.append(rows, aggs, batch)
        self.stats["spooled_batches"] += 1
        if dropped:
            self.stats["dropped_batches"] += dropped
            logger.critical("reading spool full (%d bytes): dropped %d oldest batches", self.spool.max_bytes, dropped)
            if not self._spool_full_announced:
                self._spool_full_announced = True
                publish_poller_event(
                    PollerEvent(
                        kind="spool_full",
                        poller=self.poller,
                        detail=f"spool at {self.spool.max_bytes} bytes; oldest readings are being dropped",
                        at=datetime.now(UTC),
                    )
                )

    def _mark_down(self, exc: Exception) -> None:
        self._next_retry = self.clock() + self.retry_interval
        close_broken_connection()  # not close_old_connections(): its SELECT 1 would hang on a frozen server
        if not self._db_down:
            self._db_down = True
            logger.error("database unreachable (%s); spooling readings to %s", exc, self.spool.directory)
            publish_poller_event(PollerEvent("db_down", self.poller, str(exc)[:200], datetime.now(UTC)))

    def _drain_spool(self, budget: float | None = None) -> None:
        """Store the spooled batches in order. With a ``budget`` (seconds), return when it is spent
        and carry on at the next flush: meanwhile new readings wait in memory, and after a long
        outage the drain takes a minute or more (the next flush spools them behind the rest)."""
        started = time.monotonic()
        while budget is None or time.monotonic() - started < budget:
            item = self.spool.peek()
            if item is None:
                break
            path, rows, aggs, batch = item
            try:
                self.stats["stored"] += self._store(rows, aggs, batch)
            except _DB_DOWN as exc:
                self._draining = False  # back to waiting retry_interval between attempts
                self._mark_down(exc)
                return
            except Exception:  # refused by the database (or a bug): it would block the queue for good
                logger.exception("spooled batch %s rejected; moving it aside", path.name)
                self.spool.set_aside(path)
                continue
            if aggs and self._kill_after_replay_commit:
                os.kill(os.getpid(), signal.SIGKILL)  # the fault suite's crash: committed, file still there
            self.spool.remove(path)
            self._drained += 1
        else:
            if len(self.spool):
                self._draining = True  # budget spent: the next flush carries on
                return
        self._draining = False
        flushed, self._drained = self._drained, 0
        if self._db_down or flushed:
            logger.info("database reachable again; flushed %d spooled batches", flushed)
            publish_poller_event(PollerEvent("db_up", self.poller, f"flushed {flushed} batches", datetime.now(UTC)))
        self._db_down = False
        self._spool_full_announced = False
