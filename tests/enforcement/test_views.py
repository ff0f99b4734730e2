"""Pages and API: scoping (out of scope = 404), the public page shows nothing private."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from enforcement import services
from enforcement.choices import DocumentType, Outcome
from enforcement.models import ConflictOfInterest, Draw, InspectionPlan
from regulator.crypto import sm3_hex

pytestmark = pytest.mark.django_db


def login(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def drawn(county, plan):
    ConflictOfInterest.objects.create(
        inspector=county.profiles[2], enterprise=county.enterprises[5], reason="其配偶任该企业安全总监"
    )
    draw = services.draw_plan(plan=plan, user=county.head)
    inspection = draw.inspections.filter(enterprise=county.world.here).first()
    member = inspection.team.order_by("pk").first()
    services.inspection_complete(
        inspection=inspection,
        user=member,
        outcome=Outcome.RECTIFICATION,
        findings=[{"description": "动火作业未办理作业票", "location": "三号车间"}],
        public_summary="发现1项一般隐患，已责令限期整改",
        internal_notes="INTERNAL-绝密备注",
        rectification_deadline=timezone.localdate() + timedelta(days=15),
    )
    doc = services.document_issue(inspection=inspection, doc_type=DocumentType.RECTIFICATION_ORDER, user=member)
    return draw, inspection, doc


def test_public_pages_need_no_login_and_show_nothing_private(client, county, drawn):
    draw, inspection, _doc = drawn
    index = client.get(reverse("enforcement:public"))
    assert index.status_code == 200 and county.world.here.name not in index.content.decode()
    assert "2026年第一季度双随机抽查" in index.content.decode()
    page = client.get(reverse("enforcement:public_draw", args=[draw.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    for public in (
        draw.seed,
        draw.snapshot_hash,
        draw.result_hash,
        county.world.here.name,
        "发现1项一般隐患，已责令限期整改",
    ):
        assert public in html
    assert draw.signature["signature"] in html
    for private in ("13900001111", "其配偶任该企业安全总监", "INTERNAL-绝密备注", "动火作业未办理作业票", "32058100"):
        assert private not in html, private
    assert draw.snapshot[:200] not in html  # the snapshot (with conflicts) is never published
    upcoming = draw.inspections.exclude(pk=inspection.pk).order_by("-date").first()
    from django.utils.formats import date_format

    for shown in (upcoming.date.isoformat(), date_format(upcoming.date)):
        assert shown not in html  # no advance notice of unannounced visits
    body = client.get(reverse("enforcement:public_draw_result", args=[draw.pk])).content
    assert sm3_hex(body) == draw.result_hash


def test_superseded_draw_stays_public_with_reason(client, county, plan):
    first = services.draw_plan(plan=plan, user=county.head)
    services.draw_plan(plan=plan, user=county.head, reason="名录库人员调整")
    html = client.get(reverse("enforcement:public_draw", args=[first.pk])).content.decode()
    assert "名录库人员调整" in html and "本次抽取已作废" in html


def test_plan_pages_are_scoped(client, county, drawn):
    draw, inspection, doc = drawn
    world = county.world
    assert login(client, world.inspector).get(reverse("enforcement:plans")).status_code == 200
    assert client.get(reverse("enforcement:plan_detail", args=[draw.plan_id])).status_code == 200
    assert client.get(reverse("enforcement:inspection_detail", args=[inspection.pk])).status_code == 200
    login(client, world.other_inspector)
    assert client.get(reverse("enforcement:plan_detail", args=[draw.plan_id])).status_code == 404
    assert client.get(reverse("enforcement:inspection_detail", args=[inspection.pk])).status_code == 404
    assert client.get(reverse("enforcement:document_pdf", args=[doc.pk])).status_code == 404
    login(client, world.enterprise_user)
    assert client.get(reverse("enforcement:plans")).status_code == 403
    detail = client.get(reverse("enforcement:inspection_detail", args=[inspection.pk]))
    assert detail.status_code == 200 and "INTERNAL-绝密备注" not in detail.content.decode()
    pdf = client.get(reverse("enforcement:document_pdf", args=[doc.pk]))
    assert pdf.status_code == 200 and b"".join(pdf.streaming_content).startswith(b"%PDF")
    client.logout()
    assert client.get(reverse("enforcement:plans")).status_code == 302


def test_section_head_creates_and_draws_a_plan_through_the_pages(client, county):
    login(client, county.head)
    response = client.post(
        reverse("enforcement:plan_create"),
        {
            "name": "危化专项",
            "jurisdiction": county.region.pk,
            "period_start": "2026-04-01",
            "period_end": "2026-04-30",
            "items": "《危险化学品安全管理条例》 | 储存场所安全条件 | 现场检查",
            "industry_prefixes": "26",
            "strata": "红橙 | * | red,orange | * | #2\n其余 | * | * | * | 0.5",
            "default_ratio": "0.05",
            "team_size": "2",
            "require_specialty": "on",
        },
    )
    plan = InspectionPlan.objects.get(name="危化专项")
    assert response.status_code == 302 and plan.strata[0]["count"] == 2 and plan.industry_prefixes == ["26"]
    client.post(reverse("enforcement:plan_draw", args=[plan.pk]))
    draw = Draw.objects.get(plan=plan)
    page = client.get(reverse("enforcement:plan_detail", args=[plan.pk])).content.decode()
    assert draw.seed in page
    client.post(reverse("enforcement:draw_verify", args=[draw.pk]))
    # inspectors may not draw
    login(client, county.world.inspector)
    client.post(reverse("enforcement:plan_draw", args=[plan.pk]), {"reason": "试图重抽"})
    assert Draw.objects.filter(plan=plan).count() == 1


def test_team_member_completes_an_inspection_through_the_page(client, county, plan):
    draw = services.draw_plan(plan=plan, user=county.head)
    inspection = draw.inspections.first()
    member = inspection.team.first()
    login(client, member)
    response = client.post(
        reverse("enforcement:inspection_detail", args=[inspection.pk]),
        {
            "inspected_on": "2026-01-15",
            "outcome": "no_problem",
            "check_0": "pass",
            "note_0": "",
            "findings": "",
            "public_summary": "",
        },
    )
    assert response.status_code == 302
    inspection.refresh_from_db()
    assert inspection.status == "completed" and inspection.checklist[0]["result"] == "pass"
    client.post(
        reverse("enforcement:document_create", args=[inspection.pk]), {"doc_type": "onsite_record", "place": "厂区"}
    )
    assert inspection.documents.count() == 1


def test_credit_pages_and_dossier_section(client, county):
    from enterprises.dossier import sections

    world = county.world
    services.credit_record_event(
        enterprise=world.here, kind="penalty", occurred_on=timezone.localdate(), source_key="x"
    )
    services.credit_recompute()
    assert "credit" in {s.key for s in sections()}
    section = next(s for s in sections() if s.key == "credit")
    data = section.build(world.here, world.inspector)
    assert data["score"] == 72 and json.loads(data["history_json"])[0]["score"] == 72
    login(client, world.inspector)
    assert client.get(reverse("enforcement:credit")).status_code == 200
    page = client.get(reverse("enforcement:credit_enterprise", args=[world.here.pk])).content.decode()
    assert "data-credit-history" in page and "echarts" in page
    login(client, world.other_inspector)
    assert client.get(reverse("enforcement:credit_enterprise", args=[world.here.pk])).status_code == 404


def test_inspector_declares_a_conflict_on_the_pool_page(client, county):
    login(client, county.world.inspector)
    client.post(reverse("enforcement:inspectors"), {"enterprise_id": county.world.here.pk, "reason": "曾在该企业任职"})
    assert ConflictOfInterest.objects.filter(
        inspector__user=county.world.inspector, enterprise=county.world.here
    ).exists()


# --- API -----------------------------------------------------------------------------------------


def api(user=None):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_api_permission_matrix(county, drawn):
    draw, inspection, doc = drawn
    world = county.world
    assert api().get("/api/v1/enforcement/plans/").status_code in (401, 403)
    assert len(api(world.inspector).get("/api/v1/enforcement/plans/").json()["results"]) == 1
    assert api(world.other_inspector).get("/api/v1/enforcement/plans/").json()["results"] == []
    assert api(world.other_inspector).get(f"/api/v1/enforcement/inspections/{inspection.pk}/").status_code == 404
    assert api(world.other_inspector).get(f"/api/v1/enforcement/documents/{doc.pk}/").status_code == 404
    assert api(world.inspector).get(f"/api/v1/enforcement/draws/{draw.pk}/verify/").json() == {
        "ok": True,
        "problems": [],
    }
    seen = api(world.enterprise_user).get(f"/api/v1/enforcement/inspections/{inspection.pk}/").json()
    assert "internal_notes" not in seen
    assert api(world.enterprise_user).post(f"/api/v1/enforcement/plans/{draw.plan_id}/draw/").status_code == 403
    refused = api(world.inspector).post(f"/api/v1/enforcement/plans/{draw.plan_id}/draw/", {"reason": "x"})
    assert refused.status_code == 403  # may see the plan, may not draw it: a refusal, not a conflict
    assert refused.json()["code"] == "forbidden"


def test_api_plan_draw_complete_and_document(county):
    head = api(county.head)
    created = head.post(
        "/api/v1/enforcement/plans/",
        {
            "name": "API计划",
            "jurisdiction": county.region.code,
            "period_start": "2026-05-01",
            "period_end": "2026-05-31",
            "strata": [{"label": "全部", "ratio": "0.5"}],
            "team_size": 2,
            "require_specialty": False,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    plan_id = created.json()["id"]
    drawn = head.post(f"/api/v1/enforcement/plans/{plan_id}/draw/", format="json")
    assert drawn.status_code == 201
    assert head.post(f"/api/v1/enforcement/plans/{plan_id}/draw/", format="json").status_code == 400  # reason needed
    assert drawn.json()["result"]["assignments"]
    inspection = api(county.head).get("/api/v1/enforcement/inspections/?status=planned").json()["results"][0]
    from regulator.models import User

    member = User.objects.get(pk=inspection["team"][0])
    done = api(member).post(
        f"/api/v1/enforcement/inspections/{inspection['id']}/complete/",
        {"outcome": "penalty", "findings": [{"description": "未按规定配备安全管理人员"}], "penalty_amount": "20000"},
        format="json",
    )
    assert done.status_code == 200, done.json()
    issued = api(member).post(
        f"/api/v1/enforcement/inspections/{inspection['id']}/documents/",
        {"doc_type": "penalty_decision"},
        format="json",
    )
    assert issued.status_code == 201 and "罚〔" in issued.json()["number"]
    pdf = api(member).get(f"/api/v1/enforcement/documents/{issued.json()['id']}/pdf/")
    assert pdf.status_code == 200
    again = api(member).post(f"/api/v1/enforcement/inspections/{inspection['id']}/complete/", {"outcome": "no_problem"})
    assert again.status_code == 409 and again.json()["current_status"] == "completed"


def test_section_head_cancels_a_planned_inspection_with_a_reason(client, county, plan):
    draw = services.draw_plan(plan=plan, user=county.head)
    inspection = draw.inspections.first()
    client.force_login(county.world.inspector)
    client.post(reverse("enforcement:inspection_cancel", args=[inspection.pk]), {"reason": "企业已注销"})
    inspection.refresh_from_db()
    assert inspection.status == "planned"  # inspectors may not cancel
    client.force_login(county.head)
    client.post(reverse("enforcement:inspection_cancel", args=[inspection.pk]), {"reason": "企业已注销"})
    inspection.refresh_from_db()
    assert inspection.status == "cancelled" and inspection.cancel_reason == "企业已注销"
    assert services.verify_draw(draw) == []  # a cancellation is not a tampering: the team is unchanged


def test_the_admin_shows_an_inspection_with_its_team(client, drawn, django_user_model):
    """The team has an explicit through model (no index of its own on inspection): the M2M still
    works through the ORM, and the admin's read-only page lists the members."""
    _draw, inspection, _doc = drawn
    member = inspection.team.order_by("pk").first()
    admin = django_user_model.objects.create_superuser(username="root_admin", password="x" * 12)
    page = login(client, admin).get(reverse("admin:enforcement_inspection_change", args=[inspection.pk]))
    assert page.status_code == 200
    assert all(str(user) in page.content.decode() for user in inspection.team.all())
    assert set(inspection.team.values_list("pk", flat=True)) >= {member.pk}
    assert member.enforcement_inspections.filter(pk=inspection.pk).exists()
    inspection.team.remove(member)
    assert not inspection.team.filter(pk=member.pk).exists()
    inspection.team.add(member)
    assert inspection.team.filter(pk=member.pk).exists()


def test_the_admin_shows_a_document_with_a_link_to_its_download_view(client, drawn, django_user_model):
    """Stored files have no URL (MEDIA_URL is None): the admin links the download view, not a 500."""
    _draw, _inspection, doc = drawn
    admin = django_user_model.objects.create_superuser(username="root_admin", password="x" * 12)
    page = login(client, admin).get(reverse("admin:enforcement_document_change", args=[doc.pk]))
    assert page.status_code == 200
    assert reverse("enforcement:document_pdf", args=[doc.pk]) in page.content.decode()
