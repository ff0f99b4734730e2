"""The monthly report page: pick a month and a region of your jurisdiction, download XLSX or PDF."""

from __future__ import annotations

from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import render
from django.utils.translation import gettext as _

from enterprises.reports.archive import archived_path, archived_reports
from enterprises.reports.data import ReportInputError, build_monthly_report, parse_month
from enterprises.reports.files import CONTENT_TYPES, ascii_filename, filename
from enterprises.reports.files import render as render_file
from enterprises.reports.forms import MonthlyReportForm, may_make_reports, report_regions
from regulator.audit import record_event
from regulator.uploads import harden_download


def content_disposition(name: str, fallback: str) -> str:
    """attachment with an ASCII fallback and the real (Chinese) name per RFC 5987 / RFC 6266."""
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@login_required
def monthly_report(request):
    user = request.user
    if not may_make_reports(user):
        raise PermissionDenied(_("只有监管部门和园区管理人员可以生成监管月报"))
    regions = report_regions(user)
    fmt = request.GET.get("format")
    if fmt is None:
        # Links from the dashboard carry its region and month: start from them when they make sense.
        initial = {}
        if regions.filter(code=request.GET.get("region", "")).exists():
            initial["region"] = request.GET["region"]
        try:
            initial["month"] = f"{parse_month(request.GET.get('month', '')):%Y-%m}"
        except ReportInputError:
            pass
        form = MonthlyReportForm(regions=regions, initial=initial)
        return render(request, "enterprises/monthly_report.html", _context(form, user, regions))

    code = (request.GET.get("region") or "").strip()
    if code and not regions.filter(code=code).exists():
        # Outside the jurisdiction or no such region: the same answer, as everywhere else.
        raise Http404(_("没有该区划或不在您的辖区内"))
    form = MonthlyReportForm(request.GET, regions=regions)
    if fmt not in CONTENT_TYPES:
        form.add_error(None, _("不支持的格式：%(fmt)s") % {"fmt": fmt})
    if not form.is_valid():
        return render(request, "enterprises/monthly_report.html", _context(form, user, regions), status=400)

    region, month = form.cleaned_data["region"], form.cleaned_data["month"]
    report = build_monthly_report(region, month, user=user)
    content = render_file(report, fmt)
    record_event(
        event="report.monthly.downloaded",
        user=user,
        obj=region,
        detail={"month": f"{month:%Y-%m}", "format": fmt, "park": report.park.code if report.park else ""},
    )
    response = FileResponse(iter([content]), content_type=CONTENT_TYPES[fmt])
    response["Content-Length"] = str(len(content))
    response["Content-Disposition"] = content_disposition(filename(report, fmt), ascii_filename(report, fmt))
    return harden_download(response)


def _context(form, user, regions) -> dict:
    # Archived reports cover whole regions: not for park managers, whose reports stop at the park.
    archived = [] if user.is_park_manager and not user.is_superuser else archived_reports(regions)
    return {"form": form, "archived": archived}


@login_required
def archived_report(request, code: str, month: str, fmt: str):
    """A report archived by the monthly beat task (the month as it stood when it closed)."""
    user = request.user
    if not may_make_reports(user):
        raise PermissionDenied(_("只有监管部门和园区管理人员可以生成监管月报"))
    if user.is_park_manager and not user.is_superuser:
        raise Http404
    region = report_regions(user).filter(code=code).first()
    try:
        first = parse_month(month)
    except ReportInputError as exc:
        raise Http404 from exc
    path = archived_path(code, first, fmt) if region is not None else None
    if path is None or not path.is_file():
        raise Http404(_("没有该归档报告"))
    record_event(
        event="report.monthly.downloaded",
        user=user,
        obj=region,
        detail={"month": month, "format": fmt, "archived": True},
    )
    name = _("%(place)s安全生产监管月报") % {"place": region.name} + f"-{month}.{fmt}"
    response = FileResponse(path.open("rb"), content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = content_disposition(name, f"monthly-report-{code}-{month}.{fmt}")
    return harden_download(response)
