"""Private services for the fault suite: a PostgreSQL cluster and a Redis server of the test's own,
on a temporary directory and a free loopback port, that the test may stop, freeze and start again.

The shared PostgreSQL and Redis of the machine (and of CI) are never touched: a test that takes the
database or Redis away does it to one of these.

    with PrivatePostgres() as pg:                     # initdb + start; pg.url, pg.dsn(dbname)
        pg.create_database("regulator_fault")
        pg.stop(); pg.start(); pg.freeze(); pg.thaw()

    with PrivateRedis() as redis:                     # redis.url; redis.stop(); redis.start()
        ...

Both skip the test (``pytest.skip``) when the server binaries are not installed.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def wait_until(condition: Callable[[], object], *, timeout: float, what: str, interval: float = 0.05):
    """Poll ``condition`` until it returns something truthy (returned); fail saying what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class PrivatePostgres:
    """A throwaway PostgreSQL cluster owned by the test (superuser ``postgres``, trust on loopback)."""

    def __init__(self, *, port: int | None = None):
        self.initdb, self.pg_ctl, self.postgres_bin = _pg_bin("initdb"), _pg_bin("pg_ctl"), _pg_bin("postgres")
        if not (self.initdb and self.pg_ctl and self.postgres_bin):
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        # Its own directory directly under the system's temp dir: run as root, the server runs as the
        # ``postgres`` user, which cannot enter a test's private (0700) tmp_path.
        self.directory = Path(tempfile.mkdtemp(prefix="faultkit-pg-"))
        self.directory.chmod(0o755)
        self.data = self.directory / "data"
        self.socket_dir = self.directory / "sock"
        self.port = port or free_port()
        self.frozen = False
        self._as_root = os.geteuid() == 0

    # PostgreSQL refuses to run as root: run its tools as the ``postgres`` system user then.
    def _run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=timeout)

    def __enter__(self) -> PrivatePostgres:
        self.setup()
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def setup(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            shutil.chown(self.directory, "postgres")
            shutil.chown(self.socket_dir, "postgres")
        self._run(self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.socket_dir}'\nfsync = off\nsynchronous_commit = off\n"
                "full_page_writes = off\nmax_connections = 60\nshared_buffers = 32MB\n"
            )

    @property
    def url(self) -> str:
        return self.dsn("postgres")

    def dsn(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def start(self, timeout: float = 30) -> None:
        self.thaw()
        self._run(self.pg_ctl, "-D", str(self.data), "-l", str(self.directory / "server.log"), "-w", "-t",
                  str(int(timeout)), "start", timeout=timeout + 10)  # fmt: skip
        wait_until(lambda: port_open(self.port), timeout=timeout, what=f"PostgreSQL on port {self.port}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate`` is a crash: no checkpoint, every connection cut)."""
        self.thaw()
        self._run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def running(self) -> bool:
        return self._run(self.pg_ctl, "-D", str(self.data), "status", check=False).returncode == 0

    def _pids(self) -> list[int]:
        """The postmaster and every backend: what SIGSTOP must reach for the server to hang."""
        pidfile = self.data / "postmaster.pid"
        if not pidfile.exists():
            return []
        master = int(pidfile.read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
        return [master, *map(int, children)]

    def freeze(self) -> None:
        """A hung database (SIGSTOP): connections stay open, nothing answers."""
        for pid in self._pids():
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        self.frozen = True

    def thaw(self) -> None:
        if not self.frozen:
            return
        for pid in self._pids():
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.frozen = False

    def sql(self, statement: str, dbname: str = "postgres") -> str:
        psql = _pg_bin("psql")
        out = subprocess.run(
            [psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", dbname, "-tAc", statement],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return out.stdout.strip()

    def create_database(self, name: str, template: str | None = None) -> str:
        extra = f" TEMPLATE {template}" if template else ""
        self.sql(f'CREATE DATABASE "{name}"{extra}')
        return self.dsn(name)

    def close(self) -> None:
        if self.data.exists():
            self.stop(mode="immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


class PrivateRedis:
    """A redis-server of the test's own on a free loopback port, without persistence."""

    def __init__(self, *, port: int | None = None):
        self.binary = shutil.which("redis-server")
        if not self.binary:
            pytest.skip("redis-server is not installed")
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> PrivateRedis:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout: float = 10) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open(self.port), timeout=timeout, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()  # an outage, not a shutdown: no goodbye to the clients
            self.proc.wait(timeout=10)
        self.proc = None
        wait_until(lambda: not port_open(self.port), timeout=10, what="redis-server to go away")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
