"""Operating devices from the browser: maintenance mode and manual coil writes, through the same
services as the API, with CSRF, POST-redirect-GET, permissions (403), scoping (404) and audit."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import Client
from django.urls import reverse

from devices.choices import CoilWriteStatus
from devices.models import Channel, CoilWriteCommand, Device
from devices.services import coil_write_execute_sync, coil_write_finish
from regulator.choices import EnterpriseRole
from regulator.models import AuditEntry
from tests import factories as f
from tests.devices.helpers import free_port, tcp_server


def client_for(user, *, csrf=False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def csrf_post(client: Client, page_url: str, url: str, data: dict):
    """Post like a browser: load the page (which sets the CSRF cookie), send its token back."""
    page = client.get(page_url)
    assert page.status_code == 200
    token = client.cookies["csrftoken"].value
    return client.post(url, {**data, "csrfmiddlewaretoken": token})


def page_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def valve(devices):
    """A writable coil (a shut-off valve) on the gateway of the enterprise 'here'."""
    return Channel.objects.create(
        device=devices["here"],
        tag="XV-101",
        name="罐区切断阀",
        register_type="coil",
        data_type="bool",
        unit_id=2,
        address=7,
        writable=True,
    )


# --- maintenance mode ---------------------------------------------------------------------------


def test_inspector_puts_device_into_maintenance_and_back_with_reason_audited(world, devices):
    device = devices["here"]
    client = client_for(world.inspector, csrf=True)
    detail = reverse("devices:detail", args=[device.pk])
    url = reverse("devices:maintenance", args=[device.pk])

    page = client.get(detail)
    assert b'action="' + url.encode() + b'"' in page.content
    assert "进入维护模式" in page.content.decode()

    resp = csrf_post(client, detail, url, {"maintenance": "on", "reason": "可燃气体探头标定"})
    assert resp.status_code == 302 and resp.url == detail
    device.refresh_from_db()
    assert device.maintenance is True
    entry = AuditEntry.objects.get(event="devices.maintenance_on")
    assert entry.user == world.inspector and entry.object_id == str(device.pk)
    assert entry.detail == {"reason": "可燃气体探头标定"}

    after = client.get(detail)
    assert "设备已进入维护模式" in " ".join(page_messages(after))
    assert "退出维护模式" in after.content.decode()

    resp = csrf_post(client, detail, url, {"maintenance": "off", "reason": "标定完成"})
    assert resp.status_code == 302
    device.refresh_from_db()
    assert device.maintenance is False
    assert AuditEntry.objects.get(event="devices.maintenance_off").detail == {"reason": "标定完成"}


def test_maintenance_needs_a_reason_and_a_repeat_changes_nothing(world, devices):
    device = devices["here"]
    client = client_for(world.inspector)
    url = reverse("devices:maintenance", args=[device.pk])

    resp = client.post(url, {"maintenance": "on", "reason": "  "})
    assert resp.status_code == 400
    assert "请填写原因" in resp.content.decode()
    device.refresh_from_db()
    assert device.maintenance is False
    assert not AuditEntry.objects.filter(event__startswith="devices.maintenance").exists()

    client.post(url, {"maintenance": "on", "reason": "检修"})
    resp = client.post(url, {"maintenance": "on", "reason": "再次检修"}, follow=True)
    assert "设备已处于维护模式" in " ".join(page_messages(resp))
    assert AuditEntry.objects.filter(event="devices.maintenance_on").count() == 1


def test_maintenance_post_without_csrf_token_is_refused(world, devices):
    device = devices["here"]
    client = client_for(world.inspector, csrf=True)
    resp = client.post(reverse("devices:maintenance", args=[device.pk]), {"maintenance": "on", "reason": "x"})
    assert resp.status_code == 403
    device.refresh_from_db()
    assert device.maintenance is False


def test_enterprise_user_sees_no_controls_and_is_refused_403(world, devices, valve):
    device = devices["here"]
    client = client_for(world.enterprise_user)
    page = client.get(reverse("devices:detail", args=[device.pk]))
    assert page.status_code == 200
    assert reverse("devices:maintenance", args=[device.pk]) not in page.content.decode()
    resp = client.post(reverse("devices:maintenance", args=[device.pk]), {"maintenance": "on", "reason": "x"})
    assert resp.status_code == 403
    device.refresh_from_db()
    assert device.maintenance is False

    channel_page = client.get(reverse("devices:channel", args=[valve.pk]))
    assert reverse("devices:coil_write", args=[valve.pk]) not in channel_page.content.decode()
    assert "只有监管人员可以下发线圈写入" in channel_page.content.decode()
    resp = client.post(reverse("devices:coil_write", args=[valve.pk]), {"value": "1", "reason": "试一下"})
    assert resp.status_code == 403
    assert not CoilWriteCommand.objects.exists()


def test_out_of_jurisdiction_device_and_channel_answer_404(world, devices):
    there = devices["there"]
    coil = Channel.objects.create(
        device=there, tag="XV-9", name="阀", register_type="coil", data_type="bool", address=1, writable=True
    )
    client = client_for(world.inspector)
    assert (
        client.post(reverse("devices:maintenance", args=[there.pk]), {"maintenance": "on", "reason": "x"}).status_code
        == 404
    )
    assert client.post(reverse("devices:coil_write", args=[coil.pk]), {"value": "1", "reason": "x"}).status_code == 404
    there.refresh_from_db()
    assert there.maintenance is False and not CoilWriteCommand.objects.exists()
    # The inspector of that county may.
    other = client_for(world.other_inspector)
    assert (
        other.post(reverse("devices:maintenance", args=[there.pk]), {"maintenance": "on", "reason": "x"}).status_code
        == 302
    )


def test_controls_only_answer_post(world, devices, valve):
    client = client_for(world.inspector)
    assert client.get(reverse("devices:maintenance", args=[devices["here"].pk])).status_code == 405
    assert client.get(reverse("devices:coil_write", args=[valve.pk])).status_code == 405


def test_alerts_of_a_device_put_in_maintenance_from_the_page_are_suppressed(world, devices):
    from alerts import services as alert_services
    from alerts.choices import AlertState

    device, channel = devices["here"], devices["gas_here"]
    alert = alert_services.alert_raise(
        enterprise=world.here, kind="high", level=2, message="GT-101 高报", device=device, channel=channel, value=30
    )
    client = client_for(world.inspector)
    client.post(reverse("devices:maintenance", args=[device.pk]), {"maintenance": "on", "reason": "探头更换"})
    alert_services.alerts_apply_maintenance()  # the periodic task
    alert.refresh_from_db()
    assert alert.state == AlertState.SUPPRESSED

    client.post(reverse("devices:maintenance", args=[device.pk]), {"maintenance": "off", "reason": "更换完毕"})
    alert_services.alerts_apply_maintenance()
    alert.refresh_from_db()
    assert alert.state == AlertState.ACTIVE_UNACK


# --- coil writes --------------------------------------------------------------------------------


def test_inspector_queues_a_coil_write_with_confirmation_and_follows_its_status(world, devices, valve):
    client = client_for(world.inspector, csrf=True)
    page_url = reverse("devices:channel", args=[valve.pk])
    url = reverse("devices:coil_write", args=[valve.pk])

    page = client.get(page_url).content.decode()
    assert f'action="{url}"' in page
    assert 'name="value" value="1"' in page and 'name="value" value="0"' in page
    assert "data-confirm=" in page  # the browser asks before the valve moves

    resp = csrf_post(client, page_url, url, {"value": "1", "reason": "GT-101 高报，现场确认后关闭切断阀"})
    assert resp.status_code == 302 and resp.url == page_url
    cmd = CoilWriteCommand.objects.get()
    assert (cmd.device_id, cmd.unit_id, cmd.address, cmd.value) == (devices["here"].pk, 2, 7, True)
    assert cmd.status == CoilWriteStatus.PENDING and cmd.requested_by == world.inspector
    entry = AuditEntry.objects.get(event="devices.coil_write_requested")
    assert entry.user == world.inspector and entry.detail["address"] == 7 and entry.detail["value"] is True

    after = client.get(page_url)
    assert f"写入指令 #{cmd.pk} 已下发" in " ".join(page_messages(after))
    assert 'data-status="pending"' in after.content.decode()

    # The poller claims it (pending -> running), writes, reads back and confirms it: the page follows.
    CoilWriteCommand.objects.filter(pk=cmd.pk).update(status=CoilWriteStatus.RUNNING)
    assert 'data-status="running"' in client.get(page_url).content.decode()
    coil_write_finish(command_id=cmd.pk, ok=True, readback=True, error="", poller="t")
    html = client.get(page_url).content.decode()
    assert 'data-status="done"' in html and "回读 1" in html

    # A second one, refused by the device, shows as failed with the device's answer.
    client.post(url, {"value": "0", "reason": "复位"}, HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    second = CoilWriteCommand.objects.order_by("-id").first()
    assert second.pk != cmd.pk and second.value is False
    CoilWriteCommand.objects.filter(pk=second.pk).update(status=CoilWriteStatus.RUNNING)
    coil_write_finish(command_id=second.pk, ok=False, readback=None, error="写入被拒绝(异常码 2)", poller="t")
    html = client.get(page_url).content.decode()
    assert 'data-status="failed"' in html and "写入被拒绝(异常码 2)" in html
    device_page = client.get(reverse("devices:detail", args=[devices["here"].pk])).content.decode()
    assert 'data-status="failed"' in device_page and 'data-status="done"' in device_page


def test_coil_write_needs_a_value_and_a_reason(world, devices, valve):
    client = client_for(world.inspector)
    url = reverse("devices:coil_write", args=[valve.pk])
    resp = client.post(url, {"value": "1", "reason": ""})
    assert resp.status_code == 400 and "请填写写入原因" in resp.content.decode()
    resp = client.post(url, {"value": "2", "reason": "x"})
    assert resp.status_code == 400 and "写入值只能是 1 或 0" in resp.content.decode()
    assert not CoilWriteCommand.objects.exists()


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda ch: Channel.objects.filter(pk=ch.pk).update(writable=False), "未开启“允许联动写入”"),
        (lambda ch: Device.objects.filter(pk=ch.device_id).update(maintenance=True), "设备处于维护模式"),
        (lambda ch: Device.objects.filter(pk=ch.device_id).update(enabled=False), "设备已停用"),
    ],
    ids=["not-writable", "in-maintenance", "disabled"],
)
def test_coil_write_that_could_only_fail_is_refused_with_the_reason(world, devices, valve, setup, message):
    setup(valve)
    client = client_for(world.inspector)
    page = client.get(reverse("devices:channel", args=[valve.pk])).content.decode()
    assert message in page and reverse("devices:coil_write", args=[valve.pk]) not in page
    resp = client.post(reverse("devices:coil_write", args=[valve.pk]), {"value": "1", "reason": "x"})
    assert resp.status_code == 400 and message in resp.content.decode()
    assert not CoilWriteCommand.objects.exists()


def test_a_measuring_channel_has_no_write_control_and_refuses_writes(world, devices):
    gas = devices["gas_here"]
    client = client_for(world.inspector)
    page = client.get(reverse("devices:channel", args=[gas.pk])).content.decode()
    assert "coil-control" not in page
    resp = client.post(reverse("devices:coil_write", args=[gas.pk]), {"value": "1", "reason": "x"})
    assert resp.status_code == 400 and "只有线圈测点可以写入" in resp.content.decode()
    assert not CoilWriteCommand.objects.exists()


def test_superuser_may_operate_but_a_park_manager_may_not(world, devices, valve):
    admin = f.user("root", "regulator_admin", is_superuser=True)
    resp = client_for(admin).post(reverse("devices:coil_write", args=[valve.pk]), {"value": "0", "reason": "复位"})
    assert resp.status_code == 302 and CoilWriteCommand.objects.count() == 1
    manager = f.enterprise_user("mgr", world.here, enterprise_role=EnterpriseRole.SAFETY_MANAGER)
    resp = client_for(manager).post(
        reverse("devices:maintenance", args=[devices["here"].pk]), {"maintenance": "on", "reason": "x"}
    )
    assert resp.status_code == 403
    resp = client_for(world.park_manager).post(
        reverse("devices:maintenance", args=[devices["here"].pk]), {"maintenance": "on", "reason": "x"}
    )
    assert resp.status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_write_from_the_page_reaches_a_real_modbus_server_and_shows_confirmed(world):
    """End to end: the page queues it, the executor writes and reads it back, the page says 已确认."""
    port = free_port()
    device = Device.objects.create(enterprise=world.here, name="罐区网关", host="127.0.0.1", port=port, timeout_ms=500)
    valve = Channel.objects.create(
        device=device, tag="XV-101", name="切断阀", register_type="coil", data_type="bool", address=3, writable=True
    )
    client = client_for(world.inspector)
    resp = client.post(reverse("devices:coil_write", args=[valve.pk]), {"value": "1", "reason": "联动测试"})
    assert resp.status_code == 302
    cmd = CoilWriteCommand.objects.get()

    async def scenario():
        server = await tcp_server(port)
        try:
            done = await sync_to_async(coil_write_execute_sync)(command=cmd)
            coil = await server.context.async_getValues(1, 1, 3, 1)
        finally:
            await server.shutdown()
            await sync_to_async(connections.close_all)()
        return done, coil

    done, coil = asyncio.run(scenario())
    assert coil == [True]
    assert done.status == CoilWriteStatus.DONE and done.readback is True
    html = client.get(reverse("devices:channel", args=[valve.pk])).content.decode()
    assert 'data-status="done"' in html and "已确认" in html and "回读 1" in html
    assert AuditEntry.objects.filter(event="devices.coil_write", object_id=str(cmd.pk), outcome="success").exists()
