"""/api/v1/hazards/: scoped like the registry (404 out of scope), the workflow as actions,
409 with the current status and the actions allowed now, photos streamed only to who may see."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.hazards.conftest import image_bytes, upload


@pytest.fixture
def api():
    def client_for(user=None):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return client_for


def test_anonymous_is_refused(api, world):
    assert api().get("/api/v1/hazards/").status_code in (401, 403)


@pytest.mark.parametrize(
    "persona,visible",
    [
        ("inspector", True),
        ("city_admin", True),
        ("park_manager", True),
        ("enterprise_user", True),
        ("other_inspector", False),
        ("auditor", False),
    ],
)
def test_list_and_detail_are_scoped(api, world, make_hazard, persona, visible):
    hazard = make_hazard("reported")
    client = api(getattr(world, persona))
    ids = [row["id"] for row in client.get("/api/v1/hazards/").json()["results"]]
    assert (hazard.pk in ids) is visible
    assert client.get(f"/api/v1/hazards/{hazard.pk}/").status_code == (200 if visible else 404)


def test_out_of_scope_action_answers_404(api, world, make_hazard):
    hazard = make_hazard("reported")
    response = api(world.other_inspector).post(f"/api/v1/hazards/{hazard.pk}/confirm/", {}, format="json")
    assert response.status_code == 404


def test_forbidden_step_answers_409_with_status_and_allowed_actions(api, world, people, make_hazard):
    hazard = make_hazard("rectifying")
    response = api(people["manager"]).post(f"/api/v1/hazards/{hazard.pk}/verify/", {}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["current_status"] == "rectifying"
    assert "verify" not in body["allowed_actions"] and "request_extension" in body["allowed_actions"]


def test_step_by_someone_not_entitled_answers_403(api, world, people, make_hazard):
    hazard = make_hazard("submitted", grade="major")
    response = api(people["principal"]).post(f"/api/v1/hazards/{hazard.pk}/verify/", {}, format="json")
    assert response.status_code == 403


def test_whole_workflow_over_the_api(api, world, people):
    officer, manager = api(people["officer"]), api(people["manager"])
    response = officer.post(
        "/api/v1/hazards/",
        {
            "enterprise": world.here.pk,
            "source": "self_check",
            "description": "配电室门口堆放杂物",
            "category": "electrical",
            "photos": [upload(image_bytes())],
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    hid = body["id"]
    assert body["status"] == "reported" and len(body["photos"]) == 1
    assert manager.post(f"/api/v1/hazards/{hid}/confirm/", {"comment": "属实"}, format="json").status_code == 200
    deadline = (timezone.localdate() + timedelta(days=7)).isoformat()
    response = officer.post(
        f"/api/v1/hazards/{hid}/start-rectification/", {"deadline": deadline, "measures": "清理"}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "rectifying"
    new_deadline = (timezone.localdate() + timedelta(days=14)).isoformat()
    response = officer.post(
        f"/api/v1/hazards/{hid}/request-extension/", {"new_deadline": new_deadline, "reason": "r"}, format="json"
    )
    assert response.status_code == 201
    response = manager.post(f"/api/v1/hazards/{hid}/decide-extension/", {"approve": True}, format="json")
    assert response.json()["due_date"] == new_deadline
    response = officer.post(
        f"/api/v1/hazards/{hid}/submit-rectification/",
        {"note": "已清理", "cost_spent": "100.00", "photos": [upload(image_bytes("PNG"), name="after.png")]},
        format="multipart",
    )
    assert response.status_code == 200 and response.json()["status"] == "submitted"
    response = manager.post(f"/api/v1/hazards/{hid}/verify/", {"comment": "合格"}, format="json")
    body = response.json()
    assert body["status"] == "closed" and body["allowed_actions"] == []
    assert [t["action"] for t in body["transitions"]] == [
        "report",
        "confirm",
        "start_rectification",
        "request_extension",
        "decide_extension",
        "submit_rectification",
        "verify",
    ]
    assert {p["kind"] for p in body["photos"]} == {"before", "after"}


def test_report_for_an_enterprise_out_of_scope_is_404(api, world):
    response = api(world.inspector).post(
        "/api/v1/hazards/", {"enterprise": world.there.pk, "source": "inspection", "description": "d"}, format="json"
    )
    assert response.status_code == 404


def test_bad_photo_upload_answers_400_with_reason(api, world, people, make_hazard):
    hazard = make_hazard("reported")
    response = api(people["officer"]).post(
        f"/api/v1/hazards/{hazard.pk}/photos/",
        {"kind": "before", "photos": [upload(b"<html></html>", name="x.jpg")]},
        format="multipart",
    )
    assert response.status_code == 400 and "JPEG" in response.json()["detail"]


def test_photo_is_streamed_only_to_users_who_see_the_hazard(client, world, people, make_hazard):
    hazard = make_hazard("reported")
    from hazards import services

    [photo] = services.hazard_add_photos(hazard=hazard, user=people["officer"], files=[upload(image_bytes())])
    client.force_login(world.inspector)
    response = client.get(f"/hazards/photos/{photo.uid}/")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content)[:3] == b"\xff\xd8\xff"
    assert client.get(f"/hazards/photos/{photo.uid}/thumb/").status_code == 200
    client.force_login(world.other_inspector)
    assert client.get(f"/hazards/photos/{photo.uid}/").status_code == 404
    client.force_login(people["there_user"])
    assert client.get(f"/hazards/photos/{photo.uid}/thumb/").status_code == 404
    client.logout()
    assert client.get(f"/hazards/photos/{photo.uid}/").status_code == 302  # to login
    api_response = APIClient()
    api_response.force_authenticate(world.other_inspector)
    assert api_response.get(f"/api/v1/hazards/{hazard.pk}/photos/{photo.uid}/").status_code == 404


def test_filters_region_overdue_listed_grade(api, world, people, make_hazard, time_machine):
    ordinary = make_hazard("rectifying")
    major = make_hazard("rectifying", grade="major")
    from hazards import services

    services.hazard_list_supervision(hazard=major, user=world.inspector, due=timezone.localdate() + timedelta(days=5))
    client = api(world.city_admin)

    def ids(query):
        return {row["id"] for row in client.get(f"/api/v1/hazards/?{query}").json()["results"]}

    assert ids("grade=major") == {major.pk}
    assert ids("listed=1") == {major.pk}
    assert ids("region=320581") == {ordinary.pk, major.pk}
    assert ids("region=320582") == set()
    assert ids("overdue=1") == set()
    time_machine.move_to(timezone.now() + timedelta(days=30))
    assert ids("overdue=1") == {ordinary.pk, major.pk}
    assert ids("status=rectifying&source=self_check") == {ordinary.pk, major.pk}


def test_indicators_endpoint(api, world, people, make_hazard):
    make_hazard("closed")
    make_hazard("rectifying")
    make_hazard("dismissed")
    client = api(world.inspector)
    totals = client.get("/api/v1/hazards/indicators/").json()
    assert totals["found"] == 3 and totals["closed"] == 1 and totals["rectification_rate"] == 0.5
    rows = client.get("/api/v1/hazards/indicators/?by=source").json()["rows"]
    assert rows[0]["key"] == "self_check" and rows[0]["found"] == 3
    assert client.get("/api/v1/hazards/indicators/?by=colour").status_code == 400
    assert api(world.other_inspector).get("/api/v1/hazards/indicators/").json()["found"] == 0


def test_checklist_api_failed_item_becomes_a_hazard(api, world, people, checklist):
    client = api(people["officer"])
    run = client.post(
        "/api/v1/checklist-runs/", {"template": checklist.pk, "enterprise": world.here.pk}, format="json"
    ).json()
    first, second = checklist.items.all()
    response = client.post(
        f"/api/v1/checklist-runs/{run['id']}/answer/",
        {"item": first.pk, "result": "fail", "note": "报警器不响", "photos": [upload(image_bytes())]},
        format="multipart",
    )
    assert response.status_code == 200
    [answer] = response.json()["answers"]
    assert len(answer["hazards"]) == 1
    assert client.post(f"/api/v1/checklist-runs/{run['id']}/complete/").status_code == 400  # one item missing
    client.post(f"/api/v1/checklist-runs/{run['id']}/answer/", {"item": second.pk, "result": "pass"}, format="json")
    response = client.post(f"/api/v1/checklist-runs/{run['id']}/complete/")
    assert response.status_code == 200 and response.json()["next_due"]
    assert api(world.other_inspector).get(f"/api/v1/checklist-runs/{run['id']}/").status_code == 404


def test_list_count_stops_at_the_cap(api, world, people, make_hazard, monkeypatch):
    from hazards import pagination

    monkeypatch.setattr(pagination.CappedPaginator, "cap", 2)
    for _ in range(3):
        make_hazard("reported")
    body = api(world.inspector).get("/api/v1/hazards/").json()
    assert body["count_capped"] is True and body["count"] == 3 and len(body["results"]) == 3
    monkeypatch.setattr(pagination.CappedPaginator, "cap", 10)
    body = api(world.inspector).get("/api/v1/hazards/").json()
    assert body["count_capped"] is False and body["count"] == 3


def test_overdue_list_puts_the_most_overdue_first(api, world, people, make_hazard, time_machine):
    from hazards.models import Hazard

    first, second = make_hazard("rectifying"), make_hazard("rectifying")
    Hazard.objects.filter(pk=second.pk).update(due_date=timezone.localdate() - timedelta(days=9))
    Hazard.objects.filter(pk=first.pk).update(due_date=timezone.localdate() - timedelta(days=2))
    rows = api(world.inspector).get("/api/v1/hazards/?overdue=1").json()["results"]
    assert [r["id"] for r in rows] == [second.pk, first.pk] and rows[0]["days_overdue"] == 9
