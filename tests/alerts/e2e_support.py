"""Real processes for the end-to-end tests: start them with the test database's URL, stop them by pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REDIS_URL = os.environ.get("ALERTS_E2E_REDIS_URL", "redis://127.0.0.1:6379/11")


def e2e_redis_url() -> str:
    """The Redis of this test process (its Celery broker and channel layer) when it has one."""
    return settings.REDIS_URL or DEFAULT_REDIS_URL


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def processes(tmp_path):
    if not settings.USING_POSTGRES:
        pytest.skip("end-to-end test needs PostgreSQL (set DATABASE_URL)")
    if not _port_open("127.0.0.1", 6379):
        pytest.skip("end-to-end test needs Redis on 127.0.0.1:6379")
    db = connection.settings_dict
    env = dict(os.environ)
    env.pop("PYTEST_XDIST_WORKER", None)  # settings would shift the Redis db number a second time
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        # The same Redis as this test process (its Celery broker and channel layer), so a task or
        # an event sent from here reaches the worker and Daphne started here.
        REDIS_URL=e2e_redis_url(),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATA_DIR=str(tmp_path),
        SECRET_KEY=settings.SECRET_KEY,  # the sessions created here must verify in Daphne
        CELERY_TASK_ALWAYS_EAGER="0",
        ALERT_WS_HEARTBEAT_SECONDS="2",
        PYTHONUNBUFFERED="1",
    )
    started: list[tuple[str, subprocess.Popen]] = []

    def start(name: str, *args: str) -> subprocess.Popen:
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        started.append((name, proc))
        return proc

    yield start, tmp_path
    for _name, proc in reversed(started):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for name, proc in started:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        if os.environ.get("ALERTS_E2E_SHOW_LOGS"):
            print(f"--- {name} ---\n{(tmp_path / f'{name}.log').read_text(errors='replace')[-4000:]}")


def session_key(user) -> str:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.set_expiry(3600)
    store.create()
    return store.session_key


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
