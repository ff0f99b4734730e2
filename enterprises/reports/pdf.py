"""The monthly report as a PDF: A4, CJK text in the built-in CID font STSong-Light, tables that break
across pages with their header repeated, "page x of y" in the footer. Wide tables get landscape pages."""

from __future__ import annotations

import io
from datetime import date, datetime
from functools import lru_cache
from xml.sax.saxutils import escape

from django.utils import timezone, translation
from django.utils.translation import gettext as _

from enterprises.reports.data import MonthlyReport, Table, cell_kind, cell_value

FONT = "STSong-Light"
# Above this many columns (or this much designed width) a table gets a landscape page.
LANDSCAPE_COLUMNS = 8
LANDSCAPE_WIDTH = 115
# A PDF is read, not filtered: longer lists are cut here with a note (the XLSX has every row).
PDF_MAX_ROWS = 500
# A cell taller than a page cannot be laid out at all: long free text is clipped (the XLSX has it whole).
PDF_MAX_CELL_CHARS = 300
NUMERIC_KINDS = ("int", "float", "percent")
PLAIN_KINDS = (*NUMERIC_KINDS, "date", "datetime")


@lru_cache(maxsize=1)
def _styles():
    from reportlab.lib.enums import TA_CENTER, TA_RIGHT
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    base = {"fontName": FONT, "wordWrap": "CJK"}
    return {
        "title": ParagraphStyle("title", fontSize=18, leading=26, alignment=TA_CENTER, spaceAfter=10, **base),
        "h2": ParagraphStyle("h2", fontSize=13, leading=19, spaceBefore=8, spaceAfter=4, **base),
        "meta": ParagraphStyle("meta", fontSize=10, leading=15, **base),
        "note": ParagraphStyle("note", fontSize=8.5, leading=12, textColor="#555555", spaceAfter=4, **base),
        "cell": ParagraphStyle("cell", fontSize=8.5, leading=11, **base),
        "num": ParagraphStyle("num", fontSize=8.5, leading=11, alignment=TA_RIGHT, **base),
        "head": ParagraphStyle("head", fontSize=8.5, leading=11, alignment=TA_CENTER, **base),
    }


def _p(text, style="cell"):
    from reportlab.platypus import Paragraph

    return Paragraph(escape(str(text)).replace("\n", "<br/>"), _styles()[style])


def format_cell(value, kind: str) -> str:
    if value is None or value == "":
        return "—" if kind != "text" else ""
    if kind == "percent" and isinstance(value, int | float):
        return f"{value * 100:.1f}%"
    if kind == "int" and isinstance(value, int | float):
        return f"{int(value):,}"
    if kind == "float" and isinstance(value, int | float):
        return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
    if isinstance(value, datetime):
        return (
            timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
            if timezone.is_aware(value)
            else f"{value:%Y-%m-%d %H:%M}"
        )
    if isinstance(value, date):
        return f"{value:%Y-%m-%d}"
    return str(value)


