import csv
import io

import pytest
from openpyxl import load_workbook

from enterprises.exporting import neutralise
from regulator.models import AuditEntry

NASTY = {
    "name": "=cmd|' /C calc'!A0",
    "legal_representative": "+SUM(1,2)",
    "principal_name": "-2+3",
    "safety_officer_name": "@SUM(A1)",
    "safety_manager_name": "\tTAB",
    "address": "\r=1+1",
}


@pytest.mark.parametrize("value", ["=1", "+1", "-1", "@x", "\t1", "\r1"])
def test_neutralise_prefixes_formula_triggers(value):
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize("value", ["常熟", "1=1", "a+b", 42, None, 1.5])
def test_neutralise_leaves_harmless_values(value):
    assert neutralise(value) == value


@pytest.fixture
def nasty(world):
    for field, value in NASTY.items():
        setattr(world.here, field, value)
    world.here.principal_phone = "13800000001"
    world.here.save()
    return world.here


def _csv_rows(response):
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_csv_export_neutralises_masks_and_respects_scope(world, browser, nasty):
    response = browser(world.inspector).get("/enterprises/export.csv")
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    header, *rows = _csv_rows(response)
    assert len(rows) == 2  # here + here_no_park; not the other county's
    row = dict(zip(header, next(r for r in rows if r[0] == nasty.uscc), strict=True))
    assert row["企业名称"] == "'" + NASTY["name"]
    assert row["法定代表人"] == "'" + NASTY["legal_representative"]
    assert row["主要负责人"] == "'" + NASTY["principal_name"]
    assert row["企业安全专员"] == "'" + NASTY["safety_officer_name"]
    assert row["安全管理人员"] == "'" + NASTY["safety_manager_name"]
    assert row["地址"] == "'" + NASTY["address"]
    assert row["主要负责人电话"] == "138****0001"
    assert world.there.uscc not in {r[0] for r in rows}


def test_xlsx_export_has_no_formulas(world, browser, nasty):
    response = browser(world.inspector).get("/enterprises/export.xlsx")
    wb = load_workbook(io.BytesIO(response.content))
    ws = wb.active
    header = [c.value for c in ws[1]]
    cells = {c.value: c for row in ws.iter_rows(min_row=2) for c in row if isinstance(c.value, str)}
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)
    assert "'" + NASTY["name"] in cells
    assert "138****0001" in cells
    assert "13800000001" not in cells
    assert header[0] == "统一社会信用代码"
    assert ws.max_row == 3


def test_export_follows_the_filters_and_is_audited(world, browser, nasty):
    response = browser(world.city_admin).get("/enterprises/export.csv", {"q": "乙机械"})
    _header, *rows = _csv_rows(response)
    assert [r[1] for r in rows] == [world.here_no_park.name]
    entry = AuditEntry.objects.filter(event="enterprise.exported").latest("id")
    assert entry.user == world.city_admin
    assert entry.detail["rows"] == 1 and entry.detail["format"] == "csv"
    assert entry.detail["filters"] == {"q": "乙机械"}


def test_unknown_export_format_is_404(world, browser):
    assert browser(world.inspector).get("/enterprises/export.pdf").status_code == 404
