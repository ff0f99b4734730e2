"""The one door for every CSV and XLSX cell the platform writes: formulas neutralised, numbers kept.

A spreadsheet runs a text cell that starts with ``= + - @``, TAB or CR as a formula (OWASP "CSV
injection"): such a text gets a leading apostrophe, even ``-12`` (a cell that should be a number
is written as a number: numbers, dates and booleans pass unchanged and stay typed). Writers:

- ``csv_stream(header, rows)``: UTF-8 with BOM (Excel opens Chinese text correctly), line by line;
- ``csv_writer(stream)``: a ``csv.writer`` whose every row is neutralised;
- ``workbook(write_only=...)``, ``append_row(ws, values)`` and ``set_cell(ws, row, col, value)``
  for openpyxl sheets (text cells are forced to the string type, never a formula).

A test greps the code base for any other ``csv.writer``/``Workbook``/``to_excel``/``to_csv``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
XLSX_MAX_CELL_CHARS = 32767


def neutralise(value):
    """The value made inert for Excel/WPS/LibreOffice: only text that could run is changed."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def neutralise_row(values: Iterable) -> list:
    return [neutralise(v) for v in values]


class _Echo:
    def write(self, value):
        return value


class _NeutralWriter:
    """``csv.writer`` with the same interface, every cell neutralised."""

    def __init__(self, stream, **kwargs):
        self._writer = csv.writer(stream, **kwargs)

    def writerow(self, row):
        return self._writer.writerow(neutralise_row(row))

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def csv_writer(stream=None, **kwargs) -> _NeutralWriter:
    """A neutralising CSV writer; without a stream, ``writerow`` returns the line (for streaming)."""
    return _NeutralWriter(stream if stream is not None else _Echo(), **kwargs)


def csv_stream(header: Iterable, rows: Iterable[Iterable]) -> Iterator[str]:
    """Lines of a CSV file (BOM first), for a ``StreamingHttpResponse``."""
    writer = csv_writer()
    yield "\ufeff" + writer.writerow(header)
    for row in rows:
        yield writer.writerow(row)


# --- XLSX ----------------------------------------------------------------------------------------


def workbook(*, write_only: bool = False):
    from openpyxl import Workbook

    return Workbook(write_only=write_only)


def _xlsx_value(value):
    if isinstance(value, str) and len(value) > XLSX_MAX_CELL_CHARS:
        value = value[: XLSX_MAX_CELL_CHARS - 1] + "…"  # Excel refuses longer cells
    return neutralise(value)


def append_row(ws, values: Iterable) -> None:
    """Append one row to a (write-only or normal) sheet."""
    from openpyxl.cell import WriteOnlyCell

    cells = []
    for value in values:
        value = _xlsx_value(value)
        cell = WriteOnlyCell(ws, value=value)
        if isinstance(value, str):
            cell.data_type = "s"  # never let openpyxl take a string for a formula
        cells.append(cell)
    ws.append(cells)


def set_cell(ws, row: int, column: int, value):
    """Write one cell of a normal sheet; returns the cell for styling."""
    value = _xlsx_value(value)
    cell = ws.cell(row=row, column=column)
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"
    return cell
