"""The monthly beat task archives every county's report; the page lists and serves them, scoped."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from openpyxl import load_workbook

from enterprises.reports.archive import archive_monthly_reports, archived_path
from enterprises.reports.data import last_month
from enterprises.reports.tasks import archive_monthly_reports as archive_task
from tests.enterprises.test_monthly_report import history  # noqa: F401 - fixture


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def month():
    return last_month()


def test_task_archives_last_months_report_of_every_county(world, history, month):  # noqa: F811
    result = archive_task.delay().get()
    assert result == {"files": 4}
    for code in ("320581", "320582"):
        for fmt in ("xlsx", "pdf"):
            assert archived_path(code, month, fmt).is_file()
    wb = load_workbook(archived_path("320582", month, "xlsx"))
    names = [row[1] for row in wb["重点风险企业"].iter_rows(values_only=True) if row[0] == 1]
    assert names == ["张家港丙化工有限公司"]
    # Township and city levels are not archived.
    assert not archived_path("320581001", month, "pdf").exists()


def test_page_lists_and_serves_archived_reports_of_the_jurisdiction_only(client, world, history, month):  # noqa: F811
    archive_monthly_reports(month)
    client.force_login(world.inspector)
    html = client.get("/reports/monthly/").content.decode()
    mine = f"/reports/monthly/archive/320581/{month:%Y-%m}.xlsx"
    theirs = f"/reports/monthly/archive/320582/{month:%Y-%m}.xlsx"
    assert mine in html and theirs not in html
    response = client.get(mine)
    assert response.status_code == 200
    assert "filename*=UTF-8''" in response["Content-Disposition"]
    wb = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    assert wb.sheetnames[0] == "主要指标"
    assert client.get(theirs).status_code == 404
    assert client.get("/reports/monthly/archive/320581/1999-01.pdf").status_code == 404


def test_park_manager_and_enterprise_user_get_no_archived_county_reports(client, world, history, month):  # noqa: F811
    archive_monthly_reports(month)
    url = f"/reports/monthly/archive/320581/{month:%Y-%m}.pdf"
    client.force_login(world.park_manager)
    assert url not in client.get("/reports/monthly/").content.decode()
    assert client.get(url).status_code == 404
    client.force_login(world.enterprise_user)
    assert client.get(url).status_code == 403


def test_command_can_store_a_report_in_the_archive(world, history, month, capsys):  # noqa: F811
    call_command("monthly_report", "--month", f"{month:%Y-%m}", "--region", "320581001", "--archive")
    printed = capsys.readouterr().out.split()
    assert printed == [str(archived_path("320581001", month, fmt).resolve()) for fmt in ("xlsx", "pdf")]
    assert archived_path("320581001", month, "pdf").read_bytes().startswith(b"%PDF")


def test_one_failing_county_does_not_stop_the_others(world, history, month, monkeypatch):  # noqa: F811
    from enterprises.reports import archive

    real = archive.build_monthly_report

    def broken_for_changshu(region, month, **kwargs):
        if region.code == "320581":
            raise RuntimeError("boom")
        return real(region, month, **kwargs)

    monkeypatch.setattr(archive, "build_monthly_report", broken_for_changshu)
    written = archive_monthly_reports(month)
    assert [p.parent.name for p in written] == ["320582", "320582"]
