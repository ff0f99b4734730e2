"""The pages: enterprise phone view, report with photo, action forms, regulator list and detail,
self-inspection runs, and the dossier section."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from hazards.models import Hazard
from tests.hazards.conftest import image_bytes, upload


def test_enterprise_user_sees_my_hazards_by_state_with_actions(client, world, people, make_hazard):
    make_hazard("rectifying", description="消防通道堵塞")
    make_hazard("reported", description="配电柜未接地")
    client.force_login(people["officer"])
    page = client.get(reverse("hazards:list")).content.decode()
    assert "我的隐患" in page and "消防通道堵塞" in page and "配电柜未接地" in page
    assert "申请延期" in page  # an action the officer may take now


def test_report_page_creates_hazard_with_photo(client, world, people):
    client.force_login(people["officer"])
    assert client.get(reverse("hazards:report")).status_code == 200
    response = client.post(
        reverse("hazards:report"),
        {
            "enterprise": world.here.pk,
            "source": "self_check",
            "description": "储罐呼吸阀锈蚀",
            "grade": "ordinary",
            "photos": [upload(image_bytes())],
        },
    )
    hazard = Hazard.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("hazards:detail", args=[hazard.pk])
    assert hazard.photos.count() == 1


def test_report_page_shows_why_a_photo_was_rejected(client, world, people, private_media):
    client.force_login(people["officer"])
    response = client.post(
        reverse("hazards:report"),
        {
            "enterprise": world.here.pk,
            "source": "self_check",
            "description": "x",
            "grade": "ordinary",
            "photos": [upload(b"MZ\x90\x00", name="virus.jpg")],
        },
    )
    assert response.status_code == 200 and "只接受 JPEG、PNG 或 WebP" in response.content.decode()
    assert not Hazard.objects.exists()


def test_report_page_offers_only_enterprises_in_scope(client, world, people):
    client.force_login(people["officer"])
    response = client.post(
        reverse("hazards:report"),
        {"enterprise": world.there.pk, "source": "self_check", "description": "x", "grade": "ordinary"},
    )
    assert response.status_code == 200 and not Hazard.objects.exists()


def test_detail_page_actions_drive_the_workflow(client, world, people, make_hazard):
    hazard = make_hazard("reported")
    client.force_login(people["manager"])
    page = client.get(reverse("hazards:detail", args=[hazard.pk])).content.decode()
    assert "确认" in page and "处理记录" in page
    response = client.post(reverse("hazards:act", args=[hazard.pk, "confirm"]), {"grade": "ordinary", "comment": "ok"})
    assert response.status_code == 302
    hazard.refresh_from_db()
    assert hazard.status == "confirmed"
    # Wrong step now: 409 page with the message, state unchanged.
    response = client.post(reverse("hazards:act", args=[hazard.pk, "verify"]), {"comment": ""})
    assert response.status_code == 409 and "不能执行" in response.content.decode()
    client.force_login(people["officer"])
    deadline = (timezone.localdate() + timedelta(days=5)).isoformat()
    client.post(reverse("hazards:act", args=[hazard.pk, "start_rectification"]), {"deadline": deadline})
    client.post(
        reverse("hazards:act", args=[hazard.pk, "submit_rectification"]),
        {"note": "完成", "photos": [upload(image_bytes())]},
    )
    hazard.refresh_from_db()
    assert hazard.status == "submitted" and hazard.photos.filter(kind="after").count() == 1


def test_detail_out_of_scope_is_404(client, world, make_hazard):
    hazard = make_hazard("reported")
    client.force_login(world.other_inspector)
    assert client.get(reverse("hazards:detail", args=[hazard.pk])).status_code == 404
    assert client.post(reverse("hazards:act", args=[hazard.pk, "confirm"]), {"grade": "ordinary"}).status_code == 404


def test_regulator_list_filters_and_shows_indicators(client, world, make_hazard):
    make_hazard("rectifying", description="甲隐患")
    make_hazard("closed", description="乙隐患")
    client.force_login(world.inspector)
    page = client.get(reverse("hazards:list")).content.decode()
    assert "甲隐患" in page and "乙隐患" in page and "整改率" in page
    page = client.get(reverse("hazards:list") + "?status=closed").content.decode()
    assert "乙隐患" in page and "甲隐患" not in page


def test_mlps_admin_gets_no_business_pages(client, world):
    client.force_login(world.auditor)
    assert client.get(reverse("hazards:list")).status_code == 403


def test_self_inspection_run_failed_item_becomes_hazard_in_one_step(client, world, people, checklist):
    client.force_login(people["officer"])
    page = client.get(reverse("hazards:checklists")).content.decode()
    assert checklist.name in page
    response = client.post(reverse("hazards:checklist_start", args=[checklist.pk, world.here.pk]))
    run_url = response["Location"]
    first, second = checklist.items.all()
    client.post(
        reverse("hazards:run_answer", args=[int(run_url.rstrip("/").split("/")[-1]), first.pk]),
        {
            f"i{first.pk}-result": "fail",
            f"i{first.pk}-note": "报警器失灵",
            f"i{first.pk}-grade": "ordinary",
            f"i{first.pk}-photos": [upload(image_bytes())],
        },
    )
    hazard = Hazard.objects.get()
    assert hazard.source == "self_check" and hazard.photos.count() == 1 and "报警器失灵" in hazard.description
    run_id = int(run_url.rstrip("/").split("/")[-1])
    client.post(
        reverse("hazards:run_answer", args=[run_id, second.pk]),
        {f"i{second.pk}-result": "pass", f"i{second.pk}-grade": "ordinary"},
    )
    client.post(reverse("hazards:run_complete", args=[run_id]))
    page = client.get(run_url).content.decode()
    assert "已完成" in page and "下次应检" in page


def test_regulator_sees_overdue_checklists(client, world, people, checklist, time_machine):
    time_machine.move_to(timezone.now() + timedelta(days=45))
    client.force_login(world.inspector)
    page = client.get(reverse("hazards:checklists")).content.decode()
    assert world.here.name in page and "逾期未自查" in page
    client.force_login(world.other_inspector)
    assert world.here.name not in client.get(reverse("hazards:checklists")).content.decode()


def test_dossier_section_is_registered_and_counts(world, make_hazard, time_machine):
    from enterprises.dossier import sections

    make_hazard("rectifying")
    make_hazard("closed")
    section = next(s for s in sections() if s.key == "hazards")
    data = section.build(world.here, None)
    assert data["open"] == 1 and data["closed_this_year"] == 1 and data["rectification_rate"] == 0.5
    time_machine.move_to(timezone.now() + timedelta(days=40))
    assert section.build(world.here, None)["overdue"] == 1


@pytest.mark.parametrize("name", ["hazards:list", "hazards:report", "hazards:checklists"])
@pytest.mark.parametrize("persona", ["inspector", "city_admin", "park_manager", "enterprise_user"])
def test_pages_render_for_every_business_persona(client, world, make_hazard, name, persona):
    make_hazard("rectifying")
    client.force_login(getattr(world, persona))
    assert client.get(reverse(name)).status_code == 200


def test_regulator_defines_a_checklist_template_on_the_page(client, world, people):
    from hazards.models import ChecklistTemplate

    client.force_login(world.inspector)
    response = client.post(
        reverse("hazards:checklists"),
        {
            "name": "粉尘涉爆企业检查表",
            "industry": world.here.industry.parent.parent.pk,
            "cycle_days": 14,
            "items": "除尘系统防爆泄爆装置完好 | 粉尘防爆安全规程 | equipment\n\n清扫制度落实 | GB 15577",
        },
    )
    assert response.status_code == 302
    template = ChecklistTemplate.objects.get(name="粉尘涉爆企业检查表")
    assert [(i.order, i.basis, i.category) for i in template.items.all()] == [
        (1, "粉尘防爆安全规程", "equipment"),
        (2, "GB 15577", ""),
    ]
    client.force_login(people["officer"])
    assert client.post(reverse("hazards:checklists"), {"name": "x", "items": "y"}).status_code == 403
