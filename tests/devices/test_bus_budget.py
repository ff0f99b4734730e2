"""The wire budget of an RTU bus: frame arithmetic against the measured figures, and a configuration that
does not fit in its poll period (or a second device on the same serial port) refused by form and API."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from devices import buses
from devices.choices import Protocol
from devices.forms import DeviceForm
from devices.models import Channel, Device
from tests.factories import PASSWORD


def client_for(user):
    c = APIClient()
    assert c.login(username=user.username, password=PASSWORD)
    return c


# --- the arithmetic ---------------------------------------------------------------------------


def test_a_ten_register_read_at_9600_8n1_is_41_7_ms_about_24_reads_a_second():
    ms = buses.read_ms(register_type="holding", count=10, baudrate=9600, bytesize=8, parity="N", stopbits=1)
    assert ms == pytest.approx(41.67, abs=0.05)  # 33 characters + two 3.5-character gaps, 10 bits each
    assert int(1000 / ms) == 24


def test_at_115200_the_gap_is_fixed_and_a_read_is_6_4_ms():
    ms = buses.read_ms(register_type="holding", count=10, baudrate=115200)
    assert ms == pytest.approx(6.36, abs=0.05)
    assert buses.gap_ms(115200, 10) == 1.75


def test_character_bits_follow_the_framing():
    assert buses.character_bits(8, "N", 1) == 10
    assert buses.character_bits(8, "E", 1) == 11
    assert buses.character_bits(8, "N", 2) == 11
    assert buses.character_bits(7, "O", 1) == 10
    eleven = buses.read_ms(register_type="holding", count=10, baudrate=9600, parity="E")
    assert eleven == pytest.approx(41.67 * 11 / 10, abs=0.05)


def test_bits_are_packed_eight_a_byte_in_the_response():
    assert buses.response_bytes("coil", 1) == 6
    assert buses.response_bytes("discrete", 17) == 8
    assert buses.response_bytes("input", 10) == 25


def test_budget_counts_the_block_reads_the_poller_plans_plus_turnaround(settings):
    settings.DEVICES_RTU_TURNAROUND_MS = 5
    chans = [Channel(unit_id=1, register_type="holding", address=a, data_type="uint16") for a in range(10)]
    chans += [Channel(unit_id=2, register_type="holding", address=0, data_type="float32")]
    budget = buses.bus_budget(channels=chans, baudrate=9600, bytesize=8, parity="N", stopbits=1, period_ms=90)
    one_ten = buses.read_ms(register_type="holding", count=10, baudrate=9600)
    one_two = buses.read_ms(register_type="holding", count=2, baudrate=9600)
    assert budget.reads == 2  # ten registers of unit 1 merged into one read, unit 2 its own
    assert budget.wire_ms == pytest.approx(one_ten + one_two + 2 * 5)
    assert budget.percent == pytest.approx(100 * budget.wire_ms / 90)
    assert not budget.over and budget.warn  # 85 %: above the 80 % warning line
    assert budget.as_dict()["reads_per_cycle"] == 2


# --- refusing what does not fit --------------------------------------------------------------------


@pytest.fixture
def bus(world):
    """A 9600-baud bus polled every 60 ms with two units of one register: 2 x 27.9 ms = 93 %."""
    device = Device.objects.create(
        enterprise=world.here,
        name="泵房RS-485",
        protocol=Protocol.RTU,
        serial_port="/dev/ttyUSB7",
        baudrate=9600,
        poll_period_ms=60,
        timeout_ms=50,
    )
    for unit in (1, 2):
        Channel.objects.create(device=device, tag=f"GT-{unit}", name=f"气体{unit}", unit_id=unit, address=0)
    return device


def test_the_bus_fixture_is_at_93_percent(bus, settings):
    settings.DEVICES_RTU_TURNAROUND_MS = 5
    assert bus.bus_budget.percent == pytest.approx(93.1, abs=0.1)


def test_api_refuses_a_channel_that_pushes_the_bus_over_and_lets_one_that_merges(world, bus):
    c = client_for(world.inspector)
    body = {"device": bus.pk, "tag": "GT-3", "name": "气体3", "unit_id": 3, "address": 0}
    r = c.post("/api/v1/channels/", body, format="json")
    assert r.status_code == 400, r.content
    message = " ".join(r.json()["non_field_errors"])
    assert "RTU 总线" in message and "/dev/ttyUSB7" in message and "83.8" in message
    assert not Channel.objects.filter(tag="GT-3").exists()
    # Next to unit 1's register: merged into the same read, the bus stays within budget.
    r = c.post("/api/v1/channels/", {**body, "unit_id": 1, "address": 1}, format="json")
    assert r.status_code == 201, r.content


def test_api_change_of_a_channel_is_counted_once_and_a_change_that_splits_reads_is_refused(world, bus):
    c = client_for(world.inspector)
    gt1 = Channel.objects.get(device=bus, tag="GT-1")
    r = c.patch(f"/api/v1/channels/{gt1.pk}/", {"name": "改名"}, format="json")
    assert r.status_code == 200, r.content  # the channel replaces its stored self, not added twice
    Channel.objects.create(device=bus, tag="GT-1B", name="同一读取", unit_id=1, address=1)
    r = c.patch(f"/api/v1/channels/{gt1.pk}/", {"address": 40}, format="json")  # now a read of its own
    assert r.status_code == 400 and "RTU 总线" in r.content.decode()


def test_api_refuses_a_device_change_that_overloads_the_bus(world, bus):
    c = client_for(world.inspector)
    r = c.patch(f"/api/v1/devices/{bus.pk}/", {"poll_period_ms": 50}, format="json")
    assert r.status_code == 400 and "poll_period_ms" in r.json()
    r = c.patch(f"/api/v1/devices/{bus.pk}/", {"baudrate": 4800}, format="json")
    assert r.status_code == 400
    r = c.patch(f"/api/v1/devices/{bus.pk}/", {"baudrate": 19200, "poll_period_ms": 50}, format="json")
    assert r.status_code == 200, r.content
    bus.refresh_from_db()
    assert (bus.baudrate, bus.poll_period_ms) == (19200, 50)


def test_api_device_detail_shows_the_bus_budget(world, bus, devices):
    c = client_for(world.inspector)
    data = c.get(f"/api/v1/devices/{bus.pk}/").json()["bus_budget"]
    assert data["reads_per_cycle"] == 2 and data["utilisation_percent"] == pytest.approx(93.1, abs=0.1)
    assert data["warn"] is True and data["over"] is False
    assert c.get(f"/api/v1/devices/{devices['here'].pk}/").json()["bus_budget"] is None  # TCP: no shared wire


def test_form_refuses_an_over_budget_bus_in_chinese(world, bus):
    data = {
        "enterprise": world.here.pk,
        "name": bus.name,
        "location": "",
        "protocol": "rtu",
        "host": "",
        "port": 502,
        "serial_port": bus.serial_port,
        "baudrate": 4800,
        "parity": "N",
        "stopbits": 1,
        "bytesize": 8,
        "poll_period_ms": 60,
        "timeout_ms": 50,
        "retries": 0,
        "enabled": "on",
    }
    form = DeviceForm(data, instance=bus)
    assert not form.is_valid()
    assert "超过采集周期" in form.errors["poll_period_ms"][0]
    assert DeviceForm({**data, "poll_period_ms": 200}, instance=Device.objects.get(pk=bus.pk)).is_valid()


def test_device_page_shows_the_bus_utilisation(world, bus, client):
    client.login(username=world.inspector.username, password=PASSWORD)
    page = client.get(f"/devices/{bus.pk}/").content.decode()
    assert "总线占用" in page and "93.1%" in page and "接近上限" in page


# --- one serial port, one bus -----------------------------------------------------------------------


def test_a_second_rtu_device_on_the_same_serial_port_is_refused(world, bus):
    c = client_for(world.inspector)
    body = {"enterprise": world.here.pk, "name": "第二台", "protocol": "rtu", "serial_port": bus.serial_port}
    r = c.post("/api/v1/devices/", body, format="json")
    assert r.status_code == 400 and "serial_port" in r.json()
    assert "从站" in r.json()["serial_port"][0]  # says to add the unit as a channel of that bus
    form = DeviceForm({**body, "port": 502, "baudrate": 9600, "parity": "N", "stopbits": 1, "bytesize": 8,
                       "poll_period_ms": 100, "timeout_ms": 300, "retries": 0})  # fmt: skip
    assert not form.is_valid() and "serial_port" in form.errors
    assert c.post("/api/v1/devices/", {**body, "serial_port": "/dev/ttyUSB8"}, format="json").status_code == 201
    with pytest.raises(IntegrityError), transaction.atomic():  # and the database says so too
        Device.objects.create(enterprise=world.here, name="绕过校验", protocol="rtu", serial_port=bus.serial_port)


def test_the_demo_devices_pass_the_bus_validation(world, monkeypatch, tmp_path, settings):
    """seed_demo creates rows directly: what it creates must still be a configuration the forms accept."""
    import random
    from types import SimpleNamespace

    from django.utils import timezone

    from devices import demo

    settings.DATA_DIR = tmp_path
    monkeypatch.setattr(demo, "_status_history", lambda ctx, devices: None)  # history is not configuration
    type(world.here).objects.filter(pk=world.here.pk).update(high_risk_sector="chemicals")
    ctx = SimpleNamespace(rng=random.Random(1), shared={}, now=timezone.now(), logins=[], log=lambda *a: None)
    demo.seed(ctx)
    rtu = Device.objects.filter(protocol=Protocol.RTU)
    assert rtu.exists()
    for device in Device.objects.all():
        device.full_clean()
        for channel in device.channels.all():
            channel.full_clean()
    assert all(not d.bus_budget.over for d in rtu)


def test_channels_added_together_in_the_admin_are_budgeted_together(world):
    """Each new channel alone fits (2 + 1 reads = 84 %), both together do not (112 %)."""
    from django.forms import inlineformset_factory

    from devices.forms import ChannelInlineFormSet

    device = Device.objects.create(
        enterprise=world.here,
        name="总线",
        protocol="rtu",
        serial_port="/dev/ttyUSB5",
        baudrate=9600,
        poll_period_ms=100,
    )
    for unit in (1, 2):
        Channel.objects.create(device=device, tag=f"GT-{unit}", name="气体", unit_id=unit, address=0)
    fields = ["tag", "name", "unit_id", "register_type", "address", "data_type", "enabled"]
    FormSet = inlineformset_factory(Device, Channel, formset=ChannelInlineFormSet, fields=fields, extra=2)
    existing = list(device.channels.order_by("pk"))
    data = {"channels-TOTAL_FORMS": "4", "channels-INITIAL_FORMS": "2"}
    for i, ch in enumerate(existing):
        data |= {f"channels-{i}-id": ch.pk, f"channels-{i}-tag": ch.tag, f"channels-{i}-name": ch.name}
        data |= {f"channels-{i}-unit_id": ch.unit_id, f"channels-{i}-address": 0, f"channels-{i}-enabled": "on"}
        data |= {f"channels-{i}-register_type": "holding", f"channels-{i}-data_type": "uint16"}
    for i, unit in ((2, 3), (3, 4)):
        data |= {f"channels-{i}-tag": f"GT-{unit}", f"channels-{i}-name": "气体", f"channels-{i}-unit_id": unit}
        data |= {f"channels-{i}-address": 0, f"channels-{i}-enabled": "on"}
        data |= {f"channels-{i}-register_type": "holding", f"channels-{i}-data_type": "uint16"}
    formset = FormSet(data, instance=device)
    assert not formset.is_valid()
    assert "RTU 总线" in " ".join(formset.non_form_errors())
    data["channels-3-enabled"] = ""  # the fourth unit configured but not polled: fits
    formset = FormSet(data, instance=device)
    assert formset.is_valid(), (formset.errors, formset.non_form_errors())
