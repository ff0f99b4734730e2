"""The monthly report as an XLSX workbook: one sheet per part, frozen headers, real numbers and dates."""

from __future__ import annotations

import io
import re
import unicodedata
from datetime import date, datetime

from django.utils import timezone
from django.utils.translation import gettext as _

from enterprises.reports.data import Column, MonthlyReport, Table, cell_kind, cell_value
from regulator import exports

NUMBER_FORMATS = {
    "int": "#,##0",
    "float": "#,##0.0",
    "percent": "0.0%",
    "date": "yyyy-mm-dd",
    "datetime": "yyyy-mm-dd hh:mm",
}
# Characters Excel refuses in sheet names.
SHEET_NAME_BAD = re.compile(r"[\[\]:*?/\\]")


def display_width(text: str) -> int:
    """Columns a text takes in a spreadsheet: CJK characters count double."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _excel_value(value):
    if isinstance(value, datetime):
        # openpyxl writes naive datetimes only: local wall-clock time, as the reader expects.
        return timezone.localtime(value).replace(tzinfo=None) if timezone.is_aware(value) else value
    return value


def _text_of(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return "0000-00-00 00:00"
    if isinstance(value, date):
        return "0000-00-00"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def sheet_name(title: str, used: set[str]) -> str:
    name = SHEET_NAME_BAD.sub("_", title)[:31] or "Sheet"
    base, n = name, 2
    while name in used:
        suffix = f"({n})"
        name = base[: 31 - len(suffix)] + suffix
        n += 1
    used.add(name)
    return name


def write_xlsx(report: MonthlyReport) -> bytes:
    wb = exports.workbook()
    used: set[str] = set()
    first = True
    for table in report.tables:
        ws = wb.active if first else wb.create_sheet()
        ws.title = sheet_name(table.title, used)
        meta = (
            report.meta_rows()
            if first
            else [(_("辖区"), report.jurisdiction_label), (_("报告月份"), report.month_label)]
        )
        heading = report.title if first else f"{report.title} · {table.title}"
        _write_table(ws, table, heading, meta)
        first = False
    wb.properties.title = report.title
    wb.properties.creator = _("安全生产信息化监管平台")
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def _write_table(ws, table: Table, heading: str, meta: list[tuple[str, str]]) -> None:
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    ncols = max(len(table.columns), 2)
    row = 1
    exports.set_cell(ws, row, 1, heading).font = Font(bold=True, size=14)
    ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=ncols)
    for label, value in meta:
        row += 1
        exports.set_cell(ws, row, 1, label).font = Font(bold=True)
        exports.set_cell(ws, row, 2, value)
    if table.note:
        row += 1
        exports.set_cell(ws, row, 1, table.note).font = Font(italic=True, color="555555")
    header_row = row + 2  # one blank row before the table
    thin = Side(style="thin", color="999999")
    fill = PatternFill("solid", fgColor="DDE6F0")
    for col, column in enumerate(table.columns, start=1):
        cell = exports.set_cell(ws, header_row, col, column.label)
        cell.font = Font(bold=True)
        cell.fill = fill
        cell.border = Border(bottom=thin)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    ws.freeze_panes = ws.cell(row=header_row + 1, column=1)

    widths = [display_width(c.label) + 2 for c in table.columns]
    wrap = Alignment(wrap_text=True, vertical="top")
    row = header_row
    for values in table.rows:
        row += 1
        for i, (cell, column) in enumerate(zip(values, table.columns, strict=False)):
            kind = cell_kind(cell, column)
            target = exports.set_cell(ws, row, i + 1, _excel_value(cell_value(cell)))
            if kind in NUMBER_FORMATS:
                target.number_format = NUMBER_FORMATS[kind]
            if kind == "text" and column.width >= 30:
                target.alignment = wrap
            widths[i] = max(widths[i], display_width(_text_of(cell_value(cell))) + 2)
    if table.rows:
        ws.auto_filter.ref = f"A{header_row}:{get_column_letter(len(table.columns))}{row}"
    elif table.empty_text:
        exports.set_cell(ws, row + 1, 1, table.empty_text)
    for i, column in enumerate(table.columns):
        ws.column_dimensions[get_column_letter(i + 1)].width = _width(column, widths[i])


def _width(column: Column, measured: int) -> float:
    """Fit the content, but long free text wraps at the column's designed width."""
    if column.kind == "text" and column.width >= 30:
        return column.width
    return max(min(measured, 60), column.width * 0.6, 8)
