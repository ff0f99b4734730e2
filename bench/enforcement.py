"""Benchmark of enforcement: the dual-random draw, the credit recompute and PDF documents.

    .venv/bin/python bench/enforcement.py [--enterprises 100000] [--inspectors 1000] [--sqlite] [--reuse]

(--reuse measures again on the PostgreSQL database filled by the previous run: a "next month" draw,
where last month's visits make fewer enterprises due and some capped.) Each line prints wall time
and this process's CPU time, and the load average is printed: on a shared machine wall time
mostly measures the neighbours.

Builds its own database (PostgreSQL ``regulator_bench_enforcement``, or a SQLite file with
--sqlite), fills a county with N enterprises, M inspectors (specialties, conflicts) and a year of
inspection history, then measures
- the draw: snapshot build, pure compute_draw, the full draw_plan service (snapshot + compute +
  hashing + signing + writing the inspections) with the time of each of its steps, and
  verify_draw (target: draw <= 2 s);
- the credit recompute over all enterprises: first run, an unchanged re-run, and a run after new
  events (target <= 10 s);
- PDF generation per document (render only, and the full numbered/hashed/signed issue).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "regulator_bench_enforcement"
BASE_URL = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def setup_database(use_sqlite: bool, reuse: bool) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-enforcement-"))
    os.environ["DATA_DIR"] = str(data_dir)
    if use_sqlite:
        os.environ["DATABASE_URL"] = f"sqlite:///{data_dir / 'bench.sqlite3'}"
    else:
        import psycopg

        with psycopg.connect(f"{BASE_URL}/postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
            if exists and not reuse:
                conn.execute(f'DROP DATABASE "{DB_NAME}" WITH (FORCE)')
            if not (exists and reuse):
                conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        os.environ["DATABASE_URL"] = f"{BASE_URL}/{DB_NAME}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "regulator.settings")
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"  # the notification task is queued, as in production
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def timed(label: str, fn, *args, **kwargs):
    """Wall time, and this process's CPU time (the database's own work is not in it)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"  {label:<56} {elapsed:8.3f} s wall {cpu:8.3f} s cpu")
    return result, elapsed


class DrawSteps:
    """Wall time of the steps inside one draw_plan, by wrapping the functions it calls while active.

    draw_plan looks these functions up when it runs, so it calls the wrappers. The inspections are
    sent in chunks while compute_draw makes the teams (PostgreSQL: pipelined, the server stores them
    meanwhile): "send" is the client's part of that, inside compute_draw's time. The Draw row's
    UPDATE with the snapshot is queued behind them (PostgreSQL), and "waited" is what the draw still
    had to wait for the server after that. "SQL through Django" adds up every statement sent
    through Django's cursors (not the pipelined ones). COMMIT is the end of the
    transaction (the deferred foreign keys that are left, and the WAL flush).
    """

    ORDER = [
        "build snapshot",
        "  of which the targets SQL (+ fetch)",
        "Draw row: INSERT",
        "compute_draw",
        "  of which sending the inspections + teams",
        "canonical JSON (snapshot + result)",
        "SM3 hashes",
        "SM2 signature",
        "Draw row: UPDATE with the snapshot and result",
        "waited for the server: inspections + teams, Draw UPDATE",
        "COMMIT",
    ]

    def __init__(self):
        self.times: dict[str, float] = {}
        self.undo: list = []
        self.sql = 0.0

    def _add(self, label: str, seconds: float) -> None:
        self.times[label] = self.times.get(label, 0.0) + seconds

    def _patch(self, owner, name: str, replacement) -> None:
        self.undo.append((owner, name, vars(owner).get(name)))  # None: inherited, delete to restore
        setattr(owner, name, replacement)

    def _time(self, label: str, owner, name: str) -> None:
        import time

        original = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self._add(label, time.perf_counter() - start)

        self._patch(owner, name, timed)

    def __enter__(self):
        import time

        from django.db import DEFAULT_DB_ALIAS, connections

        from enforcement import drawing, services, signing
        from enforcement.models import Draw
        from regulator import crypto

        real = connections[DEFAULT_DB_ALIAS]
        self._time("build snapshot", services, "build_snapshot")
        self._time("  of which the targets SQL (+ fetch)", services, "_targets_postgresql")
        self._time("compute_draw", drawing, "compute_draw")
        self._time("canonical JSON (snapshot + result)", drawing, "canonical_bytes")
        self._time("SM3 hashes", crypto, "sm3_hex")
        self._time("Draw row: INSERT", Draw.objects, "create")
        self._time("SM2 signature", signing, "sign")
        self._time("Draw row: UPDATE with the snapshot and result", services._DrawWriter, "update")
        self._time("COMMIT", real, "commit")

        self._time("  of which sending the inspections + teams", services._DrawWriter, "send")
        self._time("waited for the server: inspections + teams, Draw UPDATE", services._DrawWriter, "__exit__")

        def count_sql(execute, sql, params, many, context):
            start = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                self.sql += time.perf_counter() - start

        self.sql_wrapper = real.execute_wrapper(count_sql)
        self.sql_wrapper.__enter__()
        return self

    def __exit__(self, *exc):
        self.sql_wrapper.__exit__(*exc)
        for owner, name, original in reversed(self.undo):
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        return False

    def report(self, total: float) -> None:

        counted = sum(t for label, t in self.times.items() if not label.startswith(" "))
        for label in self.ORDER:
            if label in self.times:
                print(f"    {label:<60} {self.times[label]:8.3f} s")
        print(f"    {'the rest (plan lock, sequence, audit, ...)':<60} {total - counted:8.3f} s")
        print(f"    {'SQL through Django (within the steps above)':<60} {self.sql:8.3f} s")