def _numbered_canvas(footer: str):
    from reportlab.pdfgen import canvas

    class NumberedCanvas(canvas.Canvas):
        """Draws "第 x 页 / 共 y 页" once the page count is known (pages are kept until save)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages = []

        def showPage(self):  # noqa: N802 - reportlab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._footer(total)
                super().showPage()
            super().save()

        def _footer(self, total: int):
            width, _height = self._pagesize
            self.setFont(FONT, 8)
            self.setFillColorRGB(0.33, 0.33, 0.33)
            self.drawString(42, 24, footer)
            self.drawRightString(
                width - 42, 24, _("第 %(page)d 页 / 共 %(total)d 页") % {"page": self._pageNumber, "total": total}
            )

    return NumberedCanvas


def _clip(text: str) -> str:
    return text if len(text) <= PDF_MAX_CELL_CHARS else text[: PDF_MAX_CELL_CHARS - 1] + "…"


def _is_wide(table: Table) -> bool:
    return len(table.columns) > LANDSCAPE_COLUMNS or sum(c.width for c in table.columns) > LANDSCAPE_WIDTH


def _table_flowable(table: Table, avail_width: float):
    from reportlab.lib import colors
    from reportlab.platypus import LongTable, TableStyle

    total = sum(max(c.width, 4) for c in table.columns)
    widths = [avail_width * max(c.width, 4) / total for c in table.columns]
    header = [_p(c.label, "head") for c in table.columns]
    body = []
    # Numbers and dates are short plain strings (far cheaper to lay out than paragraphs); text wraps.
    plain = [c.kind in PLAIN_KINDS for c in table.columns]
    for row in table.rows[:PDF_MAX_ROWS]:
        cells = []
        for cell, column, is_plain in zip(row, table.columns, plain, strict=False):
            kind = cell_kind(cell, column)
            text = _clip(format_cell(cell_value(cell), kind))
            cells.append(text if is_plain else _p(text, "num" if kind in NUMERIC_KINDS else "cell"))
        body.append(cells)
    numeric_columns = [
        ("ALIGN", (i, 1), (i, -1), "RIGHT") for i, c in enumerate(table.columns) if c.kind in NUMERIC_KINDS
    ]
    flow = LongTable([header, *body], colWidths=widths, repeatRows=1, splitByRow=1)
    flow.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), FONT),
                ("FONTSIZE", (0, 0), (-1, -1), 8.5),
                ("LEADING", (0, 0), (-1, -1), 11),
                ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#888888")),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#DDE6F0")),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                ("LEFTPADDING", (0, 0), (-1, -1), 3),
                ("RIGHTPADDING", (0, 0), (-1, -1), 3),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#F5F7FA")]),
                *numeric_columns,
            ]
        )
    )
    return flow


def write_pdf(report: MonthlyReport) -> bytes:
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.units import mm
    from reportlab.platypus import BaseDocTemplate, Frame, NextPageTemplate, PageBreak, PageTemplate, Spacer

    margin = 15 * mm
    portrait_size, landscape_size = A4, landscape(A4)

    def frame(size, name):
        return Frame(margin, margin + 6 * mm, size[0] - 2 * margin, size[1] - 2 * margin - 6 * mm, id=name)

    buffer = io.BytesIO()
    doc = BaseDocTemplate(
        buffer,
        pagesize=portrait_size,
        leftMargin=margin,
        rightMargin=margin,
        topMargin=margin,
        bottomMargin=margin,
        title=report.title,
        author=_("安全生产信息化监管平台"),
        subject=report.jurisdiction_label,
    )
    doc.addPageTemplates(
        [
            PageTemplate(id="portrait", frames=[frame(portrait_size, "p")], pagesize=portrait_size),
            PageTemplate(id="landscape", frames=[frame(landscape_size, "l")], pagesize=landscape_size),
        ]
    )
    portrait_width = portrait_size[0] - 2 * margin
    landscape_width = landscape_size[0] - 2 * margin

    story = [_p(report.title, "title")]
    story += [_p(f"{label}：{value}", "meta") for label, value in report.meta_rows()]
    story.append(Spacer(1, 6))
    orientation = "portrait"
    for number, table in enumerate(report.tables, start=1):
        wanted = "landscape" if _is_wide(table) else "portrait"
        if wanted != orientation:
            story += [NextPageTemplate(wanted), PageBreak()]
            orientation = wanted
        story.append(_p(_heading(number, table.title), "h2"))
        note = table.note
        if len(table.rows) > PDF_MAX_ROWS:
            note += " " + _("PDF 仅列出前 %(n)d 条，完整清单见 Excel 版。") % {"n": PDF_MAX_ROWS}
        if note:
            story.append(_p(note, "note"))
        if table.rows:
            story.append(_table_flowable(table, landscape_width if wanted == "landscape" else portrait_width))
        else:
            story.append(_p(table.empty_text or _("无"), "meta"))
        story.append(Spacer(1, 6))
    footer = f"{report.title} · {_('生成时间')} {timezone.localtime(report.generated_at):%Y-%m-%d %H:%M}"
    doc.build(story, canvasmaker=_numbered_canvas(footer))
    return buffer.getvalue()


def _heading(number: int, title: str) -> str:
    """一、主要指标 in Chinese, "1. Key indicators" otherwise."""
    if (translation.get_language() or "zh").startswith("zh") and number <= 10:
        return f"{'零一二三四五六七八九十'[number]}、{title}"
    return f"{number}. {title}"
