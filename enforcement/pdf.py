"""Enforcement documents as PDF (reportlab, built-in CID font STSong-Light: no font files needed)."""

from __future__ import annotations

import io
from functools import lru_cache
from xml.sax.saxutils import escape

from django.utils import timezone

from enforcement.choices import ChecklistResult, DocumentType, Outcome

FONT = "STSong-Light"


@lru_cache(maxsize=1)
def _styles():
    from reportlab.lib.enums import TA_CENTER, TA_LEFT, TA_RIGHT
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    base = {"fontName": FONT, "wordWrap": "CJK"}
    return {
        "bureau": ParagraphStyle("bureau", fontSize=18, leading=26, alignment=TA_CENTER, **base),
        "title": ParagraphStyle("title", fontSize=22, leading=32, alignment=TA_CENTER, spaceAfter=4, **base),
        "number": ParagraphStyle("number", fontSize=11, leading=16, alignment=TA_RIGHT, spaceAfter=10, **base),
        "body": ParagraphStyle("body", fontSize=12, leading=21, alignment=TA_LEFT, firstLineIndent=24, **base),
        "plain": ParagraphStyle("plain", fontSize=12, leading=21, alignment=TA_LEFT, **base),
        "cell": ParagraphStyle("cell", fontSize=10.5, leading=15, **base),
        "right": ParagraphStyle("right", fontSize=12, leading=22, alignment=TA_RIGHT, **base),
        "small": ParagraphStyle("small", fontSize=9, leading=13, textColor="#555555", **base),
    }


def _p(text, style="body"):
    from reportlab.platypus import Paragraph

    return Paragraph(escape(str(text)).replace("\n", "<br/>"), _styles()[style])


def _cn_date(value) -> str:
    return f"{value.year}年{value.month}月{value.day}日" if value else "    年  月  日"


def _grid(rows, widths):
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

    table = Table([[_p(c, "cell") for c in row] for row in rows], colWidths=widths)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.6, colors.black),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
            ]
        )
    )
    return table


def _team_line(inspection) -> str:
    parts = []
    for member in inspection.team.all().select_related("inspector").order_by("pk"):
        cert = getattr(getattr(member, "inspector", None), "certificate_number", "") or "—"
        parts.append(f"{member.display_name}（执法证号 {cert}）")
    return "、".join(parts) or "—"


def _findings(inspection) -> list[str]:
    lines = []
    for i, finding in enumerate(inspection.findings.all(), start=1):
        where = f"（{finding.location}）" if finding.location else ""
        major = "【重大隐患】" if finding.grade == "major" else ""
        lines.append(f"{i}. {finding.description}{where}{major}")
    return lines


def _appeal(bureau_name: str) -> str:
    return (
        f"如不服本决定，可以依法在六十日内向{bureau_name}人民政府或者上一级应急管理部门申请行政复议，"
        "或者在六个月内依法向人民法院提起行政诉讼，但本决定不停止执行，法律另有规定的除外。"
    )


