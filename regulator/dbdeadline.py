"""Client-side deadlines for the database calls of the daemons: a hung database is an outage.

A PostgreSQL server stopped with SIGSTOP (or a host that froze) keeps its TCP connections open and
its kernel still acknowledges what is sent, so neither TCP keepalives nor ``tcp_user_timeout`` fire,
and ``statement_timeout`` is enforced by the server, which is not running: a call waits for ever
(measured: keepalives of 1 s and a tcp_user_timeout of 2 s had not fired after 8 s; a query
waited until its socket was shut down). ``db_deadline`` arms a watchdog that, when the deadline
passes, shuts down the socket of the calling thread's connection (SQLite: ``interrupt()``); the
blocked call then fails and the block raises ``DeadlineExceeded``, an ``OperationalError``, which
every caller already treats as "database down" (spool, outbox, retry later on a new connection).

Connections opened (or first used) inside a deadline also get ``statement_timeout`` from
``DB_STATEMENT_TIMEOUT_SECONDS``, so a slow but alive server cancels a runaway statement itself
before the client cuts it. Only daemon threads use deadlines: the web's long reports and migrations
keep no statement timeout. Connecting is bounded by libpq's ``connect_timeout`` (settings).

    from regulator.dbdeadline import db_deadline, call_with_deadline

    with db_deadline():                     # DB_CALL_DEADLINE_SECONDS
        record_change(change)               # raises OperationalError if the database hangs
    call_with_deadline(record_change, change)   # the same, and drops the broken connection
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.db.backends.signals import connection_created

logger = logging.getLogger(__name__)


class DeadlineExceeded(OperationalError):
    """A database call took longer than its deadline; its connection has been cut."""


class _Armed:
    __slots__ = ("wrapper", "due", "fired")

    def __init__(self, wrapper, due: float):
        self.wrapper = wrapper
        self.due = due
        self.fired = False


class _Watchdog:
    """One thread for every deadline of the process; it sleeps until the earliest is due."""

    def __init__(self):
        self._cond = threading.Condition()
        self._armed: set[_Armed] = set()
        self._thread: threading.Thread | None = None

    def arm(self, wrapper, seconds: float) -> _Armed:
        entry = _Armed(wrapper, time.monotonic() + seconds)
        with self._cond:
            self._armed.add(entry)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="db-deadline", daemon=True)
                self._thread.start()
            self._cond.notify()
        return entry

    def disarm(self, entry: _Armed) -> bool:
        """Returns whether it fired. Under the lock: once this returns, it can no longer fire."""
        with self._cond:
            self._armed.discard(entry)
            return entry.fired

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                due = [e for e in self._armed if e.due <= now]
                for entry in due:
                    self._armed.discard(entry)
                    entry.fired = True
                    _cut(entry.wrapper)
                wait = min((e.due for e in self._armed), default=now + 60) - now
                self._cond.wait(max(wait, 0.001))


def _cut(wrapper) -> None:
    """Make the call blocked on ``wrapper``'s connection fail now (called from the watchdog)."""
    raw = wrapper.connection
    if raw is None:  # still connecting: libpq's connect_timeout bounds that
        return
    try:
        if wrapper.vendor == "postgresql":
            # shutdown() acts on the socket, not on the descriptor: a duplicate is enough, and
            # libpq keeps (and later closes) its own.
            with socket.socket(fileno=os.dup(raw.pgconn.socket)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        elif wrapper.vendor == "sqlite":
            raw.interrupt()
    except Exception:  # already closed: nothing is waiting on it
        logger.debug("cutting a database connection failed", exc_info=True)


_watchdog = _Watchdog()
_local = threading.local()
_DOWN = (OperationalError, InterfaceError)


def _statement_timeout_ms() -> int:
    return max(0, int(getattr(settings, "DB_STATEMENT_TIMEOUT_SECONDS", 0) * 1000))


def _set_statement_timeout(wrapper) -> None:
    ms = _statement_timeout_ms()
    if wrapper.vendor != "postgresql" or not ms:
        return
    if getattr(wrapper, "_deadline_timeout_for", None) is wrapper.connection:
        return  # this connection has it already
    with wrapper.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = {ms}")
    wrapper._deadline_timeout_for = wrapper.connection


def _on_connection_created(sender, connection, **kwargs) -> None:
    if getattr(_local, "depth", 0):
        _set_statement_timeout(connection)


connection_created.connect(_on_connection_created, dispatch_uid="regulator.dbdeadline")


def deadline_seconds() -> float:
    return float(getattr(settings, "DB_CALL_DEADLINE_SECONDS", 0))


@contextmanager
def db_deadline(seconds: float | None = None, *, using: str = DEFAULT_DB_ALIAS):
    """Bound the database work of the block to ``seconds`` (default ``DB_CALL_DEADLINE_SECONDS``;
    0 = no deadline). Past it the thread's connection is cut and the block raises
    ``DeadlineExceeded``. The connection is then unusable: close it (``call_with_deadline`` does)."""
    seconds = deadline_seconds() if seconds is None else seconds
    if seconds <= 0:
        yield
        return
    wrapper = connections[using]
    _local.depth = getattr(_local, "depth", 0) + 1
    entry = _watchdog.arm(wrapper, seconds)
    fired = False
    # Once cut, no new connection inside the block: Django's atomic() reconnects on its way out
    # (set_autocommit), which on a hung server cost a whole connect_timeout more.
    previous = wrapper.__dict__.get("get_new_connection")
    connect = previous or wrapper.get_new_connection

    def get_new_connection(conn_params):
        if entry.fired:
            raise DeadlineExceeded(f"database call exceeded its {seconds:g} s deadline; not reconnecting")
        return connect(conn_params)

    wrapper.get_new_connection = get_new_connection
    try:
        if wrapper.connection is not None:  # opened before, outside any deadline
            _set_statement_timeout(wrapper)
        yield
    except Exception as exc:
        fired = _watchdog.disarm(entry)
        if fired:
            raise DeadlineExceeded(f"database call exceeded its {seconds:g} s deadline") from exc
        raise
    finally:
        _local.depth -= 1
        fired = _watchdog.disarm(entry) or fired
        if previous is None:
            del wrapper.get_new_connection
        else:
            wrapper.get_new_connection = previous
    if fired and not wrapper.in_atomic_block:
        # Cut just as the block finished: its work is done, but the connection is not usable.
        wrapper.close()


def close_broken_connection(using: str = DEFAULT_DB_ALIAS) -> None:
    """Drop the thread's connection after an outage, without talking to the server first (Django's
    ``close_old_connections`` may run ``SELECT 1``, which a hung server never answers)."""
    wrapper = connections[using]
    if wrapper.in_atomic_block:  # a test's wrapping transaction owns the connection
        return
    try:
        wrapper.close()
    except Exception:
        logger.debug("closing a broken connection failed", exc_info=True)


def call_with_deadline(fn, /, *args, seconds: float | None = None, using: str = DEFAULT_DB_ALIAS, **kwargs):
    """``fn(*args, **kwargs)`` under ``db_deadline``; on a database outage (down, hung, cut) the
    thread's connection is dropped, so the next call reconnects, and the OperationalError (or
    InterfaceError) is raised again for the caller to treat as "database down"."""
    try:
        with db_deadline(seconds, using=using):
            return fn(*args, **kwargs)
    except _DOWN:
        close_broken_connection(using)
        raise
