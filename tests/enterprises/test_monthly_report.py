"""The monthly supervision report: its content (XLSX, PDF), the command and the page."""

from __future__ import annotations

import io
from datetime import date, datetime, time, timedelta
from urllib.parse import quote

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from openpyxl import load_workbook
from pypdf import PdfReader

from alerts.models import Alert
from enterprises.choices import RiskGrade
from enterprises.models import Enterprise
from enterprises.reports.data import (
    ReportInputError,
    build_monthly_report,
    last_month,
    month_end,
    parse_month,
    top_reasons,
)
from enterprises.reports.files import render
from hazards.models import Hazard
from regulator.models import AuditEntry
from tests import factories as f

SHEETS = ["主要指标", "等级分布", "重点风险企业", "逾期隐患", "超时未处置报警", "下级区划"]


def at(day: date, hour: int = 10) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour)))


def hazard(enterprise, *, reported: date, status="rectifying", due: date | None = None, **extra):
    return Hazard.objects.create(
        enterprise=enterprise,
        description=extra.pop("description", "储罐区可燃气体报警器失效"),
        source="inspection",
        status=status,
        reported_at=at(reported),
        found_at=at(reported),
        deadline=due,
        due_date=due,
        **extra,
    )


def alert(enterprise, *, raised: datetime, level=2, state="active_unack", **extra):
    return Alert.objects.create(
        enterprise=enterprise,
        kind="high_high",
        level=level,
        state=state,
        message=extra.pop("message", "可燃气体浓度高高报"),
        raised_at=raised,
        ack_due_at=raised + timedelta(minutes=10),
        response_due_at=extra.pop("response_due_at", raised + timedelta(minutes=30)),
        **extra,
    )


@pytest.fixture
def month():
    return last_month()


@pytest.fixture
def history(world, month):
    """Last month: three hazards found in this county (one overdue, listed), one the month before,
    one in the other county; an unacknowledged alert past its deadline; risk grades."""
    # Registered long before the month (the indicators count enterprises existing at the period end).
    Enterprise.objects.update(created_at=at(month - timedelta(days=90)))
    mid = month + timedelta(days=14)
    before = (month - timedelta(days=1)).replace(day=10)
    overdue = hazard(
        world.here,
        reported=month + timedelta(days=1),
        due=month + timedelta(days=5),
        description="液氯储罐安全阀未校验",
        listed=True,
        supervision_due=month_end(month),
        responsible_person="王工",
        grade="major",
        major_level=1,
    )
    hazard(world.here, reported=mid, due=month_end(month) + timedelta(days=60), description="消防通道堵塞")
    hazard(world.here_no_park, reported=mid, status="closed", due=mid, closed_at=at(mid), description="配电柜未接地")
    hazard(world.here_no_park, reported=before, status="closed", due=before, closed_at=at(before))
    hazard(world.there, reported=mid, due=month + timedelta(days=2), description="张家港的逾期隐患")
    late_alert = alert(world.here, raised=at(month + timedelta(days=20)), message="罐区可燃气体高高报")
    alert(world.there, raised=at(month + timedelta(days=20)), message="张家港报警")
    world.here.risk_grade = "red"
    world.here.save(update_fields=["risk_grade"])
    world.here_no_park.risk_grade = "yellow"
    world.here_no_park.save(update_fields=["risk_grade"])
    return {"overdue": overdue, "alert": late_alert}


def sheet_rows(ws):
    return [list(r) for r in ws.iter_rows(values_only=True)]


def table_rows(ws):
    """The rows under the frozen header."""
    header = ws.freeze_panes  # e.g. "A9": data starts on row 9, the header is row 8
    first = int(header[1:])
    rows = sheet_rows(ws)
    return rows[first - 2], [r for r in rows[first - 1 :] if any(v is not None for v in r)]


def workbook(content: bytes):
    return load_workbook(io.BytesIO(content))


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


# --- months ------------------------------------------------------------------------------------


def test_parse_month_accepts_past_and_current_months_only():
    today = date(2026, 11, 29)
    assert parse_month("2026-10", today=today) == date(2026, 10, 1)
    assert parse_month("2026-11", today=today) == date(2026, 11, 1)
    for bad in ("2026-12", "2027-01", "2026-13", "2026-1", "abc", ""):
        with pytest.raises(ReportInputError):
            parse_month(bad, today=today)


