"""Batched storage of readings: deadband compression, 1-minute aggregates, COPY, and a disk spool.

The poller hands every reading to ``ReadingWriter.submit``, which folds it at once, in the
caller's thread, into the channel's open 1-minute aggregate and keeps it only when it passes the
per-channel deadband/heartbeat (a few percent of readings for steady values). A writer thread
takes what was kept every ``flush_interval`` and writes it in one transaction:

- PostgreSQL: COPY straight into devices_reading (rows of deleted channels filtered first); if
  the batch overlaps stored rows (a spool replayed after a crash) the COPY fails on the unique
  index inside a savepoint and the batch goes through a staging table with ``INSERT .. ON
  CONFLICT DO NOTHING``. Aggregates are merged with ``ON CONFLICT DO UPDATE``.
- SQLite: ``bulk_create(ignore_conflicts=True)`` and the same aggregate upsert.

When the database is unreachable, batches go in order to a bounded on-disk spool (one file per
batch under ``DATA_DIR/spool/<poller>``), and while the spool is not empty new batches queue
behind it so that order is kept. When the spool is full the oldest batches are dropped, logged
and announced through ``devices.hooks.publish_poller_event`` (kind ``spool_full``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)

from devices.choices import Quality
from devices.hooks import PollerEvent, ReadingEvent, publish_poller_event
from devices.poller.decode import Block, _compile, decode_events

logger = logging.getLogger(__name__)

# (channel_id, time_us, value, quality, device_time_us, poller); times as UTC epoch microseconds.
Row = tuple[int, int, float | None, str, int | None, str]
# (channel_id, minute_epoch_s, min, max, sum, count, bad_count)
AggRow = tuple[int, int, float | None, float | None, float, int, int]

_DB_DOWN = (OperationalError, InterfaceError)
_INF = float("inf")
_GOOD = Quality.GOOD.value
_OUT_OF_RANGE = Quality.OUT_OF_RANGE.value
_new_event = tuple.__new__  # as in decode.py: skips the NamedTuple's Python-level __new__


def to_us(dt: datetime) -> int:
    return int(dt.timestamp() * 1_000_000)


def from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


class _Track:
    """Per-channel state of the writer: deadband/heartbeat memory and the open 1-minute bucket."""

    __slots__ = (
        "deadband",
        "heartbeat",
        "last_v",
        "last_q",
        "last_t",
        "minute",
        "mn",
        "mx",
        "sm",
        "cnt",
        "bad",
    )

    def __init__(self, deadband: float = 0.0, heartbeat: float = 60.0):
        self.deadband, self.heartbeat = deadband, heartbeat
        self.last_v, self.last_q, self.last_t = None, None, None
        self.minute = None
        self.mn, self.mx = _INF, -_INF  # no good value yet; stored as NULL
        self.sm, self.cnt, self.bad = 0.0, 0, 0

    def close_bucket(self, channel_id: int, out: list) -> None:
        if self.minute is not None and (self.cnt or self.bad):
            if self.cnt:
                out.append((channel_id, self.minute, self.mn, self.mx, self.sm, self.cnt, self.bad))
            else:
                out.append((channel_id, self.minute, None, None, self.sm, 0, self.bad))
        self.mn, self.mx = _INF, -_INF
        self.sm, self.cnt, self.bad = 0.0, 0, 0


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


def store_postgres(rows: Sequence[Row], aggs: Sequence[AggRow]) -> int:
    """COPY a batch; returns rows handed over.

    The common case is a straight COPY into devices_reading (rows of deleted channels are dropped
    first). When the batch overlaps stored rows (a spool replayed after a crash), the COPY fails
    on the unique (channel, time) index inside a savepoint and the batch goes through a staging
    table with ``INSERT .. ON CONFLICT DO NOTHING`` instead: nothing is duplicated either way.
    """
    from psycopg import errors

    with transaction.atomic(), connection.cursor() as cursor:
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


def store_sqlite(rows: Sequence[Row], aggs: Sequence[AggRow]) -> int:
    from devices.models import Channel, Reading

    ids = {r[0] for r in rows} | {a[0] for a in aggs}
    existing = set(Channel.objects.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
    with transaction.atomic():
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


def store_batch(rows: Sequence[Row], aggs: Sequence[AggRow]) -> int:
    if connection.vendor == "postgresql":
        return store_postgres(rows, aggs)
    return store_sqlite(rows, aggs)


# --- spool -------------------------------------------------------------------------------------


class Spool:
    """Bounded, ordered on-disk queue of batches; one JSON file per batch, written atomically."""

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

    def append(self, rows: Sequence[Row], aggs: Sequence[AggRow]) -> int:
        """Write one batch; returns how many old batches were dropped to make room."""
        data = json.dumps({"rows": list(rows), "aggs": list(aggs)}, separators=(",", ":")).encode()
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

    def peek(self) -> tuple[Path, list[Row], list[AggRow]] | None:
        files = self._files()
        if not files:
            return None
        path = files[0]
        payload = json.loads(path.read_bytes())
        return path, [tuple(r) for r in payload["rows"]], [tuple(a) for a in payload["aggs"]]

    def set_aside(self, path: Path) -> None:
        """Keep a batch the database refuses (not an outage) out of the queue, for a human to look at."""
        size = path.stat().st_size
        path.rename(path.with_suffix(".rejected"))
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
        store: Callable[[Sequence[Row], Sequence[AggRow]], int] = store_batch,
        clock: Callable[[], float] = time.time,
    ):
        self.poller = poller
        self.flush_interval = flush_interval
        self.retry_interval = retry_interval
        self.store = store
        self.clock = clock
        self._tracks: dict[int, _Track] = {}
        self._closed: list[AggRow] = []
        # Folding happens in submit(), on the caller's thread (the poller's event loop), with no
        # hand-off. Queued to a writer thread instead (as before), the fold cost the same and the
        # GIL hand-offs came on top: in bench/poll.py the writer thread was ~13% of the poller's
        # samples, a quarter of them waiting for the GIL. The lock only guards the tracks against
        # the writer thread closing the minutes of quiet channels.
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
        """Fold ``events`` (thread-safe; cheap enough for the event loop: ~1 us a reading)."""
        with self._lock:
            rows = self._fold(events)
        if rows:
            self._kept.append(rows)

    def configure(self, channel_id: int, deadband: float, heartbeat_s: float) -> None:
        with self._lock:
            track = self._tracks.get(channel_id)
            if track is None:
                self._tracks[channel_id] = _Track(max(0.0, deadband), max(0.001, heartbeat_s))
            else:
                track.deadband, track.heartbeat = max(0.0, deadband), max(0.001, heartbeat_s)

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
            while not self._stop.wait(self.flush_interval):
                self.flush()
            self.flush(final=True)
        finally:
            connection.close()

    # one flush; public so tests and benchmarks can drive it synchronously
    def flush(self, final: bool = False) -> None:
        rows: list[Row] = []
        kept = self._kept
        while kept:
            rows += kept.popleft()
        aggs = self._pop_closed(self.clock(), everything=final)
        self.stats["flushes"] += 1
        if rows or aggs:
            if len(self.spool) or self._db_down:
                self._to_spool(rows, aggs)
            else:
                self._write_or_spool(rows, aggs)
        if len(self.spool) and (final or self.clock() >= self._next_retry):
            self._drain_spool()

    def fold_block(self, block: Block, data: list, device_id: int, now: datetime) -> list[ReadingEvent]:
        """``decode_events`` and ``submit`` in one pass over a block's registers: what the poller does
        for every good response (~10,000 a second). Returns the block's events, already folded.

        Big-endian 16-bit channels without sentinels (almost all gas and pressure transmitters) take
        the fast path: decoded, range-checked and folded with their track at hand, no second pass over
        the events. Anything else (other data types, sentinels, bad values, a new minute) is decoded
        by ``decode_events`` and folded by ``_fold``, so the two paths cannot disagree.
        (Measured alternatives: C-level ``map`` chains over the block's channels were slower in the
        poller than this loop; so was folding on the writer thread, by its GIL hand-offs.)
        """
        cached = block.fold_plan
        if cached is None or cached[0] is not self:
            cached = block.fold_plan = (self, self._fold_plan(block))
        plan = cached[1]
        if plan is None or len(data) < block.count:
            events = decode_events(block, data, device_id, now, ReadingEvent)
            self.submit(events)
            return events
        t = now.timestamp()
        minute = int(t // 60) * 60
        us = int(t * 1_000_000)
        poller = self.poller
        new = _new_event
        out: list[ReadingEvent] = []
        append = out.append
        rows: list[Row] = []
        slow: list[ReadingEvent] = []
        with self._lock:
            for cid, i, signed, scale, offset, low, high, tr in plan:
                raw = data[i]
                if signed and raw & 0x8000:
                    raw -= 0x10000
                value = raw * scale + offset
                if not low <= value <= high:
                    ev = new(ReadingEvent, (cid, device_id, None, False, _OUT_OF_RANGE, now, None))
                    append(ev)
                    slow.append(ev)
                    continue
                ev = new(ReadingEvent, (cid, device_id, value, True, _GOOD, now, None))
                append(ev)
                if tr.minute != minute:
                    slow.append(ev)  # opens (or is late for) a minute bucket
                    continue
                if value < tr.mn:
                    tr.mn = value
                if value > tr.mx:
                    tr.mx = value
                tr.sm += value
                tr.cnt += 1
                lt = tr.last_t
                if lt is not None and lt <= t < lt + tr.heartbeat and tr.last_q == _GOOD:
                    lv = tr.last_v
                    if lv is None or abs(value - lv) <= tr.deadband:
                        continue
                tr.last_v, tr.last_q, tr.last_t = value, _GOOD, t
                rows.append((cid, us, value, _GOOD, None, poller))
            if slow:
                rows += self._fold(slow)
            self.stats["received"] += len(out) - len(slow)
        if rows:
            self._kept.append(rows)
        return out

    def _fold_plan(self, block: Block) -> list | None:
        """Per channel (id, offset, signed, scale, offset, low, high, track), or None when some
        channel needs the general decoder."""
        if block.bits:
            return None
        plan = []
        with self._lock:
            for cid, i, kind, scale, offset, low, high, sentinels, _ch in _compile(block):
                if kind == 0 or sentinels:
                    return None
                tr = self._tracks.get(cid)
                if tr is None:
                    tr = self._tracks[cid] = _Track()
                plan.append((cid, i, kind == 2, scale, offset, low, high, tr))
        return plan

    def _fold(self, batch: Sequence[ReadingEvent]) -> list[Row]:
        """Fold readings into the minute buckets; return those that pass the deadband.

        Hot path (every reading passes here): one dict lookup per reading, no allocations for
        readings that the deadband drops.
        """
        rows: list[Row] = []
        append = rows.append
        tracks = self._tracks
        closed = self._closed
        poller = self.poller
        last_dt = None
        t = 0.0
        minute = 0
        for cid, _dev, v, good, q, dt, device_time in batch:
            if dt is not last_dt:
                last_dt = dt
                t = dt.timestamp()
                minute = int(t // 60) * 60
            tr = tracks.get(cid)
            if tr is None:
                tr = tracks[cid] = _Track()
            if tr.minute != minute:
                if tr.minute is not None and minute < tr.minute:
                    # a late reading for a closed minute: its own row, merged by the upsert
                    closed.append(
                        (cid, minute, v, v, v or 0.0, 1, 0)
                        if good and v is not None
                        else (cid, minute, None, None, 0.0, 0, 1)
                    )
                    continue
                tr.close_bucket(cid, closed)
                tr.minute = minute
            if good and v is not None:
                if v < tr.mn:
                    tr.mn = v
                if v > tr.mx:
                    tr.mx = v
                tr.sm += v
                tr.cnt += 1
            else:
                tr.bad += 1
            lt = tr.last_t
            if lt is not None and q == tr.last_q and lt <= t < lt + tr.heartbeat:
                lv = tr.last_v
                if v is None or lv is None or abs(v - lv) <= tr.deadband:
                    continue
            tr.last_v, tr.last_q, tr.last_t = v, q, t
            append((cid, int(t * 1_000_000), v, q, to_us(device_time) if device_time is not None else None, poller))
        self.stats["received"] += len(batch)
        return rows

    def _pop_closed(self, now: float, everything: bool = False) -> list[AggRow]:
        """Buckets closed by the fold, plus (once a minute) those of channels that went quiet."""
        current = int(now // 60) * 60
        with self._lock:
            closed = self._closed
            if everything or current != self._closed_through:
                self._closed_through = current
                for cid, tr in self._tracks.items():
                    if tr.minute is not None and (everything or tr.minute < current) and (tr.cnt or tr.bad):
                        tr.close_bucket(cid, closed)
            self._closed = []
        return closed

    def _write_or_spool(self, rows, aggs) -> None:
        try:
            self.stats["stored"] += self.store(rows, aggs)
        except _DB_DOWN as exc:
            self._mark_down(exc)
            self._to_spool(rows, aggs)
        except DatabaseError:
            # Not an outage: this batch cannot be stored as it is. Keep it on disk for a human.
            logger.exception("batch of %d readings rejected by the database; kept in the spool", len(rows))
            self._to_spool(rows, aggs)
            self._next_retry = self.clock() + self.retry_interval

    def _to_spool(self, rows, aggs) -> None:
        dropped = self.spool.append(rows, aggs)
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
        try:
            if not connection.in_atomic_block:  # a test's wrapping transaction owns the connection
                close_old_connections()
                connection.close()
        except Exception:  # the connection may already be gone
            logger.debug("closing a broken connection failed", exc_info=True)
        if not self._db_down:
            self._db_down = True
            logger.error("database unreachable (%s); spooling readings to %s", exc, self.spool.directory)
            publish_poller_event(PollerEvent("db_down", self.poller, str(exc)[:200], datetime.now(UTC)))

    def _drain_spool(self) -> None:
        flushed = 0
        while True:
            item = self.spool.peek()
            if item is None:
                break
            path, rows, aggs = item
            try:
                self.stats["stored"] += self.store(rows, aggs)
            except _DB_DOWN as exc:
                self._mark_down(exc)
                return
            except DatabaseError:
                logger.exception("spooled batch %s rejected; moving it aside", path.name)
                self.spool.set_aside(path)
                continue
            self.spool.remove(path)
            flushed += 1
        if self._db_down or flushed:
            logger.info("database reachable again; flushed %d spooled batches", flushed)
            publish_poller_event(PollerEvent("db_up", self.poller, f"flushed {flushed} batches", datetime.now(UTC)))
        self._db_down = False
        self._spool_full_announced = False
