"""Benchmark of the hazard closed loop on PostgreSQL: N hazards across M enterprises.

    .venv/bin/python bench/hazards.py [--hazards 1000000] [--enterprises 100000] [--requests 200] [--keep]

Builds its own database (regulator_bench_hazards), fills it with COPY, then measures
- the regulator list (the API list view with filters, as a county inspector and as the city
  admin): p50 / p95 per filter set (target p95 <= 150 ms);
- escalate_overdue: a cold run (every overdue hazard escalates at once), a second run (must do
  nothing) and a next-day run (target <= 30 s).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "regulator_bench_hazards"
BASE_URL = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def setup(recreate: bool) -> None:
    import psycopg

    with psycopg.connect(f"{BASE_URL}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if exists and recreate:
            conn.execute(f'DROP DATABASE "{DB_NAME}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    os.environ["DATABASE_URL"] = f"{BASE_URL}/{DB_NAME}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "regulator.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)


def copy_rows(model, rows, fields: list[str]) -> int:
    """COPY dicts into the model's table; other columns take the field default."""
    from django.db import connection, models

    concrete = [f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField))]
    defaults = {}
    for f in concrete:
        if f.attname in fields:
            continue
        value = f.get_default() if f.has_default() else (None if f.null else "")
        if callable(value):
            value = value()
        if isinstance(f, models.JSONField):
            value = json.dumps(value)
        if isinstance(f, models.DateTimeField) and f.auto_now or getattr(f, "auto_now_add", False):
            value = datetime.now().astimezone()
        defaults[f.attname] = value
    uuid_fields = [f.attname for f in concrete if isinstance(f, models.UUIDField) and f.attname not in fields]
    columns = [f.column for f in concrete]
    names = [f.attname for f in concrete]
    table = model._meta.db_table
    count = 0
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f'COPY "{table}" ({", ".join(chr(34) + c + chr(34) for c in columns)}) FROM STDIN') as copy:
            for row in rows:
                for u in uuid_fields:
                    row[u] = uuid.uuid4()
                copy.write_row([row[n] if n in row else defaults[n] for n in names])
                count += 1
    return count


