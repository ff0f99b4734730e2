"""A local, ordered, bounded, crash-safe queue of alert changes: what the engine decided, kept on disk
until the database has it.

Every change the alerts runtime produces is appended here (committed and fsynced) before anything
tries to write it to the database, and removed only after that write committed. A process that
dies, or a database that is down for an hour, loses nothing: the writer applies what is left, in
order, with the times it was decided at. Each change carries an id that the services store with what
they wrote, so a change applied but not yet removed (a kill -9 between the two) is recognised and
skipped on replay, never applied twice.

One SQLite file (WAL mode, ``synchronous=FULL``) per process name under ``ALERT_OUTBOX_DIR``. SQLite
rather than one file per change: an append is one fsync of the WAL, and the order is the rowid.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections import deque
from pathlib import Path

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    change_id TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS set_aside (
    seq INTEGER PRIMARY KEY,
    change_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    error TEXT NOT NULL
);
"""


def new_change_id() -> str:
    return uuid.uuid4().hex


class Entry:
    """One queued change: its place in the order, its id and what it says."""

    __slots__ = ("seq", "change_id", "payload")

    def __init__(self, seq: int | None, change_id: str, payload: dict):
        self.seq, self.change_id, self.payload = seq, change_id, payload

    def __repr__(self) -> str:
        return f"<Entry {self.seq} {self.change_id} {self.payload.get('type')}>"


class Outbox:
    """Append, peek in order, remove after commit. Thread-safe (the event loop appends, a writer
    thread applies); several processes may open the same file (SQLite locks it), though each process
    normally has its own.

    Bounded at ``max_items`` on disk. Past that, changes wait in memory behind the file (still in order,
    moved to the file as it drains) and ``append`` reports that the outbox is full, so the caller can
    announce it; only past ``max_items`` in memory as well is a change dropped (logged CRITICAL).
    """

    def __init__(self, path: Path | str, *, max_items: int = 100_000):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_items = max_items
        self.lock = threading.RLock()
        self.overflow: deque[Entry] = deque()
        self.dropped = 0
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a commit is on disk when append returns
        self.db.executescript(_SCHEMA)
        self._count = self.db.execute("SELECT COUNT(*) FROM changes").fetchone()[0]
        self.wakeup = threading.Event()

    def close(self) -> None:
        with self.lock:
            self.db.close()

    # --- writing ---------------------------------------------------------------------------------------
    def append(self, payload: dict, change_id: str | None = None) -> tuple[Entry, bool]:
        """Queue ``payload``; returns the entry and whether it is on disk (False: the outbox is full)."""
        return self.append_many([(payload, change_id)])[0]

    def append_many(self, items, *, force: bool = False) -> list[tuple[Entry, bool]]:
        """Queue (payload, change id or None) pairs in order, in one transaction (one fsync).
        ``force``: into the file even past the bound (the one notice that the outbox is full)."""
        done = []
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for payload, change_id in items:
                    entry = Entry(None, change_id or new_change_id(), payload)
                    if not force and (self.overflow or self._count >= self.max_items):
                        if len(self.overflow) >= self.max_items:
                            self.dropped += 1
                            logger.critical(
                                "alert outbox %s full (%d on disk, %d in memory): dropped %s",
                                self.path,
                                self._count,
                                len(self.overflow),
                                payload,
                            )
                        else:
                            self.overflow.append(entry)
                        done.append((entry, False))
                    else:
                        self._insert(entry)
                        done.append((entry, True))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                self._count = self.db.execute("SELECT COUNT(*) FROM changes").fetchone()[0]
                raise
        self.wakeup.set()
        return done

    def _insert(self, entry: Entry) -> None:
        cur = self.db.execute(
            "INSERT OR IGNORE INTO changes (change_id, payload) VALUES (?, ?)",
            (entry.change_id, json.dumps(entry.payload, separators=(",", ":"))),
        )
        if cur.rowcount:
            entry.seq = cur.lastrowid
            self._count += 1

    def remove(self, entry: Entry) -> None:
        """The change is in the database: forget it (and move waiting ones from memory to the file)."""
        with self.lock:
            if entry.seq is not None:
                cur = self.db.execute("DELETE FROM changes WHERE seq = ?", (entry.seq,))
                self._count -= cur.rowcount
            elif self.overflow and self.overflow[0] is entry:
                self.overflow.popleft()
            self._refill()

    def set_aside(self, entry: Entry, error: str) -> None:
        """A change the database rejects for good (not an outage): kept in the file for a human, out of
        the way of the ones behind it."""
        with self.lock:
            if entry.seq is not None:
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    self.db.execute(
                        "INSERT OR REPLACE INTO set_aside (seq, change_id, payload, error) VALUES (?, ?, ?, ?)",
                        (entry.seq, entry.change_id, json.dumps(entry.payload), error[:2000]),
                    )
                    cur = self.db.execute("DELETE FROM changes WHERE seq = ?", (entry.seq,))
                    self.db.execute("COMMIT")
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
                self._count -= cur.rowcount
            elif self.overflow and self.overflow[0] is entry:
                self.overflow.popleft()
            self._refill()

    def _refill(self) -> None:
        while self.overflow and self._count < self.max_items:
            self._insert(self.overflow.popleft())

    # --- reading ---------------------------------------------------------------------------------------
    def peek(self, limit: int = 100) -> list[Entry]:
        """The oldest ``limit`` changes, in order (those waiting in memory after those on disk)."""
        with self.lock:
            rows = self.db.execute(
                "SELECT seq, change_id, payload FROM changes ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
            entries = [Entry(seq, cid, json.loads(payload)) for seq, cid, payload in rows]
            if len(entries) < limit and self._count <= len(entries):
                entries.extend(list(self.overflow)[: limit - len(entries)])
            return entries

    def __len__(self) -> int:
        with self.lock:
            return self._count + len(self.overflow)

    @property
    def full(self) -> bool:
        with self.lock:
            return bool(self.overflow) or self._count >= self.max_items

    def set_aside_entries(self) -> list[tuple[str, dict, str]]:
        with self.lock:
            rows = self.db.execute("SELECT change_id, payload, error FROM set_aside ORDER BY seq").fetchall()
        return [(cid, json.loads(p), err) for cid, p, err in rows]
