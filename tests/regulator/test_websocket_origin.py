"""WebSocket handshakes from a foreign Origin are refused before any consumer runs; idle sockets
can tell that their session is gone."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator


def _session_cookie():
    from django.test import Client

    from regulator.choices import Role
    from tests import factories as f

    regions = f.region_tree()
    user = f.user("ws_inspector", Role.INSPECTOR, jurisdiction=regions["county"])
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def _connect(origin: bytes, cookie: str):
    from regulator.asgi import application

    headers = [(b"origin", origin), (b"host", b"localhost"), (b"cookie", f"sessionid={cookie}".encode())]
    communicator = WebsocketCommunicator(application, "/ws/alerts/", headers=headers)
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    return connected


@pytest.mark.django_db(transaction=True)
async def test_same_origin_connects_foreign_origin_is_refused():
    cookie = await sync_to_async(_session_cookie)()
    assert await _connect(b"http://localhost", cookie)  # the control: same session, our origin
    assert not await _connect(b"https://evil.example.com", cookie)
    assert not await _connect(b"null", cookie)
