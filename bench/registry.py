"""Registry benchmark on PostgreSQL: list API/page and dossier latency + query counts, 100k import.

    .venv/bin/python bench/registry.py [--enterprises 100000] [--import-rows 100000] [--reset]

Uses its own database (DATABASE_URL, default regulator_bench_registry), creates and migrates it,
seeds the demo registry once (kept between runs), then measures in-process server time (Django
test client: middleware, views, templates, serialisation; no network) and prints the figures.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import ensure_database, percentiles, seed_registry  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/regulator_bench_registry"


def measure(client, url: str, runs: int) -> tuple[float, float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):
        client.get(url)  # warm-up: caches, plans, per-user jurisdiction ids
    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    queries = len(ctx.captured_queries)  # now: the next request_started resets the query log
    samples, cpu = [], []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.get(url)
        if getattr(response, "streaming", False):
            b"".join(response.streaming_content)
        samples.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    p50, p95 = percentiles(samples)
    return p50, p95, queries, statistics.median(cpu)


def write_import_file(path: Path, rows: int) -> None:
    from enterprises import uscc

    rng = random.Random(7)
    towns = ["320581001", "320581002", "320582001", "320582003", "320585002"]
    industries = ["2614", "2613", "2651", "3391", "5942", "34", "4710"]
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "统一社会信用代码",
                "企业名称",
                "区划代码",
                "行业代码",
                "规模",
                "从业人数",
                "重点企业",
                "主要负责人",
                "主要负责人电话",
                "地址",
            ]
        )
        for i in range(rows):
            code = uscc.make(f"91320581MC{i:07d}")
            writer.writerow(
                [
                    code,
                    f"导入测试{i:06d}化工有限公司",
                    rng.choice(towns),
                    rng.choice(industries),
                    rng.choice(["小型", "中型", "微型"]),
                    rng.randrange(5, 800),
                    rng.choice(["是", "否"]),
                    "张三",
                    f"139{i:08d}",
                    f"江苏省苏州市常熟市测试路{i}号",
                ]
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--enterprises", type=int, default=100_000)
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--reset", action="store_true", help="drop and recreate the benchmark database")
    args = parser.parse_args()

    url = os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "regulator.settings")
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ.setdefault("DEBUG", "0")  # no per-query logging, as in production
    # Production keeps cache/throttle counters in Redis; use a database number of our own.
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/11")
    ensure_database(url, args.reset)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", "enterprises", verbosity=0)  # what this benchmark needs, first
    try:
        call_command("migrate", verbosity=0)
    except Exception as exc:  # another app's migration in flux must not stop a registry benchmark
        print(f"warning: migrate failed ({exc.__class__.__name__}: {exc}); rerun with --reset if tables are missing")
    call_command("createcachetable", verbosity=0)

    from enterprises.importing import import_enterprises
    from enterprises.models import Enterprise, Licence, MajorHazardInstallation
    from regulator.models import User

    print(f"database: {url}")
    count = Enterprise.objects.count()
    if count < args.enterprises:
        if count:
            sys.exit(f"database holds {count} enterprises (< {args.enterprises}); run with --reset")
        took = seed_registry(args.enterprises)
        print(f"seeded {args.enterprises} enterprises in {took:.1f} s (demo seeder, bulk_create + SM4 per phone)")
    count = Enterprise.objects.count()
    # Steady state: autovacuum has run on a live system. Right after a bulk load the visibility map
    # is empty and every COUNT(*) of the list is a sequential scan (measured 49 ms vs 7 ms).
    from django.db import connection

    with connection.cursor() as cursor:
        # And the reference tables loaded by migrations (autovacuum analyzes them within a minute):
        # without their statistics `industry.code LIKE '26%'` is estimated at one row of 442.
        for table in (
            "enterprises_enterprise",
            "enterprises_licence",
            "enterprises_majorhazardinstallation",
            "enterprises_industry",
            "regulator_region",
            "regulator_park",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(
        f"rows: {count} enterprises, {Licence.objects.count()} licences, "
        f"{MajorHazardInstallation.objects.count()} major hazard installations"
    )

    inspector = User.objects.get(username="cs_inspector1")
    city_admin = User.objects.get(username="sz_admin")
    dossier_ent = (
        Enterprise.objects.filter(region__path__startswith=inspector.jurisdiction.path, major_hazards__isnull=False)
        .order_by("id")
        .first()
    )
    from enterprises.models import Industry

    chem = Industry.objects.get(code="26").pk
    cases = [
        ("list API (inspector, ~50% visible)", inspector, "/api/v1/enterprises/"),
        ("list API (city admin, all rows)", city_admin, "/api/v1/enterprises/"),
        ("list API search q=化工 + industry=26", city_admin, f"/api/v1/enterprises/?q=化工&industry={chem}"),
        ("list API licence_expiring=true", city_admin, "/api/v1/enterprises/?licence_expiring=true"),
        ("list page (inspector)", inspector, "/enterprises/"),
        ("list page (city admin), page 200", city_admin, "/enterprises/?page=200"),
        ("list page search q=华盛", city_admin, "/enterprises/?q=华盛"),
        ("dossier API", inspector, f"/api/v1/enterprises/{dossier_ent.pk}/dossier/"),
        ("dossier page", inspector, f"/enterprises/{dossier_ent.pk}/"),
    ]
    from regulator.startup import warm_up_and_freeze

    warm_up_and_freeze()  # as the ASGI entry point does in production (regulator/asgi.py)
    load = os.getloadavg()
    print(f"\nload average {load[0]:.1f} on {os.cpu_count()} CPUs (wall times include waiting for a CPU)")
    print(f"{'case':<42} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8} {'py CPU p50':>11}")
    for label, user, target in cases:
        client = Client()
        client.force_login(user)
        p50, p95, queries, cpu = measure(client, target, args.runs)
        print(f"{label:<42} {p50:8.1f} {p95:8.1f} {queries:8d} {cpu:11.1f}")

    if args.import_rows:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "import.csv"
            write_import_file(path, args.import_rows)
            started, cpu_started = time.perf_counter(), time.process_time()
            report = import_enterprises(path, progress=False)
            first, first_cpu = time.perf_counter() - started, time.process_time() - cpu_started
            started = time.perf_counter()
            again = import_enterprises(path, progress=False)
            second = time.perf_counter() - started
        print(
            f"\nimport {args.import_rows} rows (new): {first:.1f} s "
            f"({args.import_rows / first:,.0f} rows/s; Python CPU {first_cpu:.1f} s) -> {report.as_dict()}"
        )
        print(f"import same file again: {second:.1f} s -> {again.as_dict()}")
        started = time.perf_counter()
        # Raw deletes: the ORM's cascade collector would load 200,000 objects into memory.
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM enterprises_enterprisechange WHERE enterprise_id IN "
                "(SELECT id FROM enterprises_enterprise WHERE uscc LIKE '91320581MC%%')"
            )
            cursor.execute("DELETE FROM enterprises_enterprise WHERE uscc LIKE '91320581MC%%'")
        print(f"(cleanup of imported rows: {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