def build(n_enterprises: int, n_hazards: int, seed: int = 7) -> dict:
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection, transaction
    from guardian.models import UserObjectPermission

    from enterprises.models import Enterprise, Industry
    from hazards.models import Hazard
    from regulator.models import Park, Region, User

    rng = random.Random(seed)
    now = datetime.now().astimezone()
    today = date.today()
    t0 = time.perf_counter()
    with transaction.atomic():
        province, _ = Region.objects.get_or_create(code="320000", defaults={"name": "江苏省", "level": 1})
        city, _ = Region.objects.get_or_create(
            code="320500", defaults={"name": "苏州市", "level": 2, "parent": province}
        )
        counties, townships = [], []
        for c in range(10):
            county, _ = Region.objects.get_or_create(
                code=f"3205{81 + c:02d}", defaults={"name": f"县{c}", "level": 3, "parent": city}
            )
            counties.append(county)
            for t in range(10):
                township, _ = Region.objects.get_or_create(
                    code=f"{county.code}{t + 1:03d}",
                    defaults={"name": f"{county.name}镇{t}", "level": 4, "parent": county},
                )
                townships.append(township)
        parks = [Park.objects.create(code=f"P{p:03d}", name=f"园区{p}", region=counties[p % 10]) for p in range(20)]
        section, _ = Industry.objects.get_or_create(code="C", defaults={"name": "制造业", "level": 1})
        division, _ = Industry.objects.get_or_create(
            code="26", defaults={"name": "化学原料", "level": 2, "parent": section, "high_risk_sector": "chemicals"}
        )
        inspectors = []
        for i, county in enumerate(counties):
            for k in range(3):
                inspectors.append(
                    User(username=f"insp{i}_{k}", role="inspector", jurisdiction=county, email=f"i{i}{k}@x.cn")
                )
        city_admin = User(username="cityadmin", role="regulator_admin", jurisdiction=city, email="c@x.cn")
        managers = [User(username=f"park{p.pk}", role="park_manager", park=p, email=f"p{p.pk}@x.cn") for p in parks]
        for u in [*inspectors, city_admin, *managers]:
            u.set_unusable_password()
        User.objects.bulk_create([*inspectors, city_admin, *managers])

    rows = (
        {
            "uscc": f"91{n:016d}",
            "name": f"化工企业{n:06d}",
            "region_id": townships[n % len(townships)].pk,
            "park_id": parks[n % len(parks)].pk if n % 3 == 0 else None,
            "industry_id": division.pk,
            "former_names": "[]",
        }
        for n in range(n_enterprises)
    )
    with transaction.atomic():
        copy_rows(Enterprise, rows, ["uscc", "name", "region_id", "park_id", "industry_id", "former_names"])
    ent_ids = list(Enterprise.objects.order_by("pk").values_list("pk", "region_id", "park_id"))
    t_ent = time.perf_counter() - t0

    # Principal accounts for a tenth of the enterprises (escalation tier 1 looks them up).
    principals = ent_ids[::10]
    with transaction.atomic():
        copy_rows(
            User,
            (
                {
                    "username": f"principal{pk}",
                    "password": "!",
                    "role": "enterprise_user",
                    "enterprise_role": "principal",
                    "email": f"p{pk}@x.cn",
                    "is_active": True,
                    "date_joined": now,
                }
                for pk, _r, _p in principals
            ),
            ["username", "password", "role", "enterprise_role", "email", "is_active", "date_joined"],
        )
        users = dict(User.objects.filter(username__startswith="principal").values_list("username", "pk"))
        ct = ContentType.objects.get_for_model(Enterprise)
        perm = Permission.objects.get(content_type=ct, codename="view_enterprise")
        copy_rows(
            UserObjectPermission,
            (
                {
                    "content_type_id": ct.pk,
                    "permission_id": perm.pk,
                    "object_pk": str(pk),
                    "user_id": users[f"principal{pk}"],
                }
                for pk, _r, _p in principals
            ),
            ["content_type_id", "permission_id", "object_pk", "user_id"],
        )

    statuses = (
        ["closed"] * 70
        + ["dismissed"] * 4
        + ["rectifying"] * 14
        + ["confirmed"] * 5
        + ["submitted"] * 4
        + ["reported"] * 3
    )
    sources = [
        "self_check",
        "self_check",
        "self_check",
        "inspection",
        "spot_check",
        "third_party",
        "device_alert",
        "public_report",
    ]
    overdue_count = 0

    def hazard_rows():
        nonlocal overdue_count
        for n in range(n_hazards):
            pk, _region, _park = ent_ids[rng.randrange(len(ent_ids))]
            age = rng.randrange(0, 730)
            reported = now - timedelta(days=age, minutes=rng.randrange(0, 1440))
            status = rng.choice(statuses)
            major = rng.random() < 0.03
            due = (reported + timedelta(days=rng.randrange(5, 60))).date()
            if status in ("rectifying", "confirmed", "reported"):
                # Most open hazards are on time; a share of them is overdue by 1..60 days.
                if rng.random() < 0.2:
                    due = today - timedelta(days=rng.randrange(1, 61))
                else:
                    due = today + timedelta(days=rng.randrange(0, 60))
                if due < today:
                    overdue_count += 1
            closed = status == "closed"
            closed_at = reported + timedelta(days=rng.randrange(1, 60)) if closed else None
            yield {
                "enterprise_id": pk,
                "description": f"隐患{n}",
                "grade": "major" if major else "ordinary",
                "major_level": rng.choice([1, 2, 3]) if major else None,
                "source": rng.choice(sources),
                "found_at": reported,
                "reported_at": reported,
                "status": status,
                "deadline": due,
                "due_date": due,
                "closed_at": min(closed_at, now) if closed_at else None,
                "closed_on_time": (closed_at.date() <= due) if closed_at else None,
                "listed": major and status != "closed" and rng.random() < 0.5,
                "created_at": reported,
                "updated_at": reported,
            }

    t1 = time.perf_counter()
    fields = list(next(iter(hazard_rows())).keys())
    overdue_count = 0
    with transaction.atomic():
        copy_rows(Hazard, hazard_rows(), fields)
    t_haz = time.perf_counter() - t1
    with connection.cursor() as cursor:
        # What autovacuum does to a table after a bulk load: visibility map and statistics.
        cursor.execute("VACUUM ANALYZE")
    return {
        "enterprises_s": round(t_ent, 1),
        "hazards_s": round(t_haz, 1),
        "overdue_hazards": overdue_count,
        "inspector": "insp0_0",
        "city_admin": "cityadmin",
        "county_code": counties[0].code,
        "township_code": townships[3].code,
    }


