"""Turning a built report into files: the formats, their content types and file names."""

from __future__ import annotations

from pathlib import Path

from django.utils.translation import gettext as _

from enterprises.reports.data import MonthlyReport

CONTENT_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}
FORMATS = tuple(CONTENT_TYPES)


def render(report: MonthlyReport, fmt: str) -> bytes:
    if fmt == "xlsx":
        from enterprises.reports.xlsx import write_xlsx

        return write_xlsx(report)
    if fmt == "pdf":
        from enterprises.reports.pdf import write_pdf

        return write_pdf(report)
    raise ValueError(f"unknown report format {fmt!r}")


def filename(report: MonthlyReport, fmt: str) -> str:
    """常熟市安全生产监管月报-2026-10.xlsx (the place's name, in the user's language)."""
    name = _("%(place)s安全生产监管月报") % {"place": report.place}
    return f"{name}-{report.month:%Y-%m}.{fmt}".replace("/", "_").replace("\\", "_")


def ascii_filename(report: MonthlyReport, fmt: str) -> str:
    """The fallback name for clients without RFC 5987 support."""
    park = f"-park{report.park.pk}" if report.park else ""
    return f"monthly-report-{report.region.code}{park}-{report.month:%Y-%m}.{fmt}"


def write_files(report: MonthlyReport, formats, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = directory / filename(report, fmt)
        path.write_bytes(render(report, fmt))
        written.append(path)
    return written
