"""Archived monthly reports: on the 1st of each month the beat task writes last month's report of
every county (as the system, in the default language) under MEDIA_ROOT/reports/monthly/, so the
report as it stood when the month closed can be downloaded later, whatever changed since.

Layout: ``<MEDIA_ROOT>/reports/monthly/<region code>/<YYYY-MM>.<xlsx|pdf>``. Files are never
served by a public URL: the page checks the region against the user's jurisdiction first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from django.conf import settings
from django.utils import translation

from enterprises.reports.data import build_monthly_report, last_month
from enterprises.reports.files import FORMATS, render
from regulator.choices import RegionLevel
from regulator.models import Region

log = logging.getLogger(__name__)


def archive_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "reports" / "monthly"


def archived_path(region_code: str, month: date, fmt: str) -> Path:
    if fmt not in FORMATS or not region_code.isdigit():
        raise ValueError("bad archive key")
    return archive_root() / region_code / f"{month:%Y-%m}.{fmt}"


@dataclass
class ArchivedReport:
    region: Region
    month: date
    formats: list[str]


def archive_monthly_reports(month: date | None = None, *, level: int = RegionLevel.COUNTY, regions=None) -> list[Path]:
    """Write ``month``'s (default: last month's) report of every region of ``level`` (or of ``regions``);
    returns the files. One region failing does not stop the others (it is logged); a rerun overwrites
    the month's files."""
    month = month or last_month()
    regions = Region.objects.filter(level=level).order_by("code") if regions is None else regions
    written: list[Path] = []
    with translation.override(settings.LANGUAGE_CODE):
        for region in regions:
            try:
                written += archive_report(region, month)
            except Exception:
                log.exception("monthly report of %s for %s failed", region.code, f"{month:%Y-%m}")
    return written


def archive_report(region: Region, month: date) -> list[Path]:
    report = build_monthly_report(region, month, user=None)
    written = []
    for fmt in FORMATS:
        path = archived_path(region.code, month, fmt)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(render(report, fmt))
        tmp.replace(path)  # readers never see half a file
        written.append(path)
    return written


def archived_reports(regions, limit: int = 24) -> list[ArchivedReport]:
    """The archived reports of ``regions`` (a queryset the user may see), newest month first."""
    root = archive_root()
    if not root.is_dir():
        return []
    by_code = {r.code: r for r in regions}
    found: dict[tuple[str, date], list[str]] = {}
    for directory in root.iterdir():
        region = by_code.get(directory.name)
        if region is None or not directory.is_dir():
            continue
        for file in directory.iterdir():
            stem, _dot, fmt = file.name.partition(".")
            if fmt not in FORMATS:
                continue
            try:
                year, mon = (int(x) for x in stem.split("-"))
                key = (region.code, date(year, mon, 1))
            except ValueError:
                continue
            found.setdefault(key, []).append(fmt)
    items = [
        ArchivedReport(region=by_code[code], month=month, formats=sorted(fmts, key=FORMATS.index))
        for (code, month), fmts in found.items()
    ]
    items.sort(key=lambda a: (a.month, a.region.path), reverse=True)
    return items[:limit]