# --- content -------------------------------------------------------------------------------------


def test_xlsx_has_one_sheet_per_part_with_frozen_headers(world, history, month):
    report = build_monthly_report(world.regions["county"], month)
    wb = workbook(render(report, "xlsx"))
    assert wb.sheetnames == SHEETS
    for ws in wb.worksheets:
        assert ws.freeze_panes is not None
        assert ws.column_dimensions["A"].width >= 6
    first = sheet_rows(wb["主要指标"])
    assert first[0][0] == f"常熟市安全生产监管月度报告（{month.year}年{month.month}月）"
    meta = {r[0]: r[1] for r in first[1:6]}
    assert meta["辖区"] == "常熟市（320581）"
    assert meta["报告月份"] == f"{month.year}年{month.month}月"


def test_xlsx_indicator_of_the_month_with_previous_and_change(world, history, month):
    from enterprises.indicators import indicators

    label = {i.key: str(i.label) for i in indicators()}["hazards_found"]
    report = build_monthly_report(world.regions["county"], month)
    header, rows = table_rows(workbook(render(report, "xlsx"))["主要指标"])
    assert header[:5] == ["指标", "本月", "上月", "变化", "单位"]
    found = next(r for r in rows if r[0] == label)
    # Three hazards found in this county last month (the other county's does not count), one before.
    assert found[1:4] == [3, 1, 2]


def test_xlsx_distributions_of_the_current_month_count_grades(world, history):
    report = build_monthly_report(world.regions["county"], timezone.localdate().replace(day=1))
    _header, rows = table_rows(workbook(render(report, "xlsx"))["等级分布"])
    risk = {r[1]: r[2] for r in rows if r[0] == "风险等级"}
    assert risk["重大风险（红）"] == 1
    assert risk["一般风险（黄）"] == 1
    assert risk["低风险（蓝）"] == 0


def test_past_month_without_snapshots_shows_the_grades_at_generation_and_says_so(world, history, month):
    world.there.risk_grade = "red"  # another county: not counted
    world.there.save(update_fields=["risk_grade"])
    report = build_monthly_report(world.regions["county"], month)
    table = report.table("distributions")
    assert "该月没有指标快照" in table.note
    risk = {r[1]: r[2] for r in table.rows if r[0] == "风险等级（生成时）"}
    assert risk == {"重大风险（红）": 1, "较大风险（橙）": 0, "一般风险（黄）": 1, "低风险（蓝）": 0, "未评级": 0}
    credit = {r[1]: r[2] for r in table.rows if r[0] == "信用等级（生成时）"}
    assert credit["未评级"] == 2
    alerts = {r[1]: r[2] for r in table.rows if r[0] == "报警级别"}
    assert alerts["二级(超限)"] == 1


def test_top_risks_are_ordered_by_grade_without_profiles_and_stay_in_the_region(world, history, month):
    f.enterprise(world.regions["county"], name="常熟丁化工有限公司", risk_grade="orange")
    f.enterprise(world.regions["county"], name="常熟戊化工有限公司")  # not graded yet
    world.there.risk_grade = "red"
    world.there.save(update_fields=["risk_grade"])
    report = build_monthly_report(world.regions["county"], month)
    header, rows = table_rows(workbook(render(report, "xlsx"))["重点风险企业"])
    assert header[:3] == ["排名", "企业名称", "统一社会信用代码"]
    assert [r[1] for r in rows] == [
        "常熟甲化工有限公司",
        "常熟丁化工有限公司",
        "常熟乙机械有限公司",
        "常熟戊化工有限公司",
    ]
    assert [r[0] for r in rows] == [1, 2, 3, 4]
    assert rows[0][2] == world.here.uscc
    assert rows[0][4] == world.park.name
    assert rows[0][5] == "重大风险（红）"


