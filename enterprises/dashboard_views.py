"""The regulator dashboard (监管驾驶舱): the page and its JSON API; the numbers come from
``enterprises.indicators.compute``."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from enterprises.dashboard import BadPeriod, breadcrumbs, parse_period, region_choices, resolve_region
from enterprises.indicators import GROUP_LABELS, compute, groups


def _url_or_empty(name: str) -> str:
    try:
        return reverse(name)
    except NoReverseMatch:
        return ""


def _local_time(iso: str | None) -> str:
    if not iso:
        return ""
    return f"{timezone.localtime(datetime.fromisoformat(iso)):%Y-%m-%d %H:%M}"


def _region_options(regions) -> list[dict]:
    top = min((r.level for r in regions), default=1)
    return [{"code": r.code, "label": "\u3000" * (r.level - top) + f"{r.name}（{r.code}）"} for r in regions]


@login_required
def dashboard(request):
    region = resolve_region(request.user, request.GET.get("region"))
    error = ""
    try:
        period = parse_period(request.GET)
    except BadPeriod as exc:
        error = str(exc)
        period = parse_period({})
    data = compute(region, period.start, period.end, user=request.user)
    period_query = period.query()
    by_group = {}
    for row in data["indicators"]:
        by_group.setdefault(row["group"], []).append(row)
    sections = [
        {"key": g.key, "label": GROUP_LABELS.get(g.key, g.label), "indicators": by_group.get(g.key, [])}
        for g in groups()
    ]
    columns = [
        key
        for key in (
            "enterprises_total",
            "enterprises_connected",
            "device_online_rate",
            "hazards_found",
            "rectification_rate",
            "on_time_rate",
            "listed_major_hazards",
            "inspection_completion_rate",
            "alerts_total",
            "false_alarm_rate",
        )
        if key in data["labels"]
    ]
    helps = {row["key"]: row["help"] for row in data["indicators"]}
    units = {row["key"]: row["unit"] for row in data["indicators"]}
    rows = []
    for child in data["children"]:
        if child["kind"] == "region":
            link = "?" + urlencode({"region": child["region"]["code"], **period_query})
            name = child["region"]["name"]
            if child["region"]["code"] == region.code:
                link = ""
        else:
            link = reverse("enterprises:detail", args=[child["enterprise"]["id"]])
            name = child["enterprise"]["name"]
        cells = []
        for key in columns:
            value = child["indicators"].get(key)
            text = "—" if value is None else (f"{value}{units[key]}" if units[key] == "%" else f"{value}")
            cells.append({"label": data["labels"][key], "value": text})
        rows.append({"name": name, "link": link, "cells": cells})
    report_url = _url_or_empty("reports:monthly")
    if report_url:
        report_url += "?" + urlencode({"region": region.code, "month": f"{period.start:%Y-%m}"})
    riskmap_url = _url_or_empty("riskmap:index")
    if riskmap_url:
        riskmap_url += "?" + urlencode({"region": region.code})
    return render(
        request,
        "enterprises/dashboard.html",
        {
            "data": data,
            "region": region,
            "period": period,
            "period_error": error,
            "sections": sections,
            "columns": [{"key": k, "label": data["labels"][k], "help": helps[k]} for k in columns],
            "rows": rows,
            "breadcrumbs": breadcrumbs(request.user, region),
            "regions": _region_options(region_choices(request.user, region)),
            "period_qs": urlencode(period_query),
            "snapshot_at": _local_time(data["period"]["snapshot_at"]),
            "report_url": report_url,
            "riskmap_url": riskmap_url,
            "chart_data": {
                "trend": data["trend"],
                "labels": data["labels"],
                "distributions": data["distributions"],
            },
            "api_url": reverse("dashboard-api") + "?" + urlencode({"region": region.code, **period_query}),
        },
    )


class DashboardAPIView(APIView):
    """The dashboard's numbers for a region of your jurisdiction and a period (see
    ``enterprises.indicators.compute`` for the shape and each indicator's ``help`` for its definition)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("region", OpenApiTypes.STR, description="行政区划代码，默认为本人辖区"),
            OpenApiParameter("start", OpenApiTypes.DATE, description="开始日期（含）"),
            OpenApiParameter("end", OpenApiTypes.DATE, description="结束日期（含）"),
            OpenApiParameter("period", OpenApiTypes.STR, enum=["month", "quarter", "year", "custom"]),
            OpenApiParameter("month", OpenApiTypes.STR, description="YYYY-MM"),
            OpenApiParameter("quarter", OpenApiTypes.STR, description="YYYY-Qn"),
            OpenApiParameter("year", OpenApiTypes.STR, description="YYYY"),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        try:
            region = resolve_region(request.user, request.query_params.get("region"))
        except Http404 as exc:
            raise NotFound(str(exc) or None) from exc
        except PermissionDenied as exc:
            raise ApiPermissionDenied(str(exc) or None) from exc
        try:
            period = parse_period(request.query_params)
        except BadPeriod as exc:
            return Response({"detail": str(exc), "code": "bad_period"}, status=status.HTTP_400_BAD_REQUEST)
        return Response(compute(region, period.start, period.end, user=request.user))
