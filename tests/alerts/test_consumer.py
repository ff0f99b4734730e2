"""/ws/alerts/: session auth, Origin check, scoped groups, catch-up by last id, Redis down."""

from __future__ import annotations

import asyncio
import socket

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from alerts import services
from alerts.models import Alert

pytestmark = pytest.mark.django_db(transaction=True)


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def connect(user=None, origin=b"http://testserver"):
    from regulator.asgi import application

    headers = [(b"origin", origin), (b"host", b"testserver")]
    if user is not None:
        key = await sync_to_async(_session_cookie)(user)
        headers.append((b"cookie", f"sessionid={key}".encode()))
    comm = WebsocketCommunicator(application, "/ws/alerts/", headers=headers)
    connected, code = await comm.connect(timeout=5)
    return comm, connected, code


async def hello(comm, last_id=0) -> dict:
    welcome = await comm.receive_json_from(timeout=5)
    assert welcome["type"] == "welcome"
    await comm.send_json_to({"type": "hello", "last_id": last_id})
    snapshot = await comm.receive_json_from(timeout=5)
    assert snapshot["type"] == "snapshot"
    return snapshot


def _raise(enterprise, device, channel, message="GT-101 高报"):
    return services.alert_raise(
        enterprise=enterprise, device=device, channel=channel, kind="high", level=2, message=message, value=30
    ).pk


raise_alert = sync_to_async(_raise)


async def test_anonymous_is_rejected(world):
    comm, connected, _ = await connect(None)
    assert not connected


async def test_foreign_origin_is_rejected(world):
    comm, connected, _ = await connect(world.inspector, origin=b"http://evil.example.com")
    assert not connected


async def test_expired_session_is_rejected(world):
    from django.contrib.sessions.models import Session

    from regulator.asgi import application

    key = await sync_to_async(_session_cookie)(world.inspector)
    await sync_to_async(Session.objects.filter(session_key=key).delete)()
    comm = WebsocketCommunicator(
        application,
        "/ws/alerts/",
        headers=[(b"origin", b"http://testserver"), (b"cookie", f"sessionid={key}".encode())],
    )
    connected, _ = await comm.connect(timeout=5)
    assert not connected


async def test_inspector_of_this_county_receives_and_the_next_county_does_not(world, gas):
    mine, ok1, _ = await connect(world.inspector)
    theirs, ok2, _ = await connect(world.other_inspector)
    park, ok3, _ = await connect(world.park_manager)
    ent, ok4, _ = await connect(world.enterprise_user)
    assert ok1 and ok2 and ok3 and ok4
    for comm in (mine, theirs, park, ent):
        await hello(comm)
    pk = await raise_alert(world.here, gas.device, gas.channel)
    for comm in (mine, park, ent):
        msg = await comm.receive_json_from(timeout=5)
        while msg["type"] != "alert":  # the bell's notification may come first
            msg = await comm.receive_json_from(timeout=5)
        assert msg["event"] == "alert.raised" and msg["alert"]["id"] == pk
        assert msg["alert"]["colour"] == "orange" and msg["alert"]["state"] == "active_unack"
    assert await theirs.receive_nothing(timeout=0.3)
    for comm in (mine, theirs, park, ent):
        await comm.disconnect()


async def test_catch_up_after_reconnect_returns_missed_alerts_and_unacked_snapshot(world, gas):
    comm, ok, _ = await connect(world.inspector)
    first = await hello(comm)
    last_id = first["last_id"]
    await comm.disconnect()
    pk1 = await raise_alert(world.here, gas.device, gas.channel)
    pk2 = await sync_to_async(
        lambda: (
            services.alert_raise(
                enterprise=world.here, device=gas.device, channel=gas.channel, kind="low", level=3, message="低报"
            ).pk
        )
    )()
    comm, ok, _ = await connect(world.inspector)
    snapshot = await hello(comm, last_id)
    assert [a["id"] for a in snapshot["missed"]] == [pk1, pk2]
    assert {a["id"] for a in snapshot["unacked"]} == {pk1, pk2}
    assert snapshot["last_id"] == pk2
    again = await hello_again(comm, pk2)
    assert again["missed"] == []
    await comm.disconnect()


async def hello_again(comm, last_id):
    await comm.send_json_to({"type": "hello", "last_id": last_id})
    return await comm.receive_json_from(timeout=5)


async def test_catch_up_is_scoped(world, gas, other_gas):
    await raise_alert(world.there, other_gas.device, other_gas.channel, "张家港报警")
    comm, ok, _ = await connect(world.inspector)
    snapshot = await hello(comm, 0)
    assert snapshot["missed"] == [] and snapshot["unacked"] == []
    await comm.disconnect()


async def test_ping_pong_and_heartbeat(world, settings):
    settings.ALERT_WS_HEARTBEAT_SECONDS = 0.2
    comm, ok, _ = await connect(world.inspector)
    await hello(comm)
    await comm.send_json_to({"type": "ping"})
    kinds = set()
    for _ in range(3):
        kinds.add((await comm.receive_json_from(timeout=5))["type"])
    assert {"pong", "heartbeat"} <= kinds
    await comm.disconnect()


async def test_socket_closes_when_the_session_goes(world, settings):
    from django.contrib.sessions.models import Session

    settings.ALERT_WS_HEARTBEAT_SECONDS = 0.2
    comm, ok, _ = await connect(world.inspector)
    await hello(comm)
    await sync_to_async(Session.objects.all().delete)()
    seen = []
    while True:
        msg = await comm.receive_output(timeout=5)
        if msg["type"] == "websocket.close":
            assert msg["code"] == 4401
            break
        seen.append(msg)
    assert any("session_expired" in m.get("text", "") for m in seen)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_redis_down_alert_is_stored_and_delivered_on_reconnect(world, gas, settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{_free_port()}/9"]},
        }
    }
    # The push fails (nothing listens on that port) but the write stands.
    pk = await asyncio.wait_for(raise_alert(world.here, gas.device, gas.channel), timeout=20)
    assert await sync_to_async(Alert.objects.filter(pk=pk, state="active_unack").exists)()
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    comm, ok, _ = await connect(world.inspector)
    snapshot = await hello(comm, 0)
    assert [a["id"] for a in snapshot["missed"]] == [pk]
    await comm.disconnect()


async def test_fresh_client_gets_no_history_and_long_absence_is_truncated_to_the_newest(world, gas, monkeypatch):
    from alerts import selectors

    monkeypatch.setattr(selectors, "CATCH_UP_LIMIT", 2)
    ids = []
    for _ in range(3):
        pk = await raise_alert(world.here, gas.device, gas.channel)
        await sync_to_async(Alert.objects.filter(pk=pk).update)(state="normal")  # closed, so the next is new
        ids.append(pk)
    comm, ok, _ = await connect(world.inspector)
    await comm.receive_json_from(timeout=5)  # welcome
    await comm.send_json_to({"type": "hello", "last_id": None})
    fresh = await comm.receive_json_from(timeout=5)
    assert fresh["missed"] == [] and fresh["last_id"] == ids[-1]
    behind = await hello_again(comm, 0)
    assert [a["id"] for a in behind["missed"]] == ids[1:] and behind["truncated"] is True
    await comm.disconnect()
