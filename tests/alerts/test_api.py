"""/api/v1/alerts/: scoped (404 out of scope), lifecycle actions, 409 with current state and allowed actions."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from alerts import services
from alerts.models import Alert
from regulator.choices import EnterpriseRole
from tests import factories as f


@pytest.fixture
def alert(world, gas):
    return services.alert_raise(
        enterprise=world.here,
        device=gas.device,
        channel=gas.channel,
        rule=gas.rule,
        kind="high",
        level=2,
        message="GT-101 高报",
        value=30,
        limit=20,
        unit="%LEL",
    )


@pytest.fixture
def there_alert(world, other_gas):
    return services.alert_raise(
        enterprise=world.there,
        device=other_gas.device,
        channel=other_gas.channel,
        kind="high",
        level=2,
        message="GT-201 高报",
    )


def client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_anonymous_is_refused(db):
    assert APIClient().get("/api/v1/alerts/").status_code in (401, 403)


def test_list_is_scoped_per_persona(world, alert, there_alert):
    def ids(user):
        return {row["id"] for row in client_for(user).get("/api/v1/alerts/").json()["results"]}

    assert ids(world.inspector) == {alert.pk}
    assert ids(world.other_inspector) == {there_alert.pk}
    assert ids(world.city_admin) == {alert.pk, there_alert.pk}
    assert ids(world.park_manager) == {alert.pk}
    assert ids(world.enterprise_user) == {alert.pk}
    assert ids(world.auditor) == set()


def test_out_of_scope_detail_and_actions_answer_404(world, alert):
    client = client_for(world.other_inspector)
    assert client.get(f"/api/v1/alerts/{alert.pk}/").status_code == 404
    assert client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {}, format="json").status_code == 404
    alert.refresh_from_db()
    assert alert.state == "active_unack"


def test_acknowledge_then_forbidden_second_ack_is_409_with_state_and_allowed_actions(world, alert):
    client = client_for(world.enterprise_user)
    resp = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {"comment": "收到"}, format="json")
    assert resp.status_code == 200
    body = resp.json()
    assert body["state"] == "active_ack" and body["transitions"][-1]["comment"] == "收到"
    resp = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {}, format="json")
    assert resp.status_code == 409
    body = resp.json()
    assert body["code"] == "transition_not_allowed"
    assert body["current_status"] == "active_ack"
    assert "acknowledge" not in body["allowed_actions"] and "shelve" in body["allowed_actions"]


def test_shelve_by_enterprise_safety_manager_and_refused_for_inspector(world, alert):
    until = (timezone.now() + timedelta(hours=4)).isoformat()
    resp = client_for(world.inspector).post(
        f"/api/v1/alerts/{alert.pk}/shelve/", {"reason": "标定", "until": until}, format="json"
    )
    assert resp.status_code == 403
    manager = f.enterprise_user("mgr", world.here, EnterpriseRole.SAFETY_MANAGER)
    client = client_for(manager)
    assert client.post(f"/api/v1/alerts/{alert.pk}/shelve/", {"until": until}, format="json").status_code == 400
    resp = client.post(f"/api/v1/alerts/{alert.pk}/shelve/", {"reason": "标定", "until": until}, format="json")
    assert resp.status_code == 200 and resp.json()["state"] == "shelved"
    resp = client.post(f"/api/v1/alerts/{alert.pk}/unshelve/", {}, format="json")
    assert resp.json()["state"] == "active_unack"


def test_respond_comment_review_and_filters(world, alert):
    client = client_for(world.enterprise_user)
    resp = client.post(
        f"/api/v1/alerts/{alert.pk}/respond/", {"kind": "plan_started", "note": "启动二级响应"}, format="json"
    )
    assert resp.status_code == 200 and resp.json()["responses"][0]["kind"] == "plan_started"
    assert client.post(f"/api/v1/alerts/{alert.pk}/respond/", {"kind": "nonsense"}, format="json").status_code == 400
    assert client.post(f"/api/v1/alerts/{alert.pk}/comment/", {"text": "已派人"}, format="json").status_code == 200
    assert client.post(f"/api/v1/alerts/{alert.pk}/review/", {"false_alarm": True}, format="json").status_code == 403
    resp = client_for(world.inspector).post(f"/api/v1/alerts/{alert.pk}/review/", {"false_alarm": True}, format="json")
    assert resp.status_code == 200 and resp.json()["false_alarm"] is True
    inspector = client_for(world.inspector)
    assert inspector.get("/api/v1/alerts/?open=true").json()["count"] == 1
    assert inspector.get("/api/v1/alerts/?state=normal").json()["count"] == 0
    assert inspector.get(f"/api/v1/alerts/?after_id={alert.pk}").json()["count"] == 0


def test_remove_from_service_needs_reason(world, alert):
    head = f.user("head", "section_head", jurisdiction=world.regions["county"])
    client = client_for(head)
    assert client.post(f"/api/v1/alerts/{alert.pk}/remove-from-service/", {}, format="json").status_code == 400
    resp = client.post(f"/api/v1/alerts/{alert.pk}/remove-from-service/", {"reason": "更换探头"}, format="json")
    assert resp.json()["state"] == "out_of_service"
    resp = client.post(f"/api/v1/alerts/{alert.pk}/return-to-service/", {}, format="json")
    assert resp.json()["state"] == "active_unack"


def test_rules_api_is_scoped(world, gas, other_gas):
    from alerts.models import AlertRule

    theirs = AlertRule.objects.create(name="张家港专用", device=other_gas.device, quantity="combustible_gas", high=10)
    names = {r["name"] for r in client_for(world.inspector).get("/api/v1/alert-rules/").json()["results"]}
    assert gas.rule.name in names and theirs.name not in names
    assert client_for(world.auditor).get("/api/v1/alert-rules/").json()["count"] == 0


def test_html_board_detail_and_acknowledge_form(world, alert, client):
    client.force_login(world.inspector)
    resp = client.get("/alerts/")
    assert resp.status_code == 200 and "GT-101 高报" in resp.content.decode()
    assert 'id="alert-banner"' in resp.content.decode()
    assert client.get(f"/alerts/{alert.pk}/").status_code == 200
    resp = client.post(f"/alerts/{alert.pk}/acknowledge/", {"next": "board"})
    assert resp.status_code == 302
    alert.refresh_from_db()
    assert alert.state == "active_ack"
    client.force_login(world.other_inspector)
    assert client.get(f"/alerts/{alert.pk}/").status_code == 404
    assert client.post(f"/alerts/{alert.pk}/acknowledge/").status_code == 404
    assert client.get("/alerts/analytics/").status_code == 200
    assert client.get("/alerts/all/?state=normal").status_code == 200
    assert Alert.objects.filter(state="active_ack").count() == 1


def test_operating_mode_switches_the_schedule_the_runtime_uses(rt, world, gas, client):
    from datetime import UTC, datetime

    from alerts.models import AlertRule, ThresholdSchedule
    from devices.hooks import publish_readings
    from tests.alerts.conftest import reading

    rule = AlertRule.objects.get(pk=gas.rule.pk)
    ThresholdSchedule.objects.create(rule=rule, name="检修", operating_mode="overhaul", high=60, high_high=80)
    api = client_for(world.enterprise_user)
    assert api.get(f"/api/v1/operating-modes/{world.here.pk}/").json()["mode"] == "normal"
    assert api.put(f"/api/v1/operating-modes/{world.here.pk}/", {"mode": "bogus"}, format="json").status_code == 400
    assert api.put(f"/api/v1/operating-modes/{world.here.pk}/", {"mode": "overhaul"}, format="json").status_code == 200
    assert client_for(world.other_inspector).get(f"/api/v1/operating-modes/{world.here.pk}/").status_code == 404
    publish_readings([reading(gas.channel, 40, datetime(2026, 3, 1, tzinfo=UTC))])
    assert not Alert.objects.exists()  # 40 < 60 during overhaul
    client.force_login(world.enterprise_user)
    resp = client.post(f"/alerts/mode/{world.here.pk}/", {"mode": "normal", "next": "/alerts/"})
    assert resp.status_code == 302 and resp.url == "/alerts/"
    publish_readings([reading(gas.channel, 40, datetime(2026, 3, 1, 0, 0, 1, tzinfo=UTC))])
    assert Alert.objects.get().kind == "high"


def test_rule_overrides_by_authorised_people_in_scope_only(world, gas, other_gas):
    manager = f.enterprise_user("mgr", world.here, EnterpriseRole.SAFETY_MANAGER)
    body = {"name": "GT-101 专用", "channel": gas.channel.pk, "high": 15, "high_high": 40, "level_high_high": 1}
    # A plain inspector or safety officer may not; the enterprise's safety manager may.
    assert client_for(world.inspector).post("/api/v1/alert-rules/", body, format="json").status_code == 403
    assert client_for(world.enterprise_user).post("/api/v1/alert-rules/", body, format="json").status_code == 403
    resp = client_for(manager).post("/api/v1/alert-rules/", body, format="json")
    assert resp.status_code == 201, resp.json()
    rule_id = resp.json()["id"]
    # A second rule for the same channel is refused with a reason, not a 500.
    assert client_for(manager).post("/api/v1/alert-rules/", body, format="json").status_code == 400
    # Limits out of order are refused.
    resp = client_for(manager).patch(f"/api/v1/alert-rules/{rule_id}/", {"high": 50}, format="json")
    assert resp.status_code == 400
    # Another county's device is out of reach (it reads as absent), and the defaults are for superusers.
    theirs = {"name": "x", "device": other_gas.device.pk, "quantity": "combustible_gas", "high": 5}
    refused = client_for(manager).post("/api/v1/alert-rules/", theirs, format="json")
    assert refused.status_code == 400 and "device" in refused.json()
    resp = client_for(manager).patch(f"/api/v1/alert-rules/{gas.rule.pk}/", {"high": 1}, format="json")
    assert resp.status_code == 403
    from regulator.models import AuditEntry

    assert AuditEntry.objects.filter(event="alert.rule_created", user=manager).exists()


def test_linkage_must_stay_inside_the_rule_owners_enterprise(world, gas, other_gas):
    head = f.user("head2", "section_head", jurisdiction=world.regions["city"])
    body = {
        "name": "跨企业联动",
        "device": gas.device.pk,
        "quantity": "combustible_gas",
        "high": 20,
        "linkage_device": other_gas.device.pk,
        "linkage_unit_id": 1,
        "linkage_address": 0,
    }
    resp = client_for(head).post("/api/v1/alert-rules/", body, format="json")
    assert resp.status_code == 400 and resp.json()["field"] == "linkage_device"
    body["linkage_device"] = gas.device.pk
    assert client_for(head).post("/api/v1/alert-rules/", body, format="json").status_code == 201


def test_acknowledge_a_whole_flood_group_in_one_click(rt, world, gas, django_capture_on_commit_callbacks):
    from devices.hooks import publish_readings
    from devices.models import Channel
    from tests.alerts.conftest import reading

    for i in range(12):
        ch = Channel.objects.create(
            device=gas.device, tag=f"F-{i}", name="点", address=20 + i, quantity="combustible_gas"
        )
        publish_readings([reading(ch, 30)])
    member = Alert.objects.filter(flood_group__isnull=False).last()
    resp = client_for(world.enterprise_user).post(f"/api/v1/alerts/{member.pk}/acknowledge-group/", {}, format="json")
    assert resp.status_code == 200 and resp.json()["acknowledged_count"] == 12
    assert not Alert.objects.filter(state="active_unack").exists()
    assert client_for(world.other_inspector).post(f"/api/v1/alerts/{member.pk}/acknowledge-group/").status_code == 404