def render_document(doc) -> bytes:
    """Render one document; the layout follows the usual 安全生产执法文书 templates."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate, Spacer

    inspection = doc.inspection
    ent = inspection.enterprise
    bureau_name = f"{doc.bureau.name}应急管理局"
    issued = timezone.localtime(doc.issued_at).date()
    story = [
        _p(bureau_name, "bureau"),
        _p(DocumentType(doc.doc_type).label, "title"),
        _p(doc.number, "number"),
    ]
    width = A4[0] - 40 * mm
    if doc.doc_type == DocumentType.ONSITE_RECORD:
        rows = [
            ["被检查单位", ent.name, "统一社会信用代码", ent.uscc],
            ["地址", ent.address or "—", "主要负责人", ent.principal_name or ent.legal_representative or "—"],
            ["检查时间", _cn_date(inspection.date), "检查场所", doc.content.get("place") or ent.address or "—"],
            ["检查人员", _team_line(inspection), "", ""],
        ]
        table = _grid(rows, [width * 0.16, width * 0.34, width * 0.2, width * 0.3])
        table.setStyle([("SPAN", (1, 3), (3, 3))])
        story += [table, Spacer(1, 6), _p("检查情况：", "plain")]
        checklist = [["序号", "检查事项", "结果", "说明"]] + [
            [str(i), row.get("item", ""), ChecklistResult(row["result"]).label, row.get("note", "")]
            for i, row in enumerate(inspection.checklist, start=1)
        ]
        story.append(_grid(checklist, [width * 0.08, width * 0.5, width * 0.12, width * 0.3]))
        story += [Spacer(1, 6), _p("发现的问题：", "plain")]
        story += [_p(line, "plain") for line in _findings(inspection)] or [_p("未发现问题。", "plain")]
        story += [_p(f"检查结论：{Outcome(inspection.outcome).label if inspection.outcome else '—'}", "plain")]
        story += [
            Spacer(1, 18),
            _p("检查人员（签名）：____________    ____________", "plain"),
            _p("被检查单位现场负责人（签名）：____________", "plain"),
        ]
    elif doc.doc_type == DocumentType.RECTIFICATION_ORDER:
        deadline = inspection.rectification_deadline
        story += [
            _p(f"{ent.name}：", "plain"),
            _p(f"经查，你单位存在下列问题（{_cn_date(inspection.date)}现场检查）："),
            *[_p(line, "plain") for line in _findings(inspection)],
            _p(
                f"依据{inspection.legal_basis or '《中华人民共和国安全生产法》第六十五条第一款第（三）项'}的规定，"
                f"现责令你单位对上述问题于{_cn_date(deadline)}前整改完毕，达到有关法律法规规章和标准规定的要求。"
                "整改完成后请书面报告本机关，本机关将依法进行复查。"
            ),
            _p(
                "在整改期间，你单位应当采取措施，确保安全生产。对于重大事故隐患，在隐患排除前或者排除过程中无法保证安全的，应当从危险区域内撤出作业人员。"
            ),
            _p(_appeal(doc.bureau.name)),
        ]
    elif doc.doc_type == DocumentType.REINSPECTION_OPINION:
        order = inspection.documents.filter(doc_type=DocumentType.RECTIFICATION_ORDER).order_by("issued_at").first()
        story += [
            _p(f"{ent.name}：", "plain"),
            _p(
                f"本机关于{_cn_date(inspection.date)}对你单位作出了"
                f"《责令限期整改指令书》（{order.number if order else '—'}），"
                f"经于{_cn_date(issued)}对你单位整改情况进行复查，提出如下意见："
            ),
            _p(doc.content.get("opinion", ""), "body"),
            _p("复查人员（签名）：____________    ____________", "plain"),
        ]
    elif doc.doc_type == DocumentType.PENALTY_DECISION:
        rows = [
            ["当事人", ent.name, "统一社会信用代码", ent.uscc],
            ["地址", ent.address or "—", "法定代表人", ent.legal_representative or "—"],
        ]
        story += [
            _grid(rows, [width * 0.16, width * 0.34, width * 0.2, width * 0.3]),
            Spacer(1, 6),
            _p(f"经查，你单位存在以下违法事实（{_cn_date(inspection.date)}现场检查发现）："),
            *[_p(line, "plain") for line in _findings(inspection)],
            _p("以上事实有现场检查记录、现场照片等证据为证。"),
            _p(
                f"你单位的上述行为违反了{inspection.legal_basis or '《中华人民共和国安全生产法》的有关规定'}，"
                f"依据相关规定，本机关决定对你单位作出如下行政处罚：罚款人民币{inspection.penalty_amount or 0}元。"
            ),
            _p(
                "罚款自收到本决定书之日起十五日内缴至指定银行。到期不缴纳罚款的，本机关可以每日按罚款数额的百分之三加处罚款。"
            ),
            _p(_appeal(doc.bureau.name)),
        ]
    story += [
        Spacer(1, 24),
        _p(f"{bureau_name}（印章）", "right"),
        _p(_cn_date(issued), "right"),
        Spacer(1, 12),
        _p(
            "本文书一式两份：一份由应急管理部门存档，一份交被检查（处理）单位。文书的SM3摘要和SM2签名可在平台核验。",
            "small",
        ),
    ]
    buffer = io.BytesIO()
    pdf = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"{DocumentType(doc.doc_type).label} {doc.number}",
        author=bureau_name,
    )
    pdf.build(story)
    return buffer.getvalue()
