"""Export the (filtered, scoped) enterprise list to CSV or XLSX, safe to open in a spreadsheet.

Every cell goes through ``regulator.exports`` (formulas neutralised) and personal fields through
``regulator.security.masking.mask_value`` (the page's rule: 138****0001). Rows stream so 100,000
rows fit in memory.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

from enterprises.columns import COLUMNS
from enterprises.models import Enterprise
from regulator import exports
from regulator.security.masking import mask_field

neutralise = exports.neutralise  # kept for callers of the old name


def headers() -> list[str]:
    return [zh for _key, zh, _en, _others in COLUMNS]


def row_for(e: Enterprise) -> list:
    values = {
        "uscc": e.uscc,
        "name": e.name,
        "former_names": "；".join(e.former_names or []),
        "legal_representative": e.legal_representative,
        "principal_name": e.principal_name,
        "principal_phone": mask_field(e, "principal_phone"),
        "safety_officer_name": e.safety_officer_name,
        "safety_officer_phone": mask_field(e, "safety_officer_phone"),
        "safety_manager_name": e.safety_manager_name,
        "safety_manager_phone": mask_field(e, "safety_manager_phone"),
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
    return [values[key] for key, *_rest in COLUMNS]


def _rows(queryset) -> Iterator[list]:
    qs = queryset.select_related("region", "park", "industry").order_by("id")
    for enterprise in qs.iterator(chunk_size=2000):
        yield row_for(enterprise)


def csv_stream(queryset) -> Iterable[str]:
    return exports.csv_stream(headers(), _rows(queryset))


def xlsx_bytes(queryset, title: str = "企业名录") -> bytes:
    wb = exports.workbook(write_only=True)
    ws = wb.create_sheet(title=title[:31])
    exports.append_row(ws, headers())
    for row in _rows(queryset):
        exports.append_row(ws, row)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
