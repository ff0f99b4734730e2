"""End to end with real processes: simulator (gas-leak), poller, Daphne and a Celery worker against
PostgreSQL and Redis. A WebSocket client logged in as an inspector of the county receives the alert,
one of the next county does not; the level-1 linkage writes the coil on the simulator (confirmed by
read-back); escalation happens when nobody acknowledges.

Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/regulator_alerts .venv/bin/pytest -m e2e tests/alerts
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.alerts.e2e_support import _port_open, free_port, session_key, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


async def listen(port: int, key: str, messages: list, stop: asyncio.Event, ready: asyncio.Event):
    from websockets.asyncio.client import connect

    async with connect(
        f"ws://127.0.0.1:{port}/ws/alerts/",
        additional_headers={"Cookie": f"sessionid={key}"},
        origin=f"http://127.0.0.1:{port}",
        open_timeout=10,
    ) as ws:
        await ws.send(json.dumps({"type": "hello", "last_id": 0}))
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except TimeoutError:
                continue
            msg = json.loads(raw)
            messages.append(msg)
            if msg["type"] == "snapshot":
                ready.set()


def test_gas_leak_reaches_this_county_only_closes_the_valve_and_escalates(world, processes):
    from alerts.models import Alert, AlertEscalation, AlertRule
    from devices.models import Channel, CoilWriteCommand, Device

    start, logdir = processes
    modbus_port, web_port = free_port(), free_port()
    device = Device.objects.create(
        enterprise=world.here,
        name="罐区采集网关",
        host="127.0.0.1",
        port=modbus_port,
        poll_period_ms=100,
        timeout_ms=200,
    )
    Channel.objects.create(
        device=device,
        tag="GT-E2E",
        name="罐区可燃气体",
        address=0,
        data_type="uint16",
        scale=0.1,
        quantity="combustible_gas",
        unit="%LEL",
        range_low=0,
        range_high=100,
        sentinels=[65535],
    )
    Channel.objects.create(
        device=device,
        tag="XV-E2E",
        name="紧急切断阀",
        register_type="coil",
        address=0,
        data_type="bool",
        quantity="state",
        writable=True,
    )
    AlertRule.objects.create(
        name="可燃气体",
        quantity="combustible_gas",
        high=20,
        high_high=50,
        deadband=2,
        level_high=2,
        level_high_high=1,
        linkage_device=device,
        linkage_unit_id=1,
        linkage_address=0,
        linkage_value=True,
    )
    mine, theirs = session_key(world.inspector), session_key(world.other_inspector)
    py = sys.executable
    start(
        "daphne", str(Path(py).parent / "daphne"), "-b", "127.0.0.1", "-p", str(web_port), "regulator.asgi:application"
    )
    start(
        "simulator",
        py,
        "manage.py",
        "simulate_devices",
        "--scenario",
        "gas-leak",
        "--enterprise",
        str(world.here.pk),
        "--after",
        "4",
        "--ramp",
        "4",
        "--no-rtu",
    )
    start("poller", py, "manage.py", "poll_devices", "--name", "e2e")
    start("celery", py, "-m", "celery", "-A", "regulator", "worker", "--pool", "solo", "-l", "warning", "-n", "e2e@%h")
    wait_for(lambda: _port_open("127.0.0.1", web_port), 30, "daphne to listen")

    async def scenario():
        stop = asyncio.Event()
        mine_msgs, their_msgs = [], []
        r1, r2 = asyncio.Event(), asyncio.Event()
        tasks = [
            asyncio.create_task(listen(web_port, mine, mine_msgs, stop, r1)),
            asyncio.create_task(listen(web_port, theirs, their_msgs, stop, r2)),
        ]
        await asyncio.wait_for(asyncio.gather(r1.wait(), r2.wait()), 20)

        def level_one():
            return [
                m
                for m in mine_msgs
                if m["type"] == "alert" and m["alert"]["level"] == 1 and m["alert"]["kind"] == "high_high"
            ]

        deadline = time.monotonic() + 40
        while not level_one() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # give the other county every chance to (wrongly) hear it
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        return mine_msgs, their_msgs, level_one()

    mine_msgs, their_msgs, level_one = asyncio.run(scenario())
    assert level_one, f"inspector got no level-1 alert; logs in {logdir}: {mine_msgs[-5:]}"
    assert level_one[0]["alert"]["enterprise"]["id"] == world.here.pk
    assert level_one[0]["alert"]["colour"] == "red"
    assert not [m for m in their_msgs if m["type"] == "alert"], "the next county must not receive it"

    # Level-1 linkage: the poller wrote the coil and confirmed it by read-back.
    command = wait_for(
        lambda: CoilWriteCommand.objects.filter(device=device, status="done").first(), 20, "the coil write"
    )
    assert command.readback is True and command.address == 0
    assert _read_coil(modbus_port) is True
    alert = Alert.objects.get(kind="high_high")
    wait_for(lambda: Alert.objects.filter(pk=alert.pk, linkage_status="confirmed").exists(), 15, "linkage confirmed")
    assert alert.responses.filter(kind="valve_closed").exists()
    assert alert.responses.filter(kind="county_reported").exists()

    # Nobody acknowledges: once the deadline has passed, the beat task escalates it one tier.
    past = timezone.now() - timedelta(seconds=1)
    Alert.objects.filter(pk=alert.pk).update(ack_due_at=past, escalation_due_at=past)
    from alerts.tasks import escalate_alerts
    from regulator.celery import app

    app.conf.task_always_eager = False  # through the broker to the worker started above
    escalate_alerts.apply_async()
    step = wait_for(lambda: AlertEscalation.objects.filter(alert=alert).first(), 30, "the escalation by Celery")
    assert step.tier == 1  # the park of the enterprise


def _read_coil(port: int) -> bool:
    from pymodbus.client import ModbusTcpClient

    client = ModbusTcpClient("127.0.0.1", port=port, timeout=2)
    assert client.connect()
    try:
        result = client.read_coils(0, count=1, device_id=1)
        assert not result.isError()
        return bool(result.bits[0])
    finally:
        client.close()