def measure_list(info: dict, n_requests: int) -> list[tuple[str, str, float, float]]:
    from django.test import Client

    from regulator.models import User

    results = []
    queries = [
        "",
        "status=rectifying",
        "overdue=1",
        "grade=major&listed=1",
        "status=rectifying&grade=ordinary&source=self_check",
        f"region={info['township_code']}&open=1",
        "overdue=1&page=5",
    ]
    for username in (info["inspector"], info["city_admin"]):
        client = Client(HTTP_HOST="localhost")
        client.force_login(User.objects.get(username=username))
        for q in queries:
            url = f"/api/v1/hazards/?{q}"
            client.get(url)  # warm
            timings = []
            for _ in range(max(5, n_requests // len(queries))):
                start = time.perf_counter()
                response = client.get(url)
                timings.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, response.content[:200]
            timings.sort()
            p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
            results.append((username, q or "(no filter)", statistics.median(timings), p95))
            print(f"{username:<12} {q or '(no filter)':<52} {statistics.median(timings):8.1f} {p95:8.1f}", flush=True)
    return results


def measure_escalation() -> dict:
    import time_machine

    from hazards.services import escalate_overdue

    out = {}
    start = time.perf_counter()
    summary = escalate_overdue()
    out["cold_s"] = round(time.perf_counter() - start, 2)
    out["cold"] = summary
    start = time.perf_counter()
    summary = escalate_overdue()
    out["repeat_s"] = round(time.perf_counter() - start, 2)
    out["repeat"] = summary
    with time_machine.travel(datetime.now().astimezone() + timedelta(days=1), tick=True):
        start = time.perf_counter()
        summary = escalate_overdue()
        out["next_day_s"] = round(time.perf_counter() - start, 2)
        out["next_day"] = summary
    return out


def reset_escalations() -> None:
    from django.db import connection

    from hazards.models import Hazard, HazardEscalation
    from regulator.models import Notification

    HazardEscalation.objects.all().delete()
    Notification.objects.all().delete()
    Hazard.objects.filter(is_overdue=True).update(is_overdue=False, escalation_tier=0)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE hazards_hazard")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hazards", type=int, default=1_000_000)
    parser.add_argument("--enterprises", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=700, help="spread over 7 filter sets per user")
    parser.add_argument("--reuse", action="store_true", help="keep an existing benchmark database")
    parser.add_argument("--build-only", action="store_true", help="build the database and stop")
    parser.add_argument("--skip-list", action="store_true", help="measure only the escalation")
    args = parser.parse_args()
    setup(recreate=not args.reuse)
    from hazards.models import Hazard

    if args.reuse and Hazard.objects.exists():
        from regulator.models import Region

        info = {
            "inspector": "insp0_0",
            "city_admin": "cityadmin",
            "township_code": Region.objects.filter(level=4).order_by("code")[3].code,
        }
        reset_escalations()
        print(f"reusing {Hazard.objects.count()} hazards (escalation state reset)")
    else:
        info = build(args.enterprises, args.hazards)
        print(
            f"built {args.enterprises} enterprises in {info['enterprises_s']} s and {args.hazards} hazards in "
            f"{info['hazards_s']} s ({info['overdue_hazards']} overdue)"
        )
    if args.build_only:
        return
    if not args.skip_list:
        list_figures(info, args.requests)
    print("\nescalate_overdue:")
    esc = measure_escalation()
    for key in ("cold", "repeat", "next_day"):
        print(f"  {key:<9} {esc[key + '_s']:>7} s  {esc[key]}", flush=True)


def list_figures(info, requests) -> None:
    from regulator.startup import warm_up_and_freeze

    warm_up_and_freeze()  # as the ASGI entry point does in production (regulator/asgi.py)
    print("\nregulator list (GET /api/v1/hazards/, 50 per page, with count):")
    print(f"{'user':<12} {'filters':<52} {'p50 ms':>8} {'p95 ms':>8}", flush=True)
    results = measure_list(info, requests)
    worst = max(p95 for _u, _q, _p50, p95 in results)
    print(f"worst p95: {worst:.1f} ms (target <= 150 ms)", flush=True)


if __name__ == "__main__":
    main()