def fill(n_enterprises: int, n_inspectors: int, rng: random.Random):
    from django.contrib.auth.hashers import make_password

    from enforcement.choices import CertificationLevel
    from enforcement.models import ConflictOfInterest, CreditEvent, Inspection, InspectorProfile
    from enterprises import uscc
    from enterprises.models import Enterprise, Industry
    from regulator.choices import RegionLevel, Role
    from regulator.models import Region, User

    province = Region.objects.create(code="320000", name="江苏省", level=RegionLevel.PROVINCE)
    city = Region.objects.create(code="320500", name="苏州市", level=RegionLevel.CITY, parent=province)
    county = Region.objects.create(code="320581", name="常熟市", level=RegionLevel.COUNTY, parent=city)
    towns = [
        Region.objects.create(code=f"320581{i:03d}", name=f"镇{i}", level=RegionLevel.TOWNSHIP, parent=county)
        for i in range(1, 11)
    ]
    classes = list(Industry.objects.filter(level=4).select_related("parent__parent").order_by("code")[:300])
    if not classes:  # the GB/T 4754 table was not loaded: make a tiny tree
        section = Industry.objects.create(code="C", name="制造业", level=1)
        division = Industry.objects.create(code="26", name="化学原料", level=2, parent=section)
        group = Industry.objects.create(code="261", name="基础化学原料", level=3, parent=division)
        classes = [Industry.objects.create(code="2614", name="有机化学原料制造", level=4, parent=group)]
    divisions = sorted({c.parent.parent_id for c in classes if c.parent and c.parent.parent_id})
    # a realistic county: 1% red, 4% orange, 25% yellow, 60% blue, 10% not yet rated
    risks = ["red"] * 1 + ["orange"] * 4 + ["yellow"] * 25 + ["blue"] * 60 + [""] * 10
    ents = [
        Enterprise(
            uscc=uscc.make(f"91320581{i:09d}"),
            name=f"基准测试企业{i:06d}",
            region=towns[i % len(towns)],
            industry=classes[i % len(classes)],
            risk_grade=risks[i % len(risks)],
            standardisation_level=rng.choice(["", "", "3", "2", "1"]),
        )
        for i in range(n_enterprises)
    ]
    Enterprise.objects.bulk_create(ents, batch_size=5000)
    ent_ids = list(Enterprise.objects.order_by("id").values_list("id", flat=True))
    password = make_password(None)
    users = [
        User(
            username=f"bench_insp{i:05d}",
            role=Role.INSPECTOR,
            jurisdiction=county,
            full_name=f"执法{i}",
            password=password,
        )
        for i in range(n_inspectors)
    ]
    User.objects.bulk_create(users, batch_size=2000)
    users = list(User.objects.filter(username__startswith="bench_insp").order_by("id"))
    levels = [
        CertificationLevel.SENIOR,
        CertificationLevel.JUNIOR,
        CertificationLevel.INTERMEDIATE,
        CertificationLevel.JUNIOR,
    ]
    InspectorProfile.objects.bulk_create(
        [InspectorProfile(user=u, certification_level=levels[i % 4]) for i, u in enumerate(users)], batch_size=2000
    )
    profiles = list(InspectorProfile.objects.order_by("id"))
    through = InspectorProfile.specialties.through
    through.objects.bulk_create(
        [
            through(inspectorprofile_id=p.pk, industry_id=divisions[(i + k) % len(divisions)])
            for i, p in enumerate(profiles)
            for k in range(3)
        ],
        batch_size=5000,
    )
    ConflictOfInterest.objects.bulk_create(
        [ConflictOfInterest(inspector=p, enterprise_id=rng.choice(ent_ids), reason="亲属任职") for p in profiles],
        ignore_conflicts=True,
    )
    # a year of history: 90% of the enterprises were inspected once in the last year
    today = date.today()
    history = [
        Inspection(
            enterprise_id=eid,
            date=today - timedelta(days=rng.randrange(10, 360)),
            status="completed",
            outcome="no_problem",
        )
        for eid in rng.sample(ent_ids, int(len(ent_ids) * 0.9))
    ]
    Inspection.objects.bulk_create(history, batch_size=5000)
    team_through = Inspection.team.through
    hist_ids = list(Inspection.objects.order_by("id").values_list("id", flat=True))
    team_through.objects.bulk_create(
        [team_through(inspection_id=iid, user_id=u.pk) for iid in hist_ids for u in rng.sample(users, 2)],
        batch_size=10000,
    )
    kinds = ["penalty", "inspection_clean", "accident_general", "monitoring_anomaly", "rectified_on_time"]
    CreditEvent.objects.bulk_create(
        [
            CreditEvent(
                enterprise_id=rng.choice(ent_ids),
                kind=rng.choice(kinds),
                occurred_on=today - timedelta(days=rng.randrange(0, 700)),
                source_key=f"bench:{i}",
            )
            for i in range(len(ent_ids) // 2)
        ],
        batch_size=5000,
    )
    return county, users


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--enterprises", type=int, default=100_000)
    parser.add_argument("--inspectors", type=int, default=1_000)
    parser.add_argument("--documents", type=int, default=20)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument(
        "--reuse", action="store_true", help="PostgreSQL: keep the filled database of the last run, measure again"
    )
    args = parser.parse_args()
    setup_database(args.sqlite, args.reuse and not args.sqlite)

    from django.db import connection

    from enforcement import drawing, services
    from enforcement.choices import DocumentType, Outcome
    from enforcement.pdf import render_document
    from regulator.choices import Role
    from regulator.models import User

    rng = random.Random(7)
    print(f"database: {connection.vendor}; {args.enterprises} enterprises, {args.inspectors} inspectors")
    t0 = time.perf_counter()
    from regulator.models import Region

    if args.reuse and Region.objects.filter(code="320581").exists():
        county = Region.objects.get(code="320581")
        print("  reusing the filled database (new plan; credit re-runs only)")
    else:
        args.reuse = False
        county, _users = fill(args.enterprises, args.inspectors, rng)
        print(f"  {'fill':<56} {time.perf_counter() - t0:8.3f} s wall")
    print(f"  load average at start: {os.getloadavg()}")
    from _common import python_speed

    print(f"  machine: {python_speed()}")
    head, _ = User.objects.get_or_create(
        username="bench_head", defaults={"role": Role.SECTION_HEAD, "jurisdiction": county}
    )

    print("credit recompute (pandas):")
    import pandas  # noqa: F401  (import cost is paid once per process, not per run)

    from enforcement.models import CreditEvent, CreditScore
    from enterprises.models import Enterprise

    if args.reuse:
        CreditScore.objects.all()._raw_delete(CreditScore.objects.db)
    _, first = timed("first run (creates every score)", services.credit_recompute)
    _, unchanged = timed("re-run, nothing changed", services.credit_recompute)
    ids = list(Enterprise.objects.values_list("id", flat=True)[:1000])
    stamp = time.time_ns()
    CreditEvent.objects.bulk_create(
        [
            CreditEvent(enterprise_id=e, kind="penalty", occurred_on=date.today(), source_key=f"new:{stamp}:{e}")
            for e in ids
        ]
    )
    _, changed = timed("re-run after 1,000 new events", services.credit_recompute)

    print("draw:")
    if connection.vendor == "postgresql":
        # The credit runs above (and every earlier --reuse run) leave ~100,000 dead rows per table, and
        # autovacuum is off on the bench server: vacuum and analyse as autovacuum would in production,
        # so the draw is measured against live rows and current statistics, not the bench's own bloat.
        def vacuum():
            with connection.cursor() as cursor:
                cursor.execute("VACUUM (ANALYZE)")

        timed("VACUUM (ANALYZE) (autovacuum's job; not part of the draw)", vacuum)
    plan = services.plan_create(
        user=head,
        name=f"基准计划 {time.strftime('%H:%M:%S')}",
        jurisdiction=county,
        period_start=date.today(),
        period_end=date.today() + timedelta(days=30),
        strata=[
            {"label": "高风险", "risk": ["red", "orange"], "ratio": "0.2"},
            {"label": "其他", "ratio": "0.03"},
        ],
        team_size=2,
        require_specialty=True,
    )
    snapshot, _ = timed("build snapshot (queries)", services.build_snapshot, plan)
    seed = "5eed" * 8
    result, compute = timed("compute_draw (pure)", drawing.compute_draw, seed, snapshot)
    timed("canonical JSON + SM3 of snapshot", drawing.sm3_of, snapshot)
    with DrawSteps() as steps:
        draw, full = timed("draw_plan service (all of the above + writes)", services.draw_plan, plan=plan, user=head)
    steps.report(full)
    problems, _ = timed("verify_draw", services.verify_draw, draw)
    assert not problems, problems
    timed("notify the drawn inspectors (Celery task, after commit)", services.draw_notify, draw=draw)
    counts = f"due {len(result['due'])}, capped {len(result['capped'])}, unassigned {len(result['unassigned'])}"
    print(f"  selected {len(result['assignments'])} enterprises ({counts}); snapshot {len(draw.snapshot) / 1e6:.1f} MB")

    print("documents:")
    inspection = draw.inspections.order_by("id").first()
    member = inspection.team.first()
    services.inspection_complete(
        inspection=inspection,
        user=member,
        outcome=Outcome.PENALTY,
        findings=[{"description": "未按规定对重大危险源进行监测监控"}, {"description": "特种作业人员无证上岗"}],
        penalty_amount="50000",
        rectification_deadline=date.today() + timedelta(days=30),
    )
    from enforcement.models import Document

    renders, issues = [], []
    for i in range(args.documents):
        doc_type = [DocumentType.ONSITE_RECORD, DocumentType.RECTIFICATION_ORDER, DocumentType.PENALTY_DECISION][i % 3]
        start = time.perf_counter()
        doc = services.document_issue(inspection=inspection, doc_type=doc_type, user=member)
        issues.append(time.perf_counter() - start)
        start = time.perf_counter()
        render_document(Document.objects.get(pk=doc.pk))
        renders.append(time.perf_counter() - start)
    print(f"  render PDF only: median {statistics.median(renders) * 1000:.1f} ms, max {max(renders) * 1000:.1f} ms")
    print(f"  full issue (number + PDF + SM3 + SM2 + store): median {statistics.median(issues) * 1000:.1f} ms")
    print(f"  load average at end: {os.getloadavg()}")
    print(f"targets: draw <= 2 s (compute {compute:.2f} s, full service {full:.2f} s)")
    print(f"         credit <= 10 s (first {first:.2f} s, re-runs {unchanged:.2f} / {changed:.2f} s)")


if __name__ == "__main__":
    main()
