"""Risk map benchmark on PostgreSQL: the points/clusters endpoint for 100,000 enterprises.

    flock /tmp/bench.lock .venv/bin/python bench/risk_map.py [--enterprises 100000] [--reuse] [--runs 20]

Uses its own database (DATABASE_URL, default regulator_bench_riskmap): creates and migrates it, seeds
the demo registry (regions, boundaries, enterprises inside their townships) and random risk grades
unless --reuse finds it filled, then measures in-process server time (Django test client: middleware,
view, queries, JSON; no network) for a city-wide view, a county, a township and a street-level view,
plus what the client-side alternative would ship (every point of the jurisdiction as JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import ensure_database, seed_registry  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/regulator_bench_riskmap"


def seed(n: int) -> float:
    from django.db import connection

    started = time.perf_counter()
    seed_registry(n)
    with connection.cursor() as cur:  # a plausible grade mix without running the risk model
        cur.execute(
            """UPDATE enterprises_enterprise SET risk_grade = CASE
                 WHEN random() < 0.03 THEN 'red' WHEN random() < 0.12 THEN 'orange'
                 WHEN random() < 0.45 THEN 'yellow' WHEN random() < 0.9 THEN 'blue' ELSE '' END"""
        )
        cur.execute("VACUUM ANALYZE enterprises_enterprise")
    return time.perf_counter() - started


def measure(client, url: str, runs: int) -> dict:
    from django.db import connection

    for _ in range(2):
        client.get(url)
    executed = []
    with connection.execute_wrapper(lambda execute, sql, *a: executed.append(sql) or execute(sql, *a)):
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    body = json.loads(response.content)
    wall, cpu = [], []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        client.get(url)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    wall.sort()
    return {
        "p50": statistics.median(wall),
        "p95": wall[min(len(wall) - 1, round(0.95 * (len(wall) - 1)))],
        "cpu": statistics.median(cpu),
        "queries": len(executed),
        "bytes": len(response.content),
        "total": body["total"],
        "clusters": len(body["clusters"]),
        "points": len(body["points"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--enterprises", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    parser.add_argument("--reset", action="store_true", help="drop and recreate the benchmark database")
    args = parser.parse_args()

    url = os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "regulator.settings")
    ensure_database(url, args.reset)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
    from enterprises import geo_map
    from enterprises.models import Enterprise
    from regulator.models import User

    have = Enterprise.objects.count()
    if have and not (args.reuse and have >= args.enterprises):
        sys.exit(f"{url} holds {have} enterprises; use --reuse, or --reset to rebuild")
    if not have:
        print(f"seeding {args.enterprises} enterprises ...", flush=True)
        print(f"  seeded in {seed(args.enterprises):.1f} s", flush=True)
    n = Enterprise.objects.count()

    admin = User.objects.get(username="sz_admin")  # 苏州市 city admin: the whole jurisdiction
    client = Client()
    client.force_login(admin)
    views = [
        ("city, default view", "/map/points.json"),
        ("city, wide screen", "/map/points.json?bbox=119.9,31.2,121.6,32.2"),
        ("county 常熟", "/map/points.json?bbox=120.55,31.5,121.05,31.85"),
        ("township ~6 km", "/map/points.json?bbox=120.70,31.60,120.76,31.66"),
        ("street ~1 km", "/map/points.json?bbox=120.72,31.62,120.73,31.63"),
        ("city, red only", "/map/points.json?bbox=119.9,31.2,121.6,32.2&grade=red"),
    ]
    print(f"\nrisk map points endpoint, {n} enterprises, PostgreSQL, {args.runs} runs each (in-process)")
    print(
        f"{'view':<22}{'p50 ms':>9}{'p95 ms':>9}{'cpu ms':>9}{'queries':>9}{'in view':>9}{'clusters':>9}"
        f"{'points':>8}{'bytes':>9}"
    )
    for label, path in views:
        m = measure(client, path, args.runs)
        print(
            f"{label:<22}{m['p50']:>9.1f}{m['p95']:>9.1f}{m['cpu']:>9.1f}{m['queries']:>9}{m['total']:>9}"
            f"{m['clusters']:>9}{m['points']:>8}{m['bytes']:>9}"
        )

    # The alternative: ship every point to the browser and cluster there.
    qs = geo_map.map_enterprises(admin, geo_map.MapFilters())
    started, cpu_started = time.perf_counter(), time.process_time()
    rows = geo_map._point_rows(qs)
    payload = json.dumps({"points": rows}, ensure_ascii=False).encode()
    full_ms, full_cpu = (time.perf_counter() - started) * 1000, (time.process_time() - cpu_started) * 1000
    started = time.perf_counter()
    slim = json.dumps([[r["id"], r["lon"], r["lat"], r["grade"][0]] for r in rows]).encode()
    print(
        f"\nclient-side alternative: all {len(rows)} points with tooltip fields = {len(payload) / 1e6:.1f} MB JSON "
        f"built in {full_ms:.0f} ms ({full_cpu:.0f} ms CPU); ids+coordinates+grade only = {len(slim) / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
