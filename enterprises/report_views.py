"""The monthly report page: pick a month and a region of your jurisdiction, download XLSX or PDF."""

from __future__ import annotations

from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import render
from django.utils.translation import gettext as _

from enterprises.reports.data import build_monthly_report
from enterprises.reports.files import CONTENT_TYPES, ascii_filename, filename
from enterprises.reports.files import render as render_file
from enterprises.reports.forms import MonthlyReportForm, may_make_reports, report_regions
from regulator.audit import record_event


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
        form = MonthlyReportForm(regions=regions)
        return render(request, "enterprises/monthly_report.html", {"form": form})

    code = (request.GET.get("region") or "").strip()
    if code and not regions.filter(code=code).exists():
        # Outside the jurisdiction or no such region: the same answer, as everywhere else.
        raise Http404(_("没有该区划或不在您的辖区内"))
    form = MonthlyReportForm(request.GET, regions=regions)
    if fmt not in CONTENT_TYPES:
        form.add_error(None, _("不支持的格式：%(fmt)s") % {"fmt": fmt})
    if not form.is_valid():
        return render(request, "enterprises/monthly_report.html", {"form": form}, status=400)

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
    response["Cache-Control"] = "no-store"
    return response