def test_top_risks_use_the_risk_profile_score_and_reasons(world, history, month):
    from django.apps import apps

    try:
        risk_model = apps.get_model("enterprises", "EnterpriseRisk")
    except LookupError:
        pytest.skip("the risk profile model has not landed yet")
    now = timezone.now()
    for ent, score, grade in ((world.here, 40.0, "yellow"), (world.here_no_park, 81.5, "red")):
        risk_model.objects.create(
            enterprise=ent,
            score=score,
            grade=grade,
            method="rules",
            assessed_at=now,
            factors=[
                {"key": "overdue", "label": "逾期隐患", "value": 2, "contribution": 12},
                {"key": "major", "label": "重大危险源", "value": 1, "contribution": 30},
                {"key": "credit", "label": "信用等级A", "value": "A", "contribution": -5},
            ],
        )
    report = build_monthly_report(world.regions["county"], month)
    _header, rows = table_rows(workbook(render(report, "xlsx"))["重点风险企业"])
    assert [r[1] for r in rows[:2]] == ["常熟乙机械有限公司", "常熟甲化工有限公司"]
    assert rows[0][6] == 81.5
    assert rows[0][7].startswith("重大危险源：1（+30）；逾期隐患：2（+12）")
    assert "信用等级A" not in rows[0][7]  # lowers the score: not a reason for it


def test_overdue_hazard_with_days_overdue_counted_to_the_month_end(world, history, month):
    report = build_monthly_report(world.regions["county"], month)
    header, rows = table_rows(workbook(render(report, "xlsx"))["逾期隐患"])
    assert header == [
        "企业名称",
        "隐患编号",
        "隐患描述",
        "隐患等级",
        "整改期限",
        "逾期天数",
        "挂牌督办",
        "整改责任人",
        "当前状态",
    ]
    assert len(rows) == 1  # not the one with a later deadline, not the closed ones, not the other county's
    row = rows[0]
    next_month = month_end(month) + timedelta(days=1)
    assert row[0] == "常熟甲化工有限公司"
    assert row[1] == history["overdue"].code
    assert row[2] == "液氯储罐安全阀未校验"
    assert row[3] == "重大隐患（一级）"
    assert row[4].date() == month + timedelta(days=5)
    assert row[5] == (next_month - (month + timedelta(days=5))).days
    assert row[6].startswith("是")
    assert row[7] == "王工"
    assert row[8] == "整改中"


def test_past_month_lists_hazards_rectified_after_it_closed(world, month):
    next_month = month_end(month) + timedelta(days=1)
    later = at(next_month, 9)
    due = month + timedelta(days=3)
    late = hazard(world.here, reported=month, due=due, status="closed", submitted_at=later, closed_at=later)
    waiting = hazard(world.here, reported=month, due=due, status="submitted", submitted_at=later, description="b")
    hazard(world.here, reported=month, due=due, status="closed", submitted_at=at(due), closed_at=at(due))
    hazard(world.here, reported=month, due=due, status="submitted", submitted_at=at(due))  # waits for us
    hazard(world.here, reported=month, due=due, status="dismissed")
    report = build_monthly_report(world.regions["county"], month)
    rows = report.table("overdue_hazards").rows
    assert [r[1] for r in rows] == [late.code, waiting.code]
    assert rows[0][5] == (next_month - due).days
    assert rows[0][8] == f"已销号（{next_month:%Y-%m-%d}）"
    assert rows[1][8] == "待验收"


def test_overdue_hazard_with_an_extension_is_not_listed(world, history, month):
    overdue = history["overdue"]
    overdue.due_date = month_end(month) + timedelta(days=10)  # extension approved
    overdue.save(update_fields=["due_date"])
    report = build_monthly_report(world.regions["county"], month)
    assert report.table("overdue_hazards").rows == []


def test_unacknowledged_alert_past_its_deadline_is_listed(world, history, month):
    acked = alert(
        world.here_no_park,
        raised=at(month + timedelta(days=3)),
        state="active_ack",
        acknowledged_at=at(month + timedelta(days=3)),
        responded_at=at(month + timedelta(days=3)),
        message="已确认已响应的报警",
    )
    assert acked.pk
    report = build_monthly_report(world.regions["county"], month)
    header, rows = table_rows(workbook(render(report, "xlsx"))["超时未处置报警"])
    assert [r[1] for r in rows] == ["罐区可燃气体高高报"]
    assert rows[0][0] == "常熟甲化工有限公司"
    assert rows[0][4] == "超时未确认"
    assert rows[0][7] == "报警未确认"


