import csv
from decimal import Decimal

import pytest
from django.core.management import call_command
from openpyxl import Workbook

from enterprises.importing import import_enterprises
from enterprises.models import Enterprise, EnterpriseChange
from tests import factories as f

HEADER_ZH = [
    "统一社会信用代码",
    "企业名称",
    "区划代码",
    "园区编码",
    "行业代码",
    "规模",
    "从业人数",
    "重点企业",
    "主要负责人电话",
]
HEADER_EN = [
    "uscc",
    "name",
    "region_code",
    "park_code",
    "industry_code",
    "scale",
    "employees",
    "is_key",
    "principal_phone",
]


def _rows(world):
    return [
        [f.make_uscc(9001), "常熟新甲化工有限公司", "320581001", "P-0001", "2614", "中型", "300", "是", "13800000001"],
        ["91320581MA0000000X", "校验位错误公司", "320581", "", "2614", "小型", "10", "否", ""],  # bad check character
        [f.make_uscc(9002).lower(), "常熟新乙机械有限公司", "320581", "", "34", "small", "25", "0", ""],
        [f.make_uscc(9003), "", "320581", "", "2614", "小型", "1", "否", ""],  # missing name
        [f.make_uscc(9004), "未知区划公司", "999999", "", "2614", "小型", "1", "否", ""],
        [f.make_uscc(9005), '=HYPERLINK("x")有限公司', "320581", "", "9999", "小型", "1", "否", ""],  # bad industry
        [f.make_uscc(9001), "重复行公司", "320581", "", "2614", "小型", "1", "否", ""],  # duplicate of row 2
        [
            f.make_uscc(9006),
            "张家港园区外公司",
            "320582",
            "P-0001",
            "2614",
            "小型",
            "1",
            "否",
            "",
        ],  # park not in region
    ]


def _write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_csv_import_reports_each_bad_row_and_keeps_good_ones(world, tmp_path):
    path = _write_csv(tmp_path / "in.csv", HEADER_ZH, _rows(world))
    report = import_enterprises(path)
    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    rejected = {number: reason for number, _code, reason in report.rejected}
    assert set(rejected) == {3, 5, 6, 7, 8, 9}
    assert "校验位" in rejected[3]
    assert "名称" in rejected[5]
    assert "999999" in rejected[6]
    assert "9999" in rejected[7]
    assert "第2行" in rejected[8]
    assert "园区" in rejected[9]
    ent = Enterprise.objects.get(uscc=f.make_uscc(9001))
    assert (ent.park, ent.scale, ent.employees, ent.is_key) == (world.park, "medium", 300, True)
    assert ent.high_risk_sector == "chemicals"
    assert ent.principal_phone == "13800000001"
    raw = Enterprise.objects.filter(pk=ent.pk).values_list("principal_phone", flat=True).get()
    assert "13800000001" not in raw  # stored encrypted
    assert Enterprise.objects.get(uscc=f.make_uscc(9002)).name == "常熟新乙机械有限公司"
    assert EnterpriseChange.objects.filter(source="import", action="created").count() == 2


def test_second_run_changes_nothing(world, tmp_path):
    path = _write_csv(tmp_path / "in.csv", HEADER_ZH, _rows(world))
    import_enterprises(path)
    before = list(Enterprise.objects.order_by("id").values())
    changes = EnterpriseChange.objects.count()
    report = import_enterprises(path)
    assert (report.created, report.updated, report.unchanged, len(report.rejected)) == (0, 0, 2, 6)
    assert list(Enterprise.objects.order_by("id").values("id", "name", "employees", "updated_at")) == [
        {k: row[k] for k in ("id", "name", "employees", "updated_at")} for row in before
    ]
    assert EnterpriseChange.objects.count() == changes


def test_update_of_existing_row_records_diff_and_encrypts_new_phone(world, tmp_path):
    path = _write_csv(
        tmp_path / "in.csv",
        ["uscc", "name", "employees", "principal_phone"],
        [[world.here.uscc, "常熟甲化工股份有限公司", "88", "13911112222"]],
    )
    report = import_enterprises(path)
    assert report.updated == 1
    ent = Enterprise.objects.get(pk=world.here.pk)
    assert (ent.name, ent.employees, ent.principal_phone) == ("常熟甲化工股份有限公司", 88, "13911112222")
    assert ent.former_names == ["常熟甲化工有限公司"]
    raw = Enterprise.objects.filter(pk=ent.pk).values_list("principal_phone", flat=True).get()
    assert "1391111" not in raw
    change = EnterpriseChange.objects.get(enterprise=ent, source="import")
    assert change.changes["principal_phone"]["new"] == "139****2222"
    # columns absent from the file are left alone
    assert ent.region == world.regions["township"] and ent.park == world.park


def test_masked_phone_from_an_export_never_overwrites(world, tmp_path):
    world.here.principal_phone = "13800000001"
    world.here.save()
    path = _write_csv(tmp_path / "in.csv", ["uscc", "principal_phone"], [[world.here.uscc, "138****0001"]])
    report = import_enterprises(path)
    assert report.unchanged == 1
    assert Enterprise.objects.get(pk=world.here.pk).principal_phone == "13800000001"


def test_xlsx_with_english_headers(world, tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER_EN)
    ws.append([f.make_uscc(9101), "常熟丙仓储有限公司", 320581, None, 5942, "micro", 8, "Y", None])
    ws.append([f.make_uscc(9102), "常熟丁公司", "320581", None, "2614", "巨型", 8, "N", None])  # bad scale
    ws.append([None] * 9)  # blank line is skipped
    path = tmp_path / "in.xlsx"
    wb.save(path)
    report = import_enterprises(path)
    assert report.created == 1
    assert [(n, "规模" in r or "scale" in r) for n, _c, r in report.rejected] == [(3, True)]
    ent = Enterprise.objects.get(uscc=f.make_uscc(9101))
    assert (ent.industry.code, ent.high_risk_sector, ent.scale, ent.is_key) == (
        "5942",
        "hazardous_storage",
        "micro",
        True,
    )


def test_export_file_round_trips_through_import(world, tmp_path, browser):
    world.here.longitude, world.here.latitude = Decimal("120.75"), Decimal("31.65")
    world.here.save()
    response = browser(world.city_admin).get("/enterprises/export.xlsx")
    path = tmp_path / "export.xlsx"
    path.write_bytes(response.content)
    report = import_enterprises(path)
    assert (report.created, report.updated, report.unchanged, report.rejected) == (0, 0, 3, [])


def test_command_prints_summary_and_rejections(world, tmp_path, capsys):
    path = _write_csv(tmp_path / "in.csv", HEADER_ZH, _rows(world))
    call_command("import_enterprises", str(path))
    out = capsys.readouterr().out
    assert "created 2" in out and "rejected 6" in out
    assert "第3行" in out


def test_command_dry_run_rolls_back(world, tmp_path, capsys):
    path = _write_csv(tmp_path / "in.csv", HEADER_ZH, _rows(world))
    call_command("import_enterprises", str(path), "--dry-run")
    assert "created 2" in capsys.readouterr().out
    assert not Enterprise.objects.filter(uscc=f.make_uscc(9001)).exists()


def test_file_without_uscc_column_is_refused(world, tmp_path):
    from django.core.management.base import CommandError

    path = _write_csv(tmp_path / "in.csv", ["企业名称"], [["x"]])
    with pytest.raises(CommandError, match="统一社会信用代码"):
        call_command("import_enterprises", str(path))
