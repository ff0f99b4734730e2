"""Inspections, findings becoming hazards, numbered and hashed PDF documents."""

import io
import threading
from datetime import date, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from enforcement import services
from enforcement.choices import DocumentType, InspectionStatus, Outcome
from enforcement.models import CreditEvent, Document, DocumentCounter
from regulator.errors import DomainError, InvalidInput, TransitionNotAllowed

pytestmark = pytest.mark.django_db


@pytest.fixture
def inspection(county, plan):
    draw = services.draw_plan(plan=plan, user=county.head)
    return draw.inspections.order_by("id").first()


def member_of(inspection):
    return inspection.team.order_by("pk").first()


def complete_with_rectification(inspection, user=None):
    return services.inspection_complete(
        inspection=inspection,
        user=user or member_of(inspection),
        outcome=Outcome.RECTIFICATION,
        checklist=[{"item": "安全风险分级管控", "result": "fail", "note": "未建立风险清单"}],
        findings=[
            {"description": "液氨储罐区可燃气体报警器失效", "location": "罐区", "grade": "major"},
            {"description": "消防通道堵塞", "location": "二号车间"},
        ],
        internal_notes="企业负责人态度消极（内部备注）",
        rectification_deadline=timezone.localdate() + timedelta(days=30),
        legal_basis="《中华人民共和国安全生产法》第六十五条",
    )


def pdf_text(doc):
    from pypdf import PdfReader

    with doc.pdf.open("rb") as fh:
        reader = PdfReader(io.BytesIO(fh.read()))
    return "".join(page.extract_text() for page in reader.pages).replace("\n", "")


def test_completing_an_inspection_turns_findings_into_hazards(inspection):
    done = complete_with_rectification(inspection)
    assert done.status == InspectionStatus.COMPLETED
    findings = list(done.findings.all())
    assert len(findings) == 2
    from hazards.models import Hazard

    hazards = Hazard.objects.filter(pk__in=[f.hazard_id for f in findings])
    assert hazards.count() == 2
    assert set(hazards.values_list("source", flat=True)) == {"inspection"}
    assert hazards.filter(grade="major", enterprise=inspection.enterprise).count() == 1
    with pytest.raises(TransitionNotAllowed):
        complete_with_rectification(done)


def test_outcome_needs_consistent_findings_and_only_the_team_records(county, inspection):
    with pytest.raises(InvalidInput):
        services.inspection_complete(inspection=inspection, user=member_of(inspection), outcome=Outcome.RECTIFICATION)
    outsider = county.world.other_inspector
    with pytest.raises(DomainError):
        services.inspection_complete(inspection=inspection, user=outsider, outcome=Outcome.NO_PROBLEM)
    clean = services.inspection_complete(inspection=inspection, user=member_of(inspection), outcome=Outcome.NO_PROBLEM)
    assert CreditEvent.objects.get(source_key=f"inspection:{clean.pk}").kind == "inspection_clean"


def test_documents_are_numbered_per_bureau_type_and_year_and_hashed(county, inspection):
    complete_with_rectification(inspection)
    user = member_of(inspection)
    record = services.document_issue(inspection=inspection, doc_type=DocumentType.ONSITE_RECORD, user=user)
    order1 = services.document_issue(inspection=inspection, doc_type=DocumentType.RECTIFICATION_ORDER, user=user)
    order2 = services.document_issue(inspection=inspection, doc_type=DocumentType.RECTIFICATION_ORDER, user=user)
    year = timezone.localdate().year
    assert record.number == f"常应急检记〔{year}〕1号"
    assert (order1.number, order2.number) == (f"常应急责改〔{year}〕1号", f"常应急责改〔{year}〕2号")
    assert services.document_verify(order1)["hash_ok"] is True
    text = pdf_text(order1)
    assert "责令限期整改指令书" in text and inspection.enterprise.name in text and order1.number in text
    assert "液氨储罐区可燃气体报警器失效" in text
    assert "内部备注" not in text
    onsite = pdf_text(record)
    assert "现场检查记录" in onsite and "安全风险分级管控" in onsite
    # a penalty decision does not fit a rectification outcome
    with pytest.raises(DomainError):
        services.document_issue(inspection=inspection, doc_type=DocumentType.PENALTY_DECISION, user=user)
    opinion = services.document_issue(
        inspection=inspection,
        doc_type=DocumentType.REINSPECTION_OPINION,
        user=user,
        content={"opinion": "经复查，上述问题已整改完毕，同意销号。"},
    )
    assert order1.number in pdf_text(opinion)


def test_a_failed_issue_leaves_no_gap(county, inspection, monkeypatch):
    complete_with_rectification(inspection)
    user = member_of(inspection)
    services.document_issue(inspection=inspection, doc_type=DocumentType.ONSITE_RECORD, user=user)

    def broken(doc):
        raise RuntimeError("printer on fire")

    monkeypatch.setattr("enforcement.pdf.render_document", broken)
    with pytest.raises(RuntimeError):
        services.document_issue(inspection=inspection, doc_type=DocumentType.ONSITE_RECORD, user=user)
    monkeypatch.undo()
    doc = services.document_issue(inspection=inspection, doc_type=DocumentType.ONSITE_RECORD, user=user)
    assert doc.seq == 2


def test_penalty_decision_pdf_and_credit_event(county, inspection):
    user = member_of(inspection)
    services.inspection_complete(
        inspection=inspection,
        user=user,
        outcome=Outcome.PENALTY,
        findings=[{"description": "特种作业人员未持证上岗"}],
        penalty_amount="30000.00",
        rectification_deadline=date.today() + timedelta(days=10),
        legal_basis="《中华人民共和国安全生产法》第九十七条",
    )
    doc = services.document_issue(inspection=inspection, doc_type=DocumentType.PENALTY_DECISION, user=user)
    text = pdf_text(doc)
    assert "行政处罚决定书" in text and "30000.00" in text and "罚〔" in doc.number
    assert CreditEvent.objects.filter(enterprise=inspection.enterprise, kind="penalty").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_gapless_numbering_under_concurrent_issue(county, plan):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks")
    draw = services.draw_plan(plan=plan, user=county.head)
    inspection = draw.inspections.order_by("id").first()
    complete_with_rectification(inspection)
    user = member_of(inspection)
    errors = []

    def issue():
        try:
            services.document_issue(inspection=inspection, doc_type=DocumentType.RECTIFICATION_ORDER, user=user)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=issue) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    seqs = sorted(Document.objects.filter(doc_type=DocumentType.RECTIFICATION_ORDER).values_list("seq", flat=True))
    assert seqs == list(range(1, 13))
    assert DocumentCounter.objects.get(doc_type=DocumentType.RECTIFICATION_ORDER).last == 12


def test_sequential_numbering_on_any_database(county, inspection):
    complete_with_rectification(inspection)
    user = member_of(inspection)
    for _ in range(5):
        services.document_issue(inspection=inspection, doc_type=DocumentType.ONSITE_RECORD, user=user)
    assert sorted(Document.objects.values_list("seq", flat=True)) == [1, 2, 3, 4, 5]


def test_signed_when_signing_is_available(county, inspection):
    complete_with_rectification(inspection)
    doc = services.document_issue(
        inspection=inspection, doc_type=DocumentType.ONSITE_RECORD, user=member_of(inspection)
    )
    pytest.importorskip("regulator.signing")
    assert doc.signature
    assert services.document_verify(doc) == {"hash_ok": True, "signature_ok": True}