def test_past_month_lists_alerts_acknowledged_after_it_closed(world, month):
    next_month_start = at(month_end(month) + timedelta(days=1), 0)
    raised = at(month + timedelta(days=27))
    alert(
        world.here,
        raised=raised,
        level=4,  # no response required: only the acknowledgement counts
        state="normal",
        acknowledged_at=next_month_start + timedelta(hours=2),
        message="月末后才确认",
    )
    alert(world.here, raised=raised, level=4, state="normal", acknowledged_at=raised, message="及时确认")
    report = build_monthly_report(world.regions["county"], month)
    rows = report.table("overdue_alerts").rows
    assert [r[1] for r in rows] == ["月末后才确认"]
    assert rows[0][4] == "超时未确认"
    assert rows[0][6] == round((next_month_start - raised - timedelta(minutes=10)).total_seconds() / 3600, 1)
    assert rows[0][7] == "已恢复"


def test_children_rows_per_child_region(world, history, month):
    report = build_monthly_report(world.regions["city"], month)
    header, rows = table_rows(workbook(render(report, "xlsx"))["下级区划"])
    assert header[:2] == ["区划", "代码"]
    assert [r[1] for r in rows] == ["320581", "320582"]


def test_pdf_has_chinese_title_enterprise_and_page_numbers(world, history, month):
    report = build_monthly_report(world.regions["county"], month)
    content = render(report, "pdf")
    assert content.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(content))
    text = pdf_text(content)
    assert f"常熟市安全生产监管月度报告（{month.year}年{month.month}月）" in text
    assert "常熟甲化工有限公司" in text
    assert "液氯储罐安全阀未校验" in text
    assert f"第 1 页 / 共 {len(reader.pages)} 页" in text
    assert reader.pages[0].mediabox.width == pytest.approx(595.27, abs=1)  # A4 portrait first


def test_pdf_long_table_repeats_its_header_on_every_page(world, month):
    for i in range(120):
        hazard(world.here, reported=month, due=month + timedelta(days=1), description=f"隐患{i:03d}")
    report = build_monthly_report(world.regions["county"], month)
    reader = PdfReader(io.BytesIO(render(report, "pdf")))
    pages = [p.extract_text() for p in reader.pages]
    with_hazards = [t for t in pages if "隐患0" in t or "隐患1" in t]
    assert len(with_hazards) >= 2
    assert all("逾期天数" in t for t in with_hazards)


# --- the command ---------------------------------------------------------------------------------


def test_command_writes_both_files(world, history, month, tmp_path, capsys):
    call_command("monthly_report", "--month", f"{month:%Y-%m}", "--region", "320581", "--output", str(tmp_path))
    printed = capsys.readouterr().out.split()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"常熟市安全生产监管月报-{month:%Y-%m}.pdf", f"常熟市安全生产监管月报-{month:%Y-%m}.xlsx"]
    assert sorted(printed) == sorted(str(p.resolve()) for p in tmp_path.iterdir())
    wb = load_workbook(tmp_path / f"常熟市安全生产监管月报-{month:%Y-%m}.xlsx")
    assert wb.sheetnames == SHEETS
    # The system sees the whole region, but only that region.
    _header, rows = table_rows(wb["重点风险企业"])
    assert {r[1] for r in rows} == {"常熟甲化工有限公司", "常熟乙机械有限公司"}


