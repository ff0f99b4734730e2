"""Export the (filtered, scoped) enterprise list to CSV or XLSX, safe to open in a spreadsheet.

Cells that a spreadsheet would run as a formula (leading = + - @, tab or CR) are prefixed with an
apostrophe; phone numbers are masked (138****0001). Rows stream so 100,000 rows fit in memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from enterprises.columns import COLUMNS
from enterprises.models import Enterprise, mask_phone

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """Make a cell inert for Excel/WPS/LibreOffice: strings only (numbers stay numbers)."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def headers() -> list[str]:
    return [zh for _key, zh, _en, _others in COLUMNS]


def row_for(e: Enterprise) -> list:
    values = {
        "uscc": e.uscc,
        "name": e.name,
        "former_names": "；".join(e.former_names or []),
        "legal_representative": e.legal_representative,
        "principal_name": e.principal_name,
        "principal_phone": mask_phone(e.principal_phone),
        "safety_officer_name": e.safety_officer_name,
        "safety_officer_phone": mask_phone(e.safety_officer_phone),
        "safety_manager_name": e.safety_manager_name,
        "safety_manager_phone": mask_phone(e.safety_manager_phone),
        "address": e.address,
        "region_code": e.region.code,
        "region_name": e.region.name,
        "park_code": e.park.code if e.park_id else "",
        "park_name": e.park.name if e.park_id else "",
        "industry_code": e.industry.code,
        "industry_name": e.industry.name,
        "high_risk_sector": str(e.get_high_risk_sector_display()) if e.high_risk_sector else "",
        "scale": str(e.get_scale_display()),
        "employees": e.employees,
        "standardisation_level": str(e.get_standardisation_level_display()) if e.standardisation_level else "",
        "is_key": "是" if e.is_key else "否",
        "operating_status": str(e.get_operating_status_display()),
        "risk_grade": str(e.get_risk_grade_display()) if e.risk_grade else "",
        "longitude": float(e.longitude) if e.longitude is not None else "",
        "latitude": float(e.latitude) if e.latitude is not None else "",
    }
    return [neutralise(values[key]) for key, *_rest in COLUMNS]


def _rows(queryset) -> Iterator[list]:
    qs = queryset.select_related("region", "park", "industry").order_by("id")
    for enterprise in qs.iterator(chunk_size=2000):
        yield row_for(enterprise)


class _Echo:
    def write(self, value):
        return value


def csv_stream(queryset) -> Iterable[str]:
    """UTF-8 with BOM so Excel opens Chinese text correctly."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(headers())
    for row in _rows(queryset):
        yield writer.writerow(row)


def xlsx_bytes(queryset, title: str = "企业名录") -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=title[:31])
    ws.append(headers())
    for row in _rows(queryset):
        cells = []
        for value in row:
            cell = WriteOnlyCell(ws, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # never let openpyxl treat a string as a formula
            cells.append(cell)
        ws.append(cells)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
