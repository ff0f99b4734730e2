"""Every WebSocket checks its session as /ws/alerts/ does (one base class): the device live-value
socket closes on logout and on an idle session; handshakes are refused unless their Origin matches
scheme, host and port, and plain ws:// is refused outside DEBUG unless the proxy says https."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from devices.models import Channel, Device

pytestmark = pytest.mark.django_db(transaction=True)


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def _live(world, *, origin=b"http://testserver", host=b"testserver", extra=()):
    """A live-value socket through the whole application (Origin check, session auth, consumer)."""
    from regulator.asgi import application

    device, _ = await sync_to_async(Device.objects.get_or_create)(
        host="127.0.0.1", port=16102, defaults={"enterprise": world.here, "name": "gw"}
    )
    channel, _ = await sync_to_async(Channel.objects.get_or_create)(
        device=device, tag="GT-1", defaults={"name": "gas", "address": 0}
    )
    key = await sync_to_async(_session_cookie)(world.inspector)
    headers = [(b"origin", origin), (b"host", host), (b"cookie", f"sessionid={key}".encode()), *extra]
    comm = WebsocketCommunicator(application, f"/ws/devices/channels/{channel.pk}/", headers=headers)
    connected, code = await comm.connect(timeout=5)
    return comm, connected, code, key


async def _closed_after_session_expired(comm):
    while True:
        out = await comm.receive_output(timeout=5)
        if out["type"] == "websocket.close":
            return out["code"]
        if out["type"] == "websocket.send" and "session_expired" in (out.get("text") or ""):
            closed = await comm.receive_output(timeout=5)
            return closed["code"]


def test_both_consumers_share_the_session_checked_base():
    from alerts.consumers import AlertConsumer
    from devices.consumers import ChannelLiveConsumer
    from regulator.consumers import SessionCheckedConsumer

    assert issubclass(AlertConsumer, SessionCheckedConsumer)
    assert issubclass(ChannelLiveConsumer, SessionCheckedConsumer)
    # The shared code lives once: neither consumer has its own heartbeat or disconnect.
    for consumer in (AlertConsumer, ChannelLiveConsumer):
        assert "_heartbeat" not in vars(consumer) and "disconnect" not in vars(consumer)


async def test_live_socket_closes_on_logout(world, settings):
    from django.contrib.sessions.models import Session

    settings.ALERT_WS_HEARTBEAT_SECONDS = 0.2
    comm, connected, _, key = await _live(world)
    assert connected
    await sync_to_async(Session.objects.filter(session_key=key).delete)()  # what logout does
    assert await _closed_after_session_expired(comm) == 4401


async def test_live_socket_closes_when_the_session_goes_idle(world, settings):
    from django.contrib.sessions.models import Session

    settings.ALERT_WS_HEARTBEAT_SECONDS = 0.2
    comm, connected, _, key = await _live(world)
    assert connected
    # The idle timeout passed (no HTTP request slid the expiry): the row is still there, but expired.
    await sync_to_async(Session.objects.filter(session_key=key).update)(expire_date=timezone.now() - timedelta(1))
    assert await _closed_after_session_expired(comm) == 4401


async def test_live_socket_with_a_dead_session_does_not_open(world):
    from django.contrib.sessions.models import Session

    from regulator.asgi import application

    device = await sync_to_async(Device.objects.create)(enterprise=world.here, name="gw", host="127.0.0.1", port=16103)
    channel = await sync_to_async(Channel.objects.create)(device=device, tag="GT-1", name="gas", address=0)
    key = await sync_to_async(_session_cookie)(world.inspector)
    await sync_to_async(Session.objects.filter(session_key=key).update)(expire_date=timezone.now() - timedelta(1))
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver"), (b"cookie", f"sessionid={key}".encode())]
    comm = WebsocketCommunicator(application, f"/ws/devices/channels/{channel.pk}/", headers=headers)
    connected, _ = await comm.connect(timeout=5)
    assert not connected


# --- Origin: scheme, host and port ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("origin", "host"),
    [
        (b"https://testserver", b"testserver"),  # scheme differs (the handshake is plain http)
        (b"http://testserver:8000", b"testserver"),  # port differs
        (b"http://testserver", b"testserver:8000"),  # port differs the other way
        (b"http://evil.example.com", b"testserver"),
        (b"http://testserver.evil.example.com", b"testserver"),
        (b"null", b"testserver"),
    ],
)
async def test_origin_must_match_scheme_host_and_port(world, origin, host):
    comm, connected, _, _ = await _live(world, origin=origin, host=host)
    assert not connected


async def test_same_origin_with_its_port_connects(world):
    comm, connected, _, _ = await _live(world, origin=b"http://testserver:8000", host=b"testserver:8000")
    assert connected
    await comm.disconnect()


async def test_plain_ws_is_refused_outside_debug(world, settings):
    settings.WS_ALLOW_INSECURE = False
    comm, connected, _, _ = await _live(world)
    assert not connected


async def test_behind_a_tls_proxy_https_origin_connects_outside_debug(world, settings):
    settings.WS_ALLOW_INSECURE = False
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    comm, connected, _, _ = await _live(world, origin=b"https://testserver", extra=[(b"x-forwarded-proto", b"https")])
    assert connected
    await comm.disconnect()
    # ... and an http origin through that same TLS proxy is a different origin.
    comm, connected, _, _ = await _live(world, origin=b"http://testserver", extra=[(b"x-forwarded-proto", b"https")])
    assert not connected
