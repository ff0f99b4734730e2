"""What every WebSocket consumer does before and while it forwards: the Origin check, authentication,
the session checked at connect and at every heartbeat (idle timeout, absolute lifetime, logout), and
channel-layer recovery (regulator.layerwatch). Consumers inherit ``SessionCheckedConsumer``; a second
copy of these checks in an app is a bug.
"""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils import timezone

from regulator.layerwatch import LayerRecoveryMixin

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_RECONNECT = 4503  # the session could not be checked for too long: reconnect (not a logout)

_DEFAULT_PORTS = {"http": 80, "https": 443}


# --- Origin ------------------------------------------------------------------------------------------
def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def _normalised(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin or URL, the port made explicit; None if it is not one."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = (parts.scheme or "").lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def handshake_is_secure(scope) -> bool:
    """TLS up to us (wss), or up to the proxy that says so: the same X-Forwarded-Proto rule as
    Django's SECURE_PROXY_SSL_HEADER (set in production), so pages and sockets agree."""
    if scope.get("scheme") in ("wss", "https"):
        return True
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name = proxy_header[0].removeprefix("HTTP_").replace("_", "-").lower().encode()
        value = (_header(scope, name) or "").split(",")[0].strip()
        return value == proxy_header[1]
    return False


def origin_allowed(scope) -> bool:
    """The handshake's Origin is this site, compared on scheme, host and port, as Django's CSRF
    check compares it (or one of CSRF_TRUSTED_ORIGINS); non-TLS only where WS_ALLOW_INSECURE (DEBUG)."""
    origin = _header(scope, b"origin")
    if not origin:
        return False  # a browser always sends it; a missing one is refused like a foreign one
    secure = handshake_is_secure(scope)
    if not secure and not settings.WS_ALLOW_INSECURE:
        return False
    theirs = _normalised(origin)
    if theirs is None:
        return False
    if theirs in {_normalised(o) for o in settings.CSRF_TRUSTED_ORIGINS}:
        return True
    host = _header(scope, b"host") or ""
    domain, _port = split_domain_port(host)
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    if not domain or not validate_host(domain, allowed_hosts):
        return False
    ours = _normalised(f"{'https' if secure else 'http'}://{host}")
    return ours is not None and theirs == ours


class OriginValidator:
    """ASGI middleware in front of every WebSocket route: a handshake whose Origin is not this site
    (scheme, host and port) is refused before any consumer runs (cross-site WebSocket hijacking)."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            logger.warning("refused a WebSocket handshake from origin %r", _header(scope, b"origin"))
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": CLOSE_FORBIDDEN_ORIGIN})
            return None
        return await self.application(scope, receive, send)


# --- Session ----------------------------------------------------------------------------------------
def session_alive(scope) -> bool:
    from regulator.security import session_alive as alive

    return alive(scope)


class SessionCheckedConsumer(LayerRecoveryMixin, AsyncJsonWebsocketConsumer):
    """Base of every consumer. ``connect`` calls ``await self.authenticate()`` first (False: closed
    with 4401) and, once accepted, ``self.start_session_checks()``; ``disconnect`` is handled here.

    The heartbeat checks the session every ALERT_WS_HEARTBEAT_SECONDS: a logout, the idle timeout or
    the absolute lifetime ends the socket (``session_expired``, then 4401). Fail safe when the session
    cannot be checked (database errors): the socket keeps serving (a duty officer keeps receiving
    alarms rather than being cut off by a database hiccup) and the check is retried at every beat, so
    a logout (which needs the same database) is honoured at the first check that works. Only after
    ALERT_WS_SESSION_GRACE_SECONDS without a check is the socket closed, with 4503, so that the client
    reconnects through a full session check.
    """

    heartbeat_task: asyncio.Task | None = None
    send_heartbeats = True  # a {"type": "heartbeat"} frame each beat (lets the client notice a dead socket)

    def check_session(self) -> bool:
        """Synchronous (run in the database thread): True while the session is alive."""
        return session_alive(self.scope)

    async def authenticate(self) -> bool:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return False
        if _header(self.scope, b"origin") is not None and not origin_allowed(self.scope):
            await self.close(code=CLOSE_FORBIDDEN_ORIGIN)  # (the router's OriginValidator refuses first)
            return False
        if not await database_sync_to_async(self.check_session)():
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return False
        return True

    def start_session_checks(self) -> None:
        self.heartbeat_task = asyncio.ensure_future(self._heartbeat())

    async def disconnect(self, code):
        if self.heartbeat_task is not None:
            self.heartbeat_task.cancel()
        await self.leave_groups()

    async def session_expired(self) -> None:
        await self.send_json({"type": "session_expired"})
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def _heartbeat(self):
        """Heartbeats and session checks for as long as the socket lives: no error ends them."""
        unchecked_since: float | None = None
        try:
            while True:
                await asyncio.sleep(settings.ALERT_WS_HEARTBEAT_SECONDS)
                try:
                    alive = await database_sync_to_async(self.check_session)()
                except Exception:
                    alive = None
                    if unchecked_since is None:
                        unchecked_since = time.monotonic()
                        logger.warning("cannot check the session of a socket; serving it meanwhile", exc_info=True)
                    elif time.monotonic() - unchecked_since > settings.ALERT_WS_SESSION_GRACE_SECONDS:
                        logger.error(
                            "session unchecked for %.0f s: closing the socket to reconnect",
                            time.monotonic() - unchecked_since,
                        )
                        await self.close(code=CLOSE_RECONNECT)
                        return
                else:
                    if unchecked_since is not None:
                        logger.info("session check works again after %.0f s", time.monotonic() - unchecked_since)
                    unchecked_since = None
                if alive is False:
                    await self.session_expired()
                    return
                if self.send_heartbeats:
                    try:
                        await self.send_json({"type": "heartbeat", "server_time": timezone.now().isoformat()})
                    except Exception:  # the socket is going away; disconnect() cancels this task
                        logger.debug("heartbeat not sent", exc_info=True)
        except asyncio.CancelledError:
            pass
