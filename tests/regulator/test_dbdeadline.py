"""Client-side deadlines on the daemons' database calls: a call that hangs is cut and fails like an
outage, the poller's DB thread comes back free, and only daemon connections get a statement_timeout.

The hang is a slow statement on the test database (the fault suite freezes a private server with
SIGSTOP: tests/faults/test_db_faults.py); each runs on a thread of its own, with its own connection,
so cutting it leaves the test's connection alone.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connection

from devices.poller.daemon import _guarded
from regulator.dbdeadline import DeadlineExceeded, call_with_deadline, close_broken_connection, db_deadline

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _end_cut_backends():
    """A cut client leaves its backend sleeping on the server: end it, or the test database cannot
    be dropped."""
    yield
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'SELECT pg_sleep%%'"
            )


def _slow_statement() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_sleep(8)")
        else:  # a query SQLite can only leave by being interrupted
            cursor.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n")


def on_thread(fn):
    """Run ``fn`` on a new thread (its own connection); returns (result or exception, seconds)."""
    out = {}

    def run():
        started = time.monotonic()
        try:
            out["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out["result"] = exc
        finally:
            out["seconds"] = time.monotonic() - started
            close_broken_connection()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the call was not cut"
    return out["result"], out["seconds"]


@pytest.fixture
def no_statement_timeout(settings):
    settings.DB_STATEMENT_TIMEOUT_SECONDS = 0  # so that only the client-side deadline can end it


def test_a_call_past_its_deadline_is_cut_and_raises_an_operational_error(no_statement_timeout):
    def call():
        with db_deadline(1):
            _slow_statement()

    result, seconds = on_thread(call)
    assert isinstance(result, DeadlineExceeded) and isinstance(result, OperationalError)
    assert seconds < 5


def test_call_with_deadline_drops_the_cut_connection_so_the_next_call_reconnects(no_statement_timeout):
    def calls():
        with pytest.raises(OperationalError):
            call_with_deadline(_slow_statement, seconds=1)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone()[0]

    result, _seconds = on_thread(calls)
    assert result == 1


def test_the_pollers_db_thread_comes_back_from_a_hung_call(settings, no_statement_timeout):
    """``_guarded`` (reload, status, stats, coil-write claims): None, as for a database that is down."""
    settings.DB_CALL_DEADLINE_SECONDS = 1
    result, seconds = on_thread(lambda: _guarded(_slow_statement))
    assert result is None
    assert seconds < 5


def test_a_call_within_its_deadline_is_left_alone():
    def call():
        with db_deadline(5), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone()[0]

    result, _seconds = on_thread(call)
    assert result == 1


@pytest.mark.postgres
def test_daemon_connections_get_a_statement_timeout_and_other_connections_do_not(settings):
    if connection.vendor != "postgresql":
        pytest.skip("statement_timeout is PostgreSQL's")
    settings.DB_STATEMENT_TIMEOUT_SECONDS = 3

    def show():
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            return cursor.fetchone()[0]

    def daemon():
        with db_deadline(5):
            return show()

    assert on_thread(daemon)[0] == "3s"
    assert on_thread(show)[0] == "0"  # the web's reports and migrations


@pytest.mark.postgres
def test_a_slow_statement_on_a_live_server_is_cancelled_by_the_server_first(settings):
    if connection.vendor != "postgresql":
        pytest.skip("statement_timeout is PostgreSQL's")
    settings.DB_STATEMENT_TIMEOUT_SECONDS = 1

    def call():
        with db_deadline(10):
            _slow_statement()

    result, seconds = on_thread(call)
    assert isinstance(result, OperationalError) and not isinstance(result, DeadlineExceeded)
    assert "statement timeout" in str(result)
    assert seconds < 5
