"""Risk-model training benchmark on PostgreSQL: 100,000 enterprises with 18 months of history.

    flock /tmp/bench.lock .venv/bin/python bench/risk_training.py [--enterprises 100000]
        [--db regulator_bench_risk] [--reuse] [--reset] [--skip-grading]

Uses its own database (``--db``, default regulator_bench_risk, on DATABASE_URL's server or
127.0.0.1:5432): creates and migrates it and fills it with numpy-generated history loaded with
COPY (registry, major hazard installations, hazards, inspections, alerts, devices, credit
changes, accidents), driven by a latent per-enterprise propensity so the model has a real signal.
``--reuse`` keeps the data of a previous run when it holds enough enterprises. Then runs the
real ``train_risk_model`` (monthly snapshots, held-out time, store + activate) and prints
feature-extraction time, fit time, total, and the metrics against the rule baseline; then the
nightly ``grade_enterprises`` over every enterprise. bench/dashboard.py calls this script.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import ensure_database  # noqa: E402

DEFAULT_DB = "regulator_bench_risk"
SERVER = "postgres://postgres@127.0.0.1:5432"
DAYS = 540  # 18 months of behaviour
NOW = None  # set after django.setup(): 2026-11-29 08:00 local


# --- loading -----------------------------------------------------------------------------------------


def copy_frame(model, frame: pd.DataFrame) -> None:
    """COPY a frame into the model's table; NOT NULL columns missing from it get the field's default."""
    from django.db import connection

    frame = frame.copy()
    n = len(frame)
    for field in model._meta.concrete_fields:
        if field.primary_key or field.attname in frame:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            frame[field.attname] = NOW
        elif field.get_internal_type() == "UUIDField":
            frame[field.attname] = [str(uuid.uuid4()) for _ in range(n)]
        elif field.null:
            continue
        elif field.has_default():
            default = field.get_default()
            frame[field.attname] = "[]" if default == [] else ("{}" if default == {} else default)
        elif field.blank and field.get_internal_type() in ("CharField", "TextField"):
            frame[field.attname] = ""
        else:
            raise SystemExit(f"{model.__name__}.{field.attname}: NOT NULL without a value or default")
    columns = list(frame.columns)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, na_rep="\\N")
    table = model._meta.db_table
    quoted = ", ".join(f'"{c}"' for c in columns)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({quoted}) FROM STDIN WITH (FORMAT csv, NULL '\\N')") as copy,
    ):
        copy.write(buffer.getvalue())


def ids_of(model, n: int) -> np.ndarray:
    return np.array(model.objects.order_by("-id").values_list("id", flat=True)[:n])[::-1]


def build(n: int, seed: int = 2026) -> dict:
    from django.db import connection, transaction

    from alerts.models import Alert
    from devices.models import Channel, Device, DeviceStatusChange
    from enforcement.models import CreditEvent, CreditScore, CreditScoreChange, Inspection
    from enterprises.models import Enterprise, HazardousSubstance, Industry, MajorHazardInstallation
    from hazards.models import Hazard
    from regulator.choices import RegionLevel
    from regulator.models import Region

    rng = np.random.default_rng(seed)
    now = pd.Timestamp(NOW).tz_convert("UTC")
    counts = {}
    with transaction.atomic():
        province = Region.objects.create(code="320000", name="江苏省", level=RegionLevel.PROVINCE)
        city = Region.objects.create(code="320500", name="苏州市", level=RegionLevel.CITY, parent=province)
        county = Region.objects.create(code="320581", name="常熟市", level=RegionLevel.COUNTY, parent=city)
        towns = [
            Region.objects.create(code=f"320581{t:03d}", name=f"第{t}镇", level=RegionLevel.TOWNSHIP, parent=county)
            for t in range(1, 11)
        ]
        industry = Industry.objects.get(code="26").pk

        # Registry.
        sector = rng.choice(["chemicals", "mining", "metallurgy", ""], size=n, p=[0.3, 0.05, 0.05, 0.6])
        scale = rng.choice(["large", "medium", "small", "micro"], size=n, p=[0.05, 0.2, 0.55, 0.2])
        standard = rng.choice(["", "1", "2", "3"], size=n, p=[0.3, 0.05, 0.25, 0.4])
        employees = rng.integers(3, 3000, size=n)
        frame = pd.DataFrame(
            {
                "uscc": [f"91320581B{i:09d}" for i in range(n)],
                "name": [f"基准风险企业{i}" for i in range(n)],
                "former_names": "[]",
                "region_id": np.array([t.pk for t in towns])[rng.integers(0, len(towns), size=n)],
                "industry_id": industry,
                "scale": scale,
                "employees": employees,
                "standardisation_level": standard,
                "is_key": (sector == "chemicals") & np.isin(scale, ["large", "medium"]),
                "high_risk_sector": sector,
                "operating_status": "operating",
                "risk_grade": "",
            }
        )
        copy_frame(Enterprise, frame)
        ent = ids_of(Enterprise, n)
        counts["enterprises"] = n

        # Major hazard installations (chemicals mostly) and their substances.
        has_mh = rng.random(n) < np.where(sector == "chemicals", 0.4, 0.02)
        mh_ent = ent[has_mh]
        mh_grade = rng.choice([1, 2, 3, 4], size=len(mh_ent), p=[0.1, 0.2, 0.3, 0.4])
        copy_frame(
            MajorHazardInstallation,
            pd.DataFrame({"enterprise_id": mh_ent, "name": "储罐区", "grade": mh_grade, "r_value": 10.0}),
        )
        mh_ids = ids_of(MajorHazardInstallation, len(mh_ent))
        copy_frame(
            HazardousSubstance,
            pd.DataFrame(
                {
                    "installation_id": mh_ids,
                    "name": "液氯",
                    "substance_class": "specific",
                    "actual_quantity": 10,
                    "critical_quantity": 5,
                    "beta": 2,
                }
            ),
        )
        counts["major_hazard_installations"] = len(mh_ent)

        # The hidden truth: base propensity from the registry plus noise, and one bad spell.
        base = (
            rng.normal(0, 0.7, n)
            + 0.3 * (sector != "")
            + 0.2 * (standard == "")
            - 0.2 * (standard == "1")
            + 0.2 * (scale == "micro")
            + 0.3 * has_mh
            - 1.0
        )
        spell_start = rng.integers(0, DAYS, n)
        spell_len = rng.integers(60, 200, n)

        def k_at(days_ago):
            in_spell = (spell_start - spell_len < days_ago) & (days_ago <= spell_start)
            return np.minimum(8.0, np.exp(base + 1.4 * in_spell))

        # Hazards, month by month.
        parts = []
        for month in range(DAYS // 30):
            k = k_at(month * 30 + 15)
            c = rng.poisson(0.35 * k)
            idx = np.repeat(np.arange(n), c)
            age = month * 30 + rng.random(len(idx)) * 30
            parts.append((idx, age, k[idx]))
        idx = np.concatenate([p[0] for p in parts])
        age = np.concatenate([p[1] for p in parts])
        k = np.concatenate([p[2] for p in parts])
        m = len(idx)
        reported = now - pd.to_timedelta(age, unit="D")
        major = rng.random(m) < np.minimum(0.3, 0.035 * k)
        late = rng.random(m) < np.minimum(0.7, 0.1 * k)
        stays_open = rng.random(m) < np.minimum(0.2, 0.07 + 0.02 * k)
        duration = np.where(late, 35 + rng.random(m) * 20, 3 + rng.random(m) * 25)
        closed = reported + pd.to_timedelta(duration, unit="D")
        closed_ok = (~stays_open) & (closed < now)
        due = (reported + pd.Timedelta(days=30)).tz_convert(NOW.tzinfo).date
        copy_frame(
            Hazard,
            pd.DataFrame(
                {
                    "enterprise_id": ent[idx],
                    "description": "基准隐患",
                    "source": "self_check",
                    "grade": np.where(major, "major", "ordinary"),
                    "major_level": np.where(major, 2, None),
                    "reported_at": reported,
                    "found_at": reported,
                    "status": np.where(closed_ok, "closed", "rectifying"),
                    "closed_at": pd.Series(closed).where(closed_ok),
                    "closed_on_time": np.where(closed_ok, ~late, None),
                    "deadline": due,
                    "due_date": due,
                    "version": 0,
                    "is_overdue": False,
                    "escalation_tier": 0,
                    "listed": False,
                }
            ),
        )
        counts["hazards"] = m

        # Inspections: risk-based frequency; outcomes follow the propensity on the day.
        visits = rng.poisson(0.6 + 1.5 * k_at(DAYS // 2))
        idx = np.repeat(np.arange(n), visits)
        days_ago = rng.integers(1, DAYS, len(idx))
        k = np.minimum(
            8.0,
            np.exp(base[idx] + 1.4 * ((spell_start[idx] - spell_len[idx] < days_ago) & (days_ago <= spell_start[idx]))),
        )
        weights = np.stack([np.full(len(idx), 55.0), 30 * np.sqrt(k), 5 * k, 1.2 * k], axis=1)
        u = rng.random(len(idx)) * weights.sum(axis=1)
        outcome = np.array(["no_problem", "rectification", "penalty", "suspension"])[
            (u[:, None] > np.cumsum(weights, axis=1)).sum(axis=1)
        ]
        day = (pd.Timestamp(NOW).normalize() - pd.to_timedelta(days_ago, unit="D")).date
        copy_frame(
            Inspection,
            pd.DataFrame(
                {
                    "enterprise_id": ent[idx],
                    "date": day,
                    "status": "completed",
                    "outcome": outcome,
                    "checklist": "[]",
                }
            ),
        )
        counts["inspections"] = len(idx)

        # Devices and alerts for a monitored share (chemicals with major hazards, plus a few).
        monitored = np.flatnonzero(has_mh | (rng.random(n) < 0.02))
        copy_frame(
            Device,
            pd.DataFrame(
                {
                    "enterprise_id": ent[monitored],
                    "name": "网关",
                    "host": [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(len(monitored))],
                    "port": 502,
                    "status": "online",
                    "created_at": now - pd.Timedelta(days=DAYS + 30),
                }
            ),
        )
        dev_ids = ids_of(Device, len(monitored))
        copy_frame(
            Channel,
            pd.DataFrame({"device_id": dev_ids, "tag": "GT-101", "name": "可燃气体", "address": 0, "sentinels": "[]"}),
        )
        parts = []
        for month in range(1, DAYS // 30):
            km = k_at(month * 30 + 15)[monitored]
            c = rng.poisson(1.0 * km)
            j = np.repeat(np.arange(len(monitored)), c)
            parts.append((j, month * 30 + rng.random(len(j)) * 30, km[j]))
        j = np.concatenate([p[0] for p in parts])
        age = np.concatenate([p[1] for p in parts])
        k = np.concatenate([p[2] for p in parts])
        a = len(j)
        raised = now - pd.to_timedelta(age, unit="D")
        level1 = rng.random(a) < np.minimum(0.5, 0.05 * k)
        level = np.where(level1, 1, rng.choice([2, 3], size=a))
        ack_due = raised + pd.Timedelta(minutes=5)
        late = rng.random(a) < np.minimum(0.8, 0.1 * k)
        acked = pd.Series(ack_due + pd.Timedelta(minutes=30)).where(late, pd.Series(raised + pd.Timedelta(minutes=2)))
        copy_frame(
            Alert,
            pd.DataFrame(
                {
                    "enterprise_id": ent[monitored][j],
                    "device_id": dev_ids[j],
                    "kind": np.where(level1, "high_high", "high"),
                    "level": level,
                    "state": "normal",
                    "condition_active": False,
                    "message": "基准报警",
                    "occurrences": 1,
                    "raised_at": raised,
                    "ack_due_at": ack_due,
                    "acknowledged_at": acked,
                    "closed_at": acked + pd.Timedelta(minutes=10),
                    "tier": 0,
                    "linkage_status": "",
                }
            ),
        )
        counts["alerts"] = a
        flips = rng.poisson(2, len(monitored))
        j = np.repeat(np.arange(len(monitored)), flips)
        at = now - pd.to_timedelta(rng.random(len(j)) * DAYS, unit="D")
        offline = rng.random(len(j)) < 0.5
        copy_frame(
            DeviceStatusChange,
            pd.DataFrame(
                {
                    "device_id": dev_ids[j],
                    "at": at,
                    "old": np.where(offline, "online", "offline"),
                    "new": np.where(offline, "offline", "online"),
                }
            ),
        )

        # Credit: the grade each month from the propensity plus noise; a change row when it moves.
        previous = np.full(n, "", dtype=object)
        rows_e, rows_at, rows_old, rows_new = [], [], [], []
        for month in range(DAYS // 30, 0, -1):
            z = np.log(k_at(month * 30)) + rng.normal(0, 0.5, n)
            grade = np.select([z < -1.0, z < 0.0, z < 0.8], ["A", "B", "C"], "D").astype(object)
            moved = grade != previous
            rows_e.append(ent[moved])
            rows_at.append(np.full(moved.sum(), now - pd.Timedelta(days=month * 30)))
            rows_old.append(previous[moved])
            rows_new.append(grade[moved])
            previous = grade
        grades_new = np.concatenate(rows_new)
        copy_frame(
            CreditScoreChange,
            pd.DataFrame(
                {
                    "enterprise_id": np.concatenate(rows_e),
                    "at": np.concatenate(rows_at),
                    "old_score": None,
                    "new_score": 80,
                    "old_grade": np.concatenate(rows_old),
                    "new_grade": grades_new,
                    "added": "[]",
                    "removed": "[]",
                }
            ),
        )
        copy_frame(
            CreditScore,
            pd.DataFrame({"enterprise_id": ent, "score": 80, "grade": previous, "basis": "[]", "computed_at": now}),
        )
        counts["credit_changes"] = len(grades_new)
        # Accidents, rare.
        hit = np.flatnonzero(rng.random(n) < 0.01 * k_at(DAYS // 2))
        copy_frame(
            CreditEvent,
            pd.DataFrame(
                {
                    "enterprise_id": ent[hit],
                    "kind": "accident_general",
                    "occurred_on": (
                        pd.Timestamp(NOW).normalize() - pd.to_timedelta(rng.integers(1, DAYS, len(hit)), unit="D")
                    ).date,
                    "source_key": [f"bench:{i}" for i in ent[hit]],
                }
            ),
        )
        counts["accidents"] = len(hit)
    with connection.cursor() as cursor:
        for model in (Enterprise, Hazard, Inspection, Alert, CreditScoreChange, Device, DeviceStatusChange):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
    return counts


def main() -> None:
    global NOW
    parser = argparse.ArgumentParser()
    parser.add_argument("--enterprises", type=int, default=100_000)
    parser.add_argument("--db", default=DEFAULT_DB, help="database name on the server (default %(default)s)")
    parser.add_argument("--reuse", action="store_true", help="keep a previous run's data when it is big enough")
    parser.add_argument("--reset", action="store_true", help="drop and rebuild the database")
    parser.add_argument("--skip-grading", action="store_true", help="only train")
    args = parser.parse_args()

    server = os.environ.get("BENCH_PG_SERVER", SERVER)
    url = f"{server}/{args.db}"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "regulator.settings")
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/3")
    ensure_database(url, args.reset)

    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    NOW = timezone.make_aware(datetime(2026, 11, 29, 8, 0))
    call_command("migrate", verbosity=0)
    from enterprises.models import Enterprise, RiskModel

    print(f"database: {url}")
    count = Enterprise.objects.count()
    if count and count < args.enterprises:
        sys.exit(f"database holds {count} enterprises (< {args.enterprises}); run with --reset")
    if count and not args.reuse:
        print(f"reusing the {count} enterprises already there (pass --reset to rebuild)")
    if not count:
        started = time.perf_counter()
        counts = build(args.enterprises)
        print(f"built in {time.perf_counter() - started:.1f} s: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    RiskModel.objects.update(is_active=False)  # every run trains from a clean slate: no comparison bias

    from enterprises.risk.training import TOP_K_SHARE, train_risk_model

    cpu0, started = time.process_time(), time.perf_counter()
    outcome = train_risk_model(as_of=NOW)
    total = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    m = outcome.metrics
    t = m.get("timings", {})
    print(f"training: {outcome.status}: {outcome.message}")
    if "auc" in m:
        k = int(TOP_K_SHARE * 100)
        print(
            f"snapshots: {len(m['train_snapshots'])} train, {len(m['test_snapshots'])} test; rows {m['n_train']} train "
            f"({m['train_positives']} positive), {m['n_test']} test ({m['test_positives']} positive, "
            f"base rate {m['base_rate_test']:.3f})"
        )
        print(f"feature extraction: {t.get('features_s', float('nan')):.1f} s")
        print(f"fit:                {t.get('fit_s', float('nan')):.1f} s")
        print(f"total training:     {total:.1f} s wall, {cpu:.1f} s CPU (target <= 60 s)")
        print(
            f"model: AUC {m['auc']:.3f}, precision@{k}% {m['precision_at_k']:.3f}, Brier {m['brier']:.4f} | "
            f"rules: AUC {m['rules']['auc']:.3f}, precision@{k}% {m['rules']['precision_at_k']:.3f}"
        )
    if not args.skip_grading:
        from enterprises.risk.grading import grade_enterprises

        started = time.perf_counter()
        summary = grade_enterprises(as_of=NOW)
        print(f"grading: {summary} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
