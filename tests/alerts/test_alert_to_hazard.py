"""转为隐患: an alert becomes a hazard through the hazards service, once, by the right people."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections
from django.test import Client
from django.urls import reverse

from alerts import services as alert_services
from alerts.models import Alert
from hazards.choices import HazardSource, HazardStatus
from hazards.models import Hazard, HazardTransition
from regulator.choices import EnterpriseRole
from regulator.models import AuditEntry
from tests import factories as f


def client_for(user, *, csrf=False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def page_messages(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


@pytest.fixture
def alert(world, gas) -> Alert:
    gas.channel.location = "罐区东侧"
    gas.channel.save(update_fields=["location"])
    return alert_services.alert_raise(
        enterprise=world.here,
        kind="high",
        level=2,
        message="GT-101 罐区可燃气体 高报：25.5%LEL ≥ 20%LEL",
        device=gas.device,
        channel=gas.channel,
        rule=gas.rule,
        value=25.5,
        limit=20.0,
        unit="%LEL",
    )


def form_data(**overrides) -> dict:
    data = {
        "description": "罐区东侧法兰泄漏，可燃气体浓度超过报警值",
        "location": "罐区东侧（GT-101）",
        "category": "equipment",
        "grade": "ordinary",
    }
    data.update(overrides)
    return data


def test_inspector_turns_the_alert_into_a_hazard_and_both_pages_link(world, alert):
    client = client_for(world.inspector, csrf=True)
    detail_url = reverse("alerts:detail", args=[alert.pk])
    url = reverse("alerts:to_hazard", args=[alert.pk])

    page = client.get(detail_url)
    form = page.context["hazard_form"]
    assert form.initial["location"] == "罐区东侧（GT-101）"
    assert form.initial["description"].startswith(alert.message)
    assert f"报警 #{alert.pk}" in form.initial["description"] and "25.5%LEL" in form.initial["description"]
    html = page.content.decode()
    assert f'action="{url}"' in html and "罐区东侧（GT-101）" in html

    token = client.cookies["csrftoken"].value
    resp = client.post(url, {**form_data(), "csrfmiddlewaretoken": token})
    hazard = Hazard.objects.get()
    assert resp.status_code == 302 and resp.url == reverse("hazards:detail", args=[hazard.pk])
    assert hazard.source == HazardSource.DEVICE_ALERT and hazard.source_ref == f"alert:{alert.pk}"
    assert hazard.enterprise == world.here and hazard.location == "罐区东侧（GT-101）"
    assert hazard.description == form_data()["description"] and hazard.category == "equipment"
    assert hazard.found_by == world.inspector and hazard.found_at == alert.raised_at
    # A device alert is not the regulator's own finding: the hazard waits for confirmation.
    assert hazard.status == HazardStatus.REPORTED
    assert HazardTransition.objects.filter(hazard=hazard, action="report", user=world.inspector).exists()
    entry = AuditEntry.objects.get(event="alert.hazard_reported")
    assert entry.user == world.inspector and entry.object_id == str(alert.pk) and entry.detail["hazard"] == hazard.pk

    hazard_page = client.get(resp.url)
    assert f"已将报警 #{alert.pk} 转为隐患 {hazard.code}" in page_messages(hazard_page)
    assert f'href="{detail_url}"' in hazard_page.content.decode()

    again = client.get(detail_url)
    assert again.context["hazard_form"] is None
    html = again.content.decode()
    assert f'href="{reverse("hazards:detail", args=[hazard.pk])}"' in html and hazard.code in html
    assert f'action="{url}"' not in html


def test_a_second_conversion_of_the_same_alert_is_refused(world, alert):
    client_for(world.inspector).post(reverse("alerts:to_hazard", args=[alert.pk]), form_data())
    first = Hazard.objects.get()
    resp = client_for(world.enterprise_user).post(
        reverse("alerts:to_hazard", args=[alert.pk]), form_data(description="重复上报"), follow=True
    )
    assert resp.redirect_chain[-1][0] == reverse("alerts:detail", args=[alert.pk])
    assert f"该报警已转为隐患 {first.code}，不能重复转换" in page_messages(resp)
    assert Hazard.objects.count() == 1
    assert AuditEntry.objects.filter(event="alert.hazard_reported").count() == 1


def test_the_enterprise_safety_officer_and_manager_may_convert(world, alert, gas):
    resp = client_for(world.enterprise_user).post(reverse("alerts:to_hazard", args=[alert.pk]), form_data())
    assert resp.status_code == 302
    assert Hazard.objects.get().found_by == world.enterprise_user

    manager = f.enterprise_user("safetymgr", world.here, enterprise_role=EnterpriseRole.SAFETY_MANAGER)
    other = alert_services.alert_raise(
        enterprise=world.here,
        kind="high_high",
        level=1,
        message="GT-101 高高报",
        device=gas.device,
        channel=gas.channel,
    )
    assert client_for(manager).post(reverse("alerts:to_hazard", args=[other.pk]), form_data()).status_code == 302
    assert Hazard.objects.filter(source_ref=f"alert:{other.pk}", found_by=manager).exists()


@pytest.mark.parametrize("who", ["principal", "park_manager"])
def test_people_who_see_the_alert_but_may_not_convert_get_403_and_no_form(world, alert, who):
    user = (
        f.enterprise_user("boss", world.here, enterprise_role=EnterpriseRole.PRINCIPAL)
        if who == "principal"
        else world.park_manager
    )
    client = client_for(user)
    page = client.get(reverse("alerts:detail", args=[alert.pk]))
    assert page.status_code == 200 and page.context["hazard_form"] is None
    assert client.post(reverse("alerts:to_hazard", args=[alert.pk]), form_data()).status_code == 403
    assert not Hazard.objects.exists()


def test_alerts_outside_the_users_scope_answer_404(world, alert):
    resp = client_for(world.other_inspector).post(reverse("alerts:to_hazard", args=[alert.pk]), form_data())
    assert resp.status_code == 404
    # An MLPS auditor sees no business data at all (refused before or by the scope).
    resp = client_for(world.auditor).post(reverse("alerts:to_hazard", args=[alert.pk]), form_data())
    assert resp.status_code in (403, 404)
    assert not Hazard.objects.exists()


def test_conversion_without_csrf_token_is_refused(world, alert):
    resp = client_for(world.inspector, csrf=True).post(reverse("alerts:to_hazard", args=[alert.pk]), form_data())
    assert resp.status_code == 403
    assert not Hazard.objects.exists()


def test_bad_input_is_answered_400_with_the_reason_and_nothing_is_written(world, alert):
    client = client_for(world.inspector)
    resp = client.post(reverse("alerts:to_hazard", args=[alert.pk]), form_data(description=""))
    assert resp.status_code == 400 and "请填写隐患描述" in resp.content.decode()
    resp = client.post(reverse("alerts:to_hazard", args=[alert.pk]), form_data(grade="catastrophic"))
    assert resp.status_code == 400
    assert not Hazard.objects.exists() and not AuditEntry.objects.filter(event="alert.hazard_reported").exists()
    assert client.get(reverse("alerts:to_hazard", args=[alert.pk])).status_code == 405


def test_a_major_hazard_from_an_alert_is_reported_as_major(world, alert):
    client_for(world.inspector).post(reverse("alerts:to_hazard", args=[alert.pk]), form_data(grade="major"))
    hazard = Hazard.objects.get()
    assert hazard.is_major
    assert AuditEntry.objects.filter(event="hazard.major_reported", object_id=str(hazard.pk)).exists()


def test_device_alert_without_a_channel_uses_the_device_location(world, gas):
    gas.device.location = "二号配电室"
    gas.device.save(update_fields=["location"])
    offline = alert_services.alert_raise(
        enterprise=world.here, kind="device_offline", level=3, message="设备 可燃气体报警控制器 离线", device=gas.device
    )
    form = client_for(world.inspector).get(reverse("alerts:detail", args=[offline.pk])).context["hazard_form"]
    assert form.initial["location"] == "二号配电室"
    assert form.initial["description"].startswith("设备 可燃气体报警控制器 离线")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_people_converting_at_the_same_moment_make_one_hazard(world, alert, monkeypatch):
    from hazards import services as hazard_services

    real_report = hazard_services.hazard_report
    both_in = threading.Barrier(2, timeout=5)

    def slow_report(**kwargs):
        time.sleep(0.3)  # without the alert lock, the other request would pass the existence check now
        return real_report(**kwargs)

    monkeypatch.setattr(hazard_services, "hazard_report", slow_report)
    statuses = []

    def convert(user):
        try:
            client = client_for(user)
            both_in.wait()
            statuses.append(client.post(reverse("alerts:to_hazard", args=[alert.pk]), form_data()).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=convert, args=(u,)) for u in (world.inspector, world.enterprise_user)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert statuses == [302, 302]
    assert Hazard.objects.filter(source_ref=f"alert:{alert.pk}").count() == 1
