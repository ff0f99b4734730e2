"""Reading the dashboard's request parameters: the region within the user's jurisdiction and the period
(month, quarter, year or custom dates). Shared by the page and the API."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from enterprises.indicators import add_months, can_view_dashboard, default_region, region_allowed

PERIOD_KINDS = ("month", "quarter", "year", "custom")
MAX_PERIOD_DAYS = 366 * 3


class BadPeriod(ValueError):
    pass


@dataclass
class Period:
    kind: str
    start: date
    end: date
    month: str = ""
    quarter: str = ""
    year: str = ""

    def query(self) -> dict:
        """The GET parameters that select this period again (for drill-down links)."""
        if self.kind == "month":
            return {"period": "month", "month": self.month}
        if self.kind == "quarter":
            return {"period": "quarter", "quarter": self.quarter}
        if self.kind == "year":
            return {"period": "year", "year": self.year}
        return {"period": "custom", "start": self.start.isoformat(), "end": self.end.isoformat()}


def _parse_date(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise BadPeriod(_("%(name)s 不是有效日期（YYYY-MM-DD）：%(value)s") % {"name": name, "value": value}) from exc


def parse_period(params, today: date | None = None) -> Period:
    """``period`` = month (``month=YYYY-MM``), quarter (``quarter=YYYY-Qn``), year (``year=YYYY``) or custom
    (``start``/``end`` dates, both inclusive). ``start``/``end`` alone mean custom. Default: this month."""
    today = today or timezone.localdate()
    kind = params.get("period") or ("custom" if params.get("start") or params.get("end") else "month")
    if kind not in PERIOD_KINDS:
        raise BadPeriod(_("未知的统计周期：%(kind)s") % {"kind": kind})
    if kind == "month":
        text = params.get("month") or f"{today:%Y-%m}"
        m = re.fullmatch(r"(\d{4})-(\d{2})", text)
        if not m or not 1 <= int(m[2]) <= 12:
            raise BadPeriod(_("月份格式应为 YYYY-MM：%(value)s") % {"value": text})
        start = date(int(m[1]), int(m[2]), 1)
        return Period("month", start, add_months(start, 1) - timedelta(days=1), month=text)
    if kind == "quarter":
        text = params.get("quarter") or f"{today.year}-Q{(today.month - 1) // 3 + 1}"
        m = re.fullmatch(r"(\d{4})-Q([1-4])", text.upper())
        if not m:
            raise BadPeriod(_("季度格式应为 YYYY-Qn：%(value)s") % {"value": text})
        start = date(int(m[1]), (int(m[2]) - 1) * 3 + 1, 1)
        return Period("quarter", start, add_months(start, 3) - timedelta(days=1), quarter=text.upper())
    if kind == "year":
        text = params.get("year") or str(today.year)
        if not re.fullmatch(r"\d{4}", text) or int(text) < 1900:
            raise BadPeriod(_("年份格式应为 YYYY：%(value)s") % {"value": text})
        return Period("year", date(int(text), 1, 1), date(int(text), 12, 31), year=text)
    if not params.get("start") or not params.get("end"):
        raise BadPeriod(_("自定义周期需要开始日期和结束日期"))
    start = _parse_date(params.get("start"), "start")
    end = _parse_date(params.get("end"), "end")
    if end < start:
        raise BadPeriod(_("结束日期不能早于开始日期"))
    if (end - start).days > MAX_PERIOD_DAYS:
        raise BadPeriod(_("统计周期不能超过三年"))
    return Period("custom", start, end)


def resolve_region(user, code: str | None):
    """The region asked for (default: the user's jurisdiction root). Http404 if no such region,
    PermissionDenied if the user may not see dashboards or the region is outside their jurisdiction."""
    from regulator.models import Region

    if not can_view_dashboard(user):
        raise PermissionDenied
    if not code:
        region = default_region(user)
        if region is None:
            raise Http404(_("没有可查看的辖区"))
        return region
    region = Region.objects.filter(code=code).first()
    if region is None:
        raise Http404(_("行政区划不存在"))
    if not region_allowed(user, region):
        raise PermissionDenied(_("该区划不在您的辖区内"))
    return region


def breadcrumbs(user, region) -> list:
    """Ancestors of ``region`` the user may open, root first, ending with ``region``."""
    return [r for r in region.ancestors() if region_allowed(user, r)]


def region_choices(user, region, limit: int = 400) -> list:
    """Regions for the picker: the user's whole jurisdiction when small, else the path to ``region``
    and its children."""
    from regulator.models import Region

    root = default_region(user)
    if user.is_park_manager and not user.is_superuser:
        return [root]
    subtree = Region.objects.filter(path__startswith=root.path).order_by("path")
    if subtree.count() <= limit:
        return list(subtree)
    return [*breadcrumbs(user, region), *Region.objects.filter(parent=region).order_by("code")]