def test_command_writes_one_format(world, month, tmp_path):
    call_command(
        "monthly_report",
        "--month",
        f"{month:%Y-%m}",
        "--region",
        "320581",
        "--format",
        "pdf",
        "--output",
        str(tmp_path),
    )
    assert [p.suffix for p in tmp_path.iterdir()] == [".pdf"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--month", "2026-13", "--region", "320581"], "无效的月份"),
        (["--month", "October", "--region", "320581"], "YYYY-MM"),
        (["--month", "2999-01", "--region", "320581"], "未来"),
        (["--month", "2020-01", "--region", "999999"], "unknown region"),
    ],
)
def test_command_refuses_bad_input(world, tmp_path, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("monthly_report", *args, "--output", str(tmp_path))
    assert list(tmp_path.iterdir()) == []


# --- the page ------------------------------------------------------------------------------------

URL = "/reports/monthly/"


def test_page_shows_the_form_with_last_month_and_the_jurisdiction(client, world, month):
    client.force_login(world.inspector)
    response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'value="{month:%Y-%m}"' in html
    assert 'value="320581"' in html and 'value="320581001"' in html
    assert 'value="320582"' not in html  # the other county is not offered
    assert "月度报告" in html  # the nav entry


def test_page_downloads_xlsx_with_a_chinese_file_name(client, world, history, month):
    client.force_login(world.inspector)
    response = client.get(URL, {"month": f"{month:%Y-%m}", "region": "320581", "format": "xlsx"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    name = f"常熟市安全生产监管月报-{month:%Y-%m}.xlsx"
    assert f"filename*=UTF-8''{quote(name)}" in response["Content-Disposition"]
    assert response["Content-Disposition"].startswith(
        f'attachment; filename="monthly-report-320581-{month:%Y-%m}.xlsx"'
    )
    wb = workbook(b"".join(response.streaming_content))
    assert wb.sheetnames == SHEETS
    assert AuditEntry.objects.filter(event="report.monthly.downloaded", user=world.inspector).exists()


def test_page_downloads_pdf(client, world, history, month):
    client.force_login(world.inspector)
    response = client.get(URL, {"month": f"{month:%Y-%m}", "region": "320581001", "format": "pdf"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    text = pdf_text(b"".join(response.streaming_content))
    assert "虞山街道安全生产监管月度报告" in text
    assert "常熟甲化工有限公司" in text
    assert "常熟乙机械有限公司" not in text  # registered at the county, not in the township


def test_page_refuses_a_region_of_another_county(client, world, history, month):
    client.force_login(world.inspector)
    response = client.get(URL, {"month": f"{month:%Y-%m}", "region": "320582", "format": "xlsx"})
    assert response.status_code == 404
    response = client.get(URL, {"month": f"{month:%Y-%m}", "region": "320500", "format": "pdf"})  # the city above
    assert response.status_code == 404


def test_page_shows_form_errors_for_a_bad_month(client, world):
    client.force_login(world.inspector)
    response = client.get(URL, {"month": "2999-01", "region": "320581", "format": "xlsx"})
    assert response.status_code == 400
    assert "不能生成未来月份的报告" in response.content.decode()
    response = client.get(URL, {"month": "2020-01", "region": "320581", "format": "docx"})
    assert response.status_code == 400
    assert "不支持的格式" in response.content.decode()


def test_enterprise_user_and_auditor_are_refused(client, world, month):
    for user in (world.enterprise_user, world.auditor):
        client.force_login(user)
        assert client.get(URL).status_code == 403
        assert client.get(URL, {"month": f"{month:%Y-%m}", "region": "320581", "format": "xlsx"}).status_code == 403


def test_anonymous_is_sent_to_login(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_park_manager_gets_a_report_limited_to_the_park(client, world, history, month):
    client.force_login(world.park_manager)
    html = client.get(URL).content.decode()
    assert 'value="320581"' in html and 'value="320581001"' not in html
    response = client.get(URL, {"month": f"{month:%Y-%m}", "region": "320581", "format": "xlsx"})
    assert response.status_code == 200
    wb = workbook(b"".join(response.streaming_content))
    assert sheet_rows(wb.worksheets[0])[0][0].startswith(world.park.name)
    _header, rows = table_rows(wb["重点风险企业"])
    assert [r[1] for r in rows] == ["常熟甲化工有限公司"]


def test_city_admin_sees_both_counties(client, world, history, month):
    client.force_login(world.city_admin)
    response = client.get(URL, {"month": f"{month:%Y-%m}", "region": "320500", "format": "xlsx"})
    assert response.status_code == 200
    _header, rows = table_rows(workbook(b"".join(response.streaming_content))["逾期隐患"])
    assert {r[0] for r in rows} == {"常熟甲化工有限公司", "张家港丙化工有限公司"}


def test_page_in_english(client, world, history, month):
    from django.conf import settings
    from django.utils import translation

    client.force_login(world.inspector)
    client.cookies["django_language"] = "en"
    try:
        response = client.get(URL, {"month": f"{month:%Y-%m}", "region": "320581", "format": "xlsx"})
        assert response.status_code == 200
        wb = workbook(b"".join(response.streaming_content))
        # Labels that come from the models' choices follow the user's language.
        _header, rows = table_rows(wb.worksheets[2])
        assert rows[0][5] == "Major risk (red)"
    finally:
        translation.activate(settings.LANGUAGE_CODE)


def test_query_count_does_not_grow_with_rows(world, history, month):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            report = build_monthly_report(world.regions["city"], month)
            render(report, "xlsx")
            render(report, "pdf")
        return len(ctx.captured_queries)

    before = queries()
    for i in range(15):
        ent = f.enterprise(world.regions["township"], name=f"常熟新增企业{i}", risk_grade="orange")
        hazard(ent, reported=month, due=month + timedelta(days=1))
        alert(ent, raised=at(month + timedelta(days=2)))
    assert queries() == before


def test_top_risks_after_real_grading_follow_the_profiles(world, history, month):
    from enterprises.models import EnterpriseRisk
    from enterprises.risk.grading import grade_enterprises

    grade_enterprises()
    profiles = {p.enterprise.name: p for p in EnterpriseRisk.objects.select_related("enterprise")}
    report = build_monthly_report(world.regions["county"], month)
    _header, rows = table_rows(workbook(render(report, "xlsx"))["重点风险企业"])
    assert {r[1] for r in rows} == {"常熟甲化工有限公司", "常熟乙机械有限公司"}
    assert [r[6] for r in rows] == sorted((round(profiles[r[1]].score, 1) for r in rows), reverse=True)
    top = profiles[rows[0][1]]
    assert rows[0][5] == str(RiskGrade(top.grade).label)
    assert rows[0][7] == top_reasons(top.factors)
    # 常熟甲 has an overdue major hazard and an unacknowledged alert: it has reasons to show.
    assert rows[[r[1] for r in rows].index("常熟甲化工有限公司")][7]


def test_page_starts_from_the_dashboards_region_and_month(client, world):
    client.force_login(world.inspector)
    html = client.get(URL, {"region": "320581001", "month": "2025-03"}).content.decode()
    assert 'value="2025-03"' in html
    assert '<option value="320581001" selected>' in html
    # Out of the jurisdiction or nonsense: ignored, the defaults stay.
    html = client.get(URL, {"region": "320582", "month": "2999-01"}).content.decode()
    assert 'value="2999-01"' not in html
    assert '<option value="320581" selected>' in html


def test_long_lists_are_cut_in_the_pdf_but_complete_in_the_xlsx(world, month, monkeypatch):
    from enterprises.reports import pdf

    monkeypatch.setattr(pdf, "PDF_MAX_ROWS", 30)
    Hazard.objects.bulk_create(
        Hazard(
            enterprise=world.here,
            description=f"批量隐患{i:03d}",
            source="inspection",
            status="rectifying",
            reported_at=at(month),
            found_at=at(month),
            due_date=month + timedelta(days=1),
        )
        for i in range(40)
    )
    report = build_monthly_report(world.regions["county"], month)
    text = pdf_text(render(report, "pdf"))
    assert "PDF 仅列出前 30 条，完整清单见 Excel 版。" in text.replace("\n", "")
    assert "批量隐患029" in text and "批量隐患030" not in text
    _header, rows = table_rows(workbook(render(report, "xlsx"))["逾期隐患"])
    assert len(rows) == 40


def test_very_long_descriptions_do_not_break_the_pdf(world, month):
    hazard(world.here, reported=month, due=month + timedelta(days=1), description="长" * 20000)
    report = build_monthly_report(world.regions["county"], month)
    assert render(report, "pdf").startswith(b"%PDF")
    _header, rows = table_rows(workbook(render(report, "xlsx"))["逾期隐患"])
    assert rows[0][2] == "长" * 20000
