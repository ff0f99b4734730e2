#!/usr/bin/env python3
"""Set up and run the platform with nothing but Python 3.11.

    python3 dev.py demo    # venv + requirements, migrate, demo data, web + simulated sensors + poller
    python3 dev.py demo 8000 --scenario gas-leak --after 60   # ... and a gas leak after a minute
    python3 dev.py test    # venv + requirements, the whole test suite (SQLite unless DATABASE_URL is set)

Everything lands in .venv/ and var/ inside the checkout; nothing is installed system-wide.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
STAMP = VENV / ".requirements.sha256"


def run(*args: str, **kwargs) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, cwd=ROOT, check=True, **kwargs)


def ensure_venv() -> None:
    if sys.version_info < (3, 11):
        sys.exit("Python 3.11 or newer is required")
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "requirements.txt").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != digest:
        run(str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip")
        run(str(PY), "-m", "pip", "install", "--quiet", "-r", "requirements.txt")
        STAMP.write_text(digest)


def manage(*args: str) -> None:
    run(str(PY), "manage.py", *args)


def has_command(name: str) -> bool:
    return any((ROOT / app / "management" / "commands" / f"{name}.py").exists() for app in os.listdir(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The demo's processes (web, poller, Celery) must reach each other's events without a Redis
# server: an in-process Redis-protocol server (fakeredis) on loopback stands in for it.
EMBEDDED_REDIS = """
import sys
from fakeredis import TcpFakeServer
server = TcpFakeServer(("127.0.0.1", int(sys.argv[1])), server_type="redis")
server.serve_forever()
"""


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    sys.exit(f"embedded Redis did not start on port {port}")


def demo(port: str = "8000", simulator_args: list[str] | None = None) -> None:
    ensure_venv()
    manage("migrate", "--noinput")
    manage("createcachetable")
    manage("seed_demo", "--if-empty")
    procs: list[subprocess.Popen] = []
    embedded_redis: list[subprocess.Popen] = []
    env = dict(os.environ)
    if not env.get("REDIS_URL"):
        redis_port = free_port()
        embedded_redis.append(subprocess.Popen([str(PY), "-c", EMBEDDED_REDIS, str(redis_port)], cwd=ROOT, **OWN_GROUP))
        wait_for_port(redis_port)
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    env.setdefault("CELERY_TASK_ALWAYS_EAGER", "0")

    def start(*args: str) -> subprocess.Popen:
        proc = subprocess.Popen([str(PY), *args], cwd=ROOT, env=env, **OWN_GROUP)
        procs.append(proc)
        return proc

    if has_command("simulate_devices"):
        start("manage.py", "simulate_devices", *(simulator_args or []))
        time.sleep(2)
    if has_command("poll_devices"):
        start("manage.py", "poll_devices")
    # One worker with an embedded beat runs the schedule (escalations, credit, pruning).
    start(
        "-m",
        "celery",
        "-A",
        "regulator",
        "worker",
        "--beat",
        "--pool=solo",
        "--loglevel=WARNING",
        "--schedule",
        str(ROOT / "var" / "celerybeat-schedule"),
    )
    print(f"\n  Open http://127.0.0.1:{port}/ and log in with one of the demo accounts above.\n", flush=True)
    web = start("manage.py", "runserver", "--noreload", f"127.0.0.1:{port}")
    try:
        web.wait()
    except KeyboardInterrupt:
        pass
    finally:
        # In reverse order of starting, the embedded Redis last: the poller stops before the
        # simulated devices it polls (else it reports them offline), and it and the web server push
        # their last statuses through Redis while they stop.
        for proc in reversed(embedded_redis + procs):
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=5)
            _signal_group(proc, signal.SIGKILL)  # what it forked and left behind (Celery's beat)


# Each process in a group of its own, so that Ctrl-C reaches dev.py alone, which stops them in
# order, and a process's own children (the Celery worker's embedded beat) stop with it.
OWN_GROUP = {"start_new_session": True} if os.name == "posix" else {}


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        if OWN_GROUP:
            os.killpg(proc.pid, sig)
        elif proc.poll() is None:
            proc.send_signal(sig)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def test(extra: list[str]) -> int:
    ensure_venv()
    return subprocess.run([str(PY), "-m", "pytest", *extra], cwd=ROOT).returncode


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in {"demo", "test", "setup"}:
        sys.exit(__doc__)
    command = sys.argv[1]
    if command == "demo":
        args = sys.argv[2:]
        port = args.pop(0) if args and args[0].isdigit() else "8000"
        demo(port, args)  # anything else goes to simulate_devices, e.g. --scenario gas-leak --after 60
    elif command == "setup":
        ensure_venv()
    else:
        sys.exit(test(sys.argv[2:]))


if __name__ == "__main__":
    main()
