"""What the benchmarks share: their PostgreSQL database, percentiles, and the demo registry seed.

The benchmarks run as scripts (``python bench/x.py``), so this module is imported as ``_common``.
"""

from __future__ import annotations

import random
import statistics
import time


def ensure_database(url: str, reset: bool) -> None:
    """Create the benchmark database named by ``url`` (dropping it first when ``reset``)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and reset:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p95) of the samples, nearest rank."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return statistics.median(ordered), p95


def seed_registry(n: int) -> float:
    """The demo registry (regions, parks, ``n`` enterprises) through the demo seeder; returns seconds."""
    from datetime import datetime
    from io import StringIO

    from django.db import transaction
    from django.utils import timezone

    from enterprises import demo
    from regulator.management.commands.seed_demo import DemoContext

    ctx = DemoContext(
        rng=random.Random(2026),
        seed=2026,
        enterprises=n,
        now=datetime(2026, 11, 29, 8, 0, tzinfo=timezone.get_current_timezone()),
        stdout=StringIO(),
        style=None,
    )
    started = time.perf_counter()
    with transaction.atomic():
        demo.seed(ctx)
    return time.perf_counter() - started


def python_speed() -> str:
    """How fast this machine is at what the benchmarks lean on, to compare figures measured on
    different machines: a 10-million-iteration ``for`` loop in a function (plain Python) and 100,000
    send + recv round trips over a socket pair (system calls, which the poller and the database
    client spend much of their time in)."""
    import socket

    started = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    loop = time.perf_counter() - started
    a, b = socket.socketpair()
    with a, b:
        started = time.perf_counter()
        for _ in range(100_000):
            a.send(b"0123456789ab")
            b.recv(64)
        calls = time.perf_counter() - started
    return f"10M-iteration Python loop {loop:.2f} s, 100k socket-pair round trips {calls:.2f} s"
