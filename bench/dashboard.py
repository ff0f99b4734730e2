"""Dashboard benchmark on PostgreSQL: the regulator dashboard for a whole province of 100,000
enterprises (with proportionate hazards, alerts, inspections, devices, credit scores), then A's
risk-model training benchmark, so one command prints both issue-8 figures.

    flock /tmp/bench.lock .venv/bin/python bench/dashboard.py [--enterprises 100000] [--runs 20]
        [--reuse] [--reset] [--skip-training] [-- <arguments for bench/risk_training.py>]

Uses its own database (DATABASE_URL, default regulator_bench_dashboard): creates and migrates it and
fills it with INSERT .. SELECT generate_series (seconds, not minutes); ``--reuse`` keeps the data of a
previous run (the default when the database already holds enough enterprises), ``--reset`` drops it.
Measures ``enterprises.indicators.compute`` in process (the dashboard's whole computation: every
indicator, previous period, 12-month trends, drill-down rows) and the JSON API through the Django
test client, p50/p95 wall and CPU, and the number of SQL queries.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import ensure_database, percentiles  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/regulator_bench_dashboard"
CITIES, COUNTIES, TOWNSHIPS = 10, 10, 10  # 1 province > 10 cities > 100 counties > 1000 townships
MONTHS = 24  # history depth of the generated events
SNAPSHOT_MONTHS = 36


# --- data --------------------------------------------------------------------------------------------

FILLERS = {
    "character varying": "''",
    "text": "''",
    "integer": "0",
    "smallint": "0",
    "bigint": "0",
    "boolean": "false",
    "timestamp with time zone": "now()",
    "date": "current_date",
    "jsonb": "'[]'::jsonb",
    "uuid": "gen_random_uuid()",
    "numeric": "0",
    "double precision": "0",
}


def insert_series(cursor, table: str, n: int, values: dict[str, str]) -> None:
    """INSERT n rows into ``table`` from generate_series(1, n) AS g: ``values`` maps columns to SQL
    expressions of g; every other NOT NULL column without a default gets a neutral value."""
    cursor.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
        "AND is_nullable = 'NO' AND column_default IS NULL AND column_name <> 'id'",
        [table],
    )
    cols = dict(values)
    for name, data_type in cursor.fetchall():
        if name not in cols:
            cols[name] = FILLERS[data_type]
    names = ", ".join(f'"{c}"' for c in cols)
    exprs = ", ".join(cols.values())
    cursor.execute(f"INSERT INTO {table} ({names}) SELECT {exprs} FROM generate_series(1, {n}) AS g")


def build(n: int) -> float:
    from django.db import connection, transaction

    from enterprises.models import Industry
    from regulator.choices import RegionLevel, Role
    from regulator.models import Region, User

    started = time.perf_counter()
    with transaction.atomic():
        province = Region.objects.create(code="320000", name="江苏省", level=RegionLevel.PROVINCE)
        cities, counties, townships = [], [], []
        for c in range(CITIES):
            city = Region(code=f"32{c + 1:02d}00", name=f"第{c + 1}市", level=RegionLevel.CITY, parent=province)
            city.path = f"{province.path}{city.code}/"
            cities.append(city)
        Region.objects.bulk_create(cities)
        for city in cities:
            for k in range(COUNTIES):
                county = Region(
                    code=f"{city.code[:4]}{k + 1:02d}", name=f"{city.name}第{k + 1}县", level=RegionLevel.COUNTY
                )
                county.parent = city
                county.path = f"{city.path}{county.code}/"
                counties.append(county)
        Region.objects.bulk_create(counties)
        for county in counties:
            for t in range(TOWNSHIPS):
                town = Region(
                    code=f"{county.code}{t + 1:03d}", name=f"{county.name}{t + 1}镇", level=RegionLevel.TOWNSHIP
                )
                town.parent = county
                town.path = f"{county.path}{town.code}/"
                townships.append(town)
        Region.objects.bulk_create(townships)
        industry = Industry.objects.get(code="26")  # the GB/T 4754 tree is loaded by a migration
        User.objects.create_user(
            username="bench_province", password="bench-Passw0rd!", role=Role.REGULATOR_ADMIN, jurisdiction=province
        )
        User.objects.create_user(
            username="bench_county",
            password="bench-Passw0rd!",
            role=Role.INSPECTOR,
            jurisdiction=counties[0],
        )
        town_ids = [t.pk for t in townships]
        with connection.cursor() as cur:
            cur.execute("CREATE TEMP TABLE bench_town (i int PRIMARY KEY, region_id bigint)")
            cur.executemany("INSERT INTO bench_town VALUES (%s, %s)", list(enumerate(town_ids)))
            # Enterprises: spread over the townships, registered over the last 3 years.
            insert_series(
                cur,
                "enterprises_enterprise",
                n,
                {
                    "uscc": "lpad(g::text, 18, '0')",
                    "name": "'基准企业' || g",
                    "former_names": "'[]'::jsonb",
                    "region_id": f"(SELECT region_id FROM bench_town WHERE i = g % {len(town_ids)})",
                    "industry_id": str(industry.pk),
                    "scale": "'small'",
                    "is_key": "g % 10 = 0",
                    "operating_status": "'operating'",
                    "risk_grade": "(ARRAY['red','orange','yellow','blue','blue','yellow'])[1 + g % 6]",
                    "created_at": "now() - (random() * interval '1095 days')",
                    "updated_at": "now()",
                },
            )
            cur.execute("SELECT min(id) FROM enterprises_enterprise")
            e0 = cur.fetchone()[0] - 1
            ent = f"({e0} + 1 + (g::bigint * 7919) % {n})"
            # Hazards: 5 per enterprise over two years; 70% closed, 5% dismissed, 3% major (a third listed).
            insert_series(
                cur,
                "hazards_hazard",
                5 * n,
                {
                    "enterprise_id": ent,
                    "description": "'基准隐患'",
                    "source": "'self_check'",
                    "grade": "CASE WHEN g % 33 = 0 THEN 'major' ELSE 'ordinary' END",
                    "major_level": "CASE WHEN g % 33 = 0 THEN 2 END",
                    "status": (
                        "CASE WHEN g % 20 = 0 THEN 'dismissed' WHEN g % 10 < 7 THEN 'closed' ELSE 'rectifying' END"
                    ),
                    "found_at": f"now() - (random() * interval '{MONTHS * 30} days')",
                    "reported_at": "now()",
                    "version": "0",
                    "is_overdue": "false",
                    "escalation_tier": "0",
                    "listed": "g % 99 = 0",
                    "created_at": "now()",
                    "updated_at": "now()",
                },
            )
            cur.execute(
                "UPDATE hazards_hazard SET reported_at = found_at, "
                "closed_at = CASE WHEN status = 'closed' THEN found_at + (1 + random() * 40) * interval '1 day' END, "
                "closed_on_time = CASE WHEN status = 'closed' THEN random() < 0.8 END, "
                "due_date = (found_at + interval '30 days')::date, "
                "listed_at = CASE WHEN listed THEN found_at + interval '2 days' END"
            )
            # Alerts: 3 per enterprise over two years; 90% acknowledged; half reviewed, a fifth of those false.
            insert_series(
                cur,
                "alerts_alert",
                3 * n,
                {
                    "enterprise_id": ent,
                    "kind": "'high'",
                    "level": "1 + (g % 4)",
                    "state": "'normal'",
                    "message": "'基准报警'",
                    "occurrences": "1",
                    "raised_at": f"now() - (random() * interval '{MONTHS * 30} days')",
                    "ack_due_at": "now()",
                    "tier": "1",
                    "condition_active": "false",
                    "linkage_status": "''",
                    "updated_at": "now()",
                },
            )
            cur.execute(
                "UPDATE alerts_alert SET ack_due_at = raised_at + interval '5 minutes', "
                "acknowledged_at = CASE WHEN id % 10 <> 0 THEN raised_at + random() * interval '10 minutes' END, "
                "false_alarm = CASE WHEN id % 2 = 0 THEN id % 10 = 0 END"
            )
            # Inspections: one per enterprise per year.
            insert_series(
                cur,
                "enforcement_inspection",
                2 * n,
                {
                    "enterprise_id": ent,
                    "date": f"current_date - (random() * {MONTHS * 30})::int",
                    "status": "(ARRAY['completed','completed','completed','planned','cancelled'])[1 + g % 5]",
                    "outcome": "''",
                    "checklist": "'[]'::jsonb",
                    "created_at": "now()",
                },
            )
            # Devices: 60% of enterprises connected, a third of those with two devices.
            insert_series(
                cur,
                "devices_device",
                8 * n // 10,
                {
                    "enterprise_id": f"({e0} + 1 + (g::bigint * 7919) % {n * 6 // 10})",
                    "name": "'网关' || g",
                    "protocol": "'tcp'",
                    "host": "'10.' || (g / 65536) || '.' || (g / 256 % 256) || '.' || (g % 256)",
                    "port": "502",
                    "enabled": "g % 25 <> 0",
                    "maintenance": "g % 50 = 1",
                    "status": "(ARRAY['online','online','online','online','offline'])[1 + g % 5]",
                    "last_seen": "now() - (g % 7) * interval '1 minute'",
                    "created_at": "now() - (random() * interval '900 days')",
                    "updated_at": "now()",
                },
            )
            # Credit scores: every enterprise.
            insert_series(
                cur,
                "enforcement_creditscore",
                n,
                {
                    "enterprise_id": f"({e0} + g)",
                    "score": "60 + g % 40",
                    "grade": "(ARRAY['A','B','B','C','D'])[1 + g % 5]",
                    "basis": "'[]'::jsonb",
                    "computed_at": "now()",
                },
            )
    with connection.cursor() as cur:
        for table in (
            "enterprises_enterprise",
            "hazards_hazard",
            "alerts_alert",
            "enforcement_inspection",
            "devices_device",
            "enforcement_creditscore",
            "regulator_region",
        ):
            cur.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - started


# --- measurement -------------------------------------------------------------------------------------


def time_compute(region, start, end, user, runs: int, mode: str = "auto"):
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    from enterprises.indicators import compute

    for _ in range(2):
        result = compute(region, start, end, user=user, mode=mode)
    reset_queries()
    with CaptureQueriesContext(connection) as ctx:
        compute(region, start, end, user=user, mode=mode)
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        compute(region, start, end, user=user, mode=mode)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    p50, p95 = percentiles(wall)
    return p50, p95, statistics.median(cpu), len(ctx.captured_queries), ctx.captured_queries, result["period"]["mode"]


def time_api(client, url: str, runs: int):
    for _ in range(2):
        client.get(url)
    wall = []
    for _ in range(runs):
        t0 = time.perf_counter()
        response = client.get(url)
        wall.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
    return percentiles(wall)


def main() -> None:
    argv = sys.argv[1:]
    passthrough = []
    if "--" in argv:
        i = argv.index("--")
        argv, passthrough = argv[:i], argv[i + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--enterprises", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--reuse", action="store_true", help="keep the data of a previous run (never rebuild)")
    parser.add_argument("--reset", action="store_true", help="drop and rebuild the benchmark database")
    parser.add_argument("--skip-training", action="store_true", help="do not run bench/risk_training.py")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the slowest queries")
    parser.add_argument("--rebuild-snapshots", action="store_true", help="rebuild the monthly snapshots first")
    parser.add_argument("--live-runs", type=int, default=3, help="runs of the live (no snapshot) comparison")
    args = parser.parse_args(argv)

    url = os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "regulator.settings")
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/4")
    ensure_database(url, args.reset)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)

    from alerts.models import Alert
    from devices.models import Device
    from enforcement.models import Inspection
    from enterprises.models import Enterprise
    from hazards.models import Hazard
    from regulator.models import Region, User

    print(f"database: {url}")
    count = Enterprise.objects.count()
    if count < args.enterprises:
        if count:
            sys.exit(f"database holds {count} enterprises (< {args.enterprises}); run with --reset")
        if args.reuse:
            sys.exit("--reuse: the database is empty; run once without --reuse")
        print(f"built the data in {build(args.enterprises):.1f} s")
    print(
        f"rows: {Enterprise.objects.count()} enterprises, {Hazard.objects.count()} hazards, "
        f"{Alert.objects.count()} alerts, {Inspection.objects.count()} inspections, "
        f"{Device.objects.count()} devices, {Region.objects.count()} regions"
    )
    from enterprises.indicator_snapshots import build_snapshots, recent_months
    from enterprises.models import IndicatorSnapshot, IndicatorSnapshotMonth

    # Snapshots: what the beat tasks keep (36 months: a last-year dashboard compares with the year before).
    if args.rebuild_snapshots or IndicatorSnapshotMonth.objects.count() < SNAPSHOT_MONTHS:
        t0, c0 = time.perf_counter(), time.process_time()
        result = build_snapshots(recent_months(SNAPSHOT_MONTHS), sample=True)
        print(
            f"snapshots: {SNAPSHOT_MONTHS} months built in {time.perf_counter() - t0:.1f} s "
            f"(CPU {time.process_time() - c0:.1f} s, {result['queries']} queries)"
        )
    from enterprises.dashboard_days import DAY_MONTHS, build_day_snapshots
    from enterprises.models import IndicatorDaySnapshot

    # Day rows (custom periods' partial months), for databases whose monthly rows predate them.
    if IndicatorSnapshotMonth.objects.filter(days_computed_at__isnull=False).count() < DAY_MONTHS:
        t0, c0 = time.perf_counter(), time.process_time()
        result = build_day_snapshots(recent_months(DAY_MONTHS))
        print(
            f"day snapshots: {DAY_MONTHS} months built in {time.perf_counter() - t0:.1f} s "
            f"(CPU {time.process_time() - c0:.1f} s, {result['queries']} queries)"
        )
    t0, c0 = time.perf_counter(), time.process_time()
    build_snapshots(recent_months(1), sample=True)
    print(
        f"current-month refresh with a sample, month and day rows (the 15-minute beat task): "
        f"{time.perf_counter() - t0:.1f} s (CPU {time.process_time() - c0:.1f} s)"
    )
    print(f"snapshot rows: {IndicatorSnapshot.objects.count()} monthly, {IndicatorDaySnapshot.objects.count()} daily")
    province_user = User.objects.get(username="bench_province")
    county_user = User.objects.get(username="bench_county")
    province = province_user.jurisdiction
    today = date.today()
    from enterprises.dashboard import parse_period

    this_month = parse_period({"period": "month"})
    month = (this_month.start, this_month.end)
    township = Region.objects.filter(level=4).order_by("code").first()
    q = parse_period({"period": "quarter"})
    y = parse_period({"period": "year", "year": str(today.year - 1)})
    cases = [
        ("province, this month", province, month, province_user, "auto", args.runs),
        ("province, this quarter", province, (q.start, q.end), province_user, "auto", args.runs),
        ("province, last year", province, (y.start, y.end), province_user, "auto", args.runs),
        ("county (1,000 enterprises), this month", county_user.jurisdiction, month, county_user, "auto", args.runs),
        ("township (100 enterprises, rows live)", township, month, province_user, "auto", args.runs),
        ("province, custom 10 days", province, (today - timedelta(days=9), today), province_user, "auto", args.runs),
        ("province, custom 45 days", province, (today - timedelta(days=44), today), province_user, "auto", args.runs),
        ("province, custom 365 days", province, (today - timedelta(days=364), today), province_user, "auto", args.runs),
        (
            "province, custom 100 days, past",
            province,
            (today - timedelta(days=130), today - timedelta(days=31)),
            province_user,
            "auto",
            args.runs,
        ),
        (
            "county, custom 10 days",
            county_user.jurisdiction,
            (today - timedelta(days=9), today),
            county_user,
            "auto",
            args.runs,
        ),
        (
            "province, custom 10 days, forced live",
            province,
            (today - timedelta(days=9), today),
            province_user,
            "live",
            args.live_runs,
        ),
        ("province, this month, forced live", province, month, province_user, "live", args.live_runs),
    ]
    load = os.getloadavg()
    print(f"\nload average {load[0]:.1f} on {os.cpu_count()} CPUs (wall times include waiting for a CPU)")
    print(f"{'compute(): case':<42} {'mode':>8} {'p50 ms':>8} {'p95 ms':>8} {'CPU p50':>8} {'queries':>8}")
    slow = []
    for label, region, (start, end), user, mode, runs in cases:
        if runs <= 0:
            continue
        p50, p95, cpu, nq, queries, used = time_compute(region, start, end, user, runs, mode)
        print(f"{label:<42} {used:>8} {p50:8.1f} {p95:8.1f} {cpu:8.1f} {nq:8d}")
        slow.extend(queries)
    client = Client()
    client.force_login(province_user)
    p50, p95 = time_api(client, f"/api/v1/dashboard/?region={province.code}", args.runs)
    print(f"{'API /api/v1/dashboard/ (province, this month)':<51} {p50:8.1f} {p95:8.1f}")
    p50, p95 = time_api(client, f"/dashboard/?region={province.code}", args.runs)
    print(f"{'page /dashboard/ (province, this month)':<51} {p50:8.1f} {p95:8.1f}")
    custom = f"region={province.code}&period=custom&start={today - timedelta(days=9)}&end={today}"
    p50, p95 = time_api(client, f"/api/v1/dashboard/?{custom}", args.runs)
    print(f"{'API /api/v1/dashboard/ (province, custom 10 days)':<51} {p50:8.1f} {p95:8.1f}")
    p50, p95 = time_api(client, f"/dashboard/?{custom}", args.runs)
    print(f"{'page /dashboard/ (province, custom 10 days)':<51} {p50:8.1f} {p95:8.1f}")
    if args.explain:
        from django.db import connection

        for query in sorted(slow, key=lambda q: -float(q["time"]))[:5]:
            print(f"\n-- {query['time']} s\n{query['sql'][:400]}")
            with connection.cursor() as cur:
                cur.execute("EXPLAIN ANALYZE " + query["sql"])
                print("\n".join(r[0] for r in cur.fetchall()))

    training = ROOT / "bench" / "risk_training.py"
    if args.skip_training:
        print("\nrisk training benchmark: skipped (--skip-training)")
    elif not training.exists():
        print("\nrisk training benchmark: bench/risk_training.py not found, skipped")
    else:
        print(f"\n=== {training.relative_to(ROOT)} {' '.join(passthrough)} ===", flush=True)
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        result = subprocess.run([sys.executable, str(training), *passthrough], cwd=ROOT, env=env)
        if result.returncode:
            print(f"risk training benchmark exited with {result.returncode}")


if __name__ == "__main__":
    main()
