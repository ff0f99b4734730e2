"""Request-body caps, enforced before a body is parsed: one rule (settings.REQUEST_MAX_BODY_PATHS),
two doors: an ASGI middleware for Daphne (Content-Length and streamed bytes) and a Django middleware
for every other handler (the test client, any WSGI server), so a path has the same cap everywhere.

Without them an anonymous 200 MB multipart POST to the login page is read and parsed whole (CSRF is
checked only after the body is read) and took Daphne from 280 MiB to 3 GiB.
"""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext

logger = logging.getLogger(__name__)

STATUS = 413
LINGER_SECONDS = 10  # how long Daphne keeps reading (and dropping) a refused body before it closes


@lru_cache(maxsize=8)
def _compiled(paths: tuple) -> tuple:
    return tuple((re.compile(pattern), int(cap)) for pattern, cap in paths)


def cap_for_path(path: str) -> int:
    """The largest body accepted on ``path``: the first matching REQUEST_MAX_BODY_PATHS entry, else the default."""
    for pattern, cap in _compiled(tuple(settings.REQUEST_MAX_BODY_PATHS.items())):
        if pattern.match(path):
            return cap
    return settings.REQUEST_MAX_BODY_BYTES


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB"


def refusal(path: str, cap: int) -> tuple[str, bytes]:
    """(content type, body) of the 413: JSON with a reason for the API, a short Chinese text otherwise."""
    reason = gettext("请求内容过大：此地址最多接受 %(limit)s，请缩小或分批提交。") % {"limit": _mib(cap)}
    if path.startswith("/api/"):
        payload = {"detail": reason, "code": "request_too_large", "max_bytes": cap}
        return "application/json", json.dumps(payload, ensure_ascii=False).encode()
    return "text/plain; charset=utf-8", reason.encode()


def _declared_length(headers) -> int | None:
    """Content-Length as an int; None when absent; -1 when unparsable (refused: smuggling shape)."""
    values = [v for k, v in headers if k.lower() == b"content-length"]
    if not values:
        return None
    try:
        lengths = {int(v.strip()) for v in b",".join(values).split(b",")}
    except ValueError:
        return -1
    if len(lengths) != 1 or min(lengths) < 0:
        return -1
    return lengths.pop()


class BodyLimitASGIMiddleware:
    """Wraps the HTTP application: refuses on Content-Length over the path's cap without reading the
    body, and counts streamed bytes (chunked bodies have no Content-Length) and stops at the cap: the
    413 goes out and the application sees a disconnect, so Django never parses the body."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        cap = cap_for_path(path)
        declared = _declared_length(scope.get("headers", []))
        if declared == -1:
            await _send_plain(send, 400, "text/plain; charset=utf-8", gettext("请求头 Content-Length 无效。").encode())
            return
        if declared is not None and declared > cap:
            logger.warning("refused a %d-byte body on %s (cap %d)", declared, path, cap)
            await _send_refusal(send, path, cap)
            return

        state = {"received": 0, "refused": False, "app_started": False}

        async def limited_receive():
            if state["refused"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > cap:
                    state["refused"] = True
                    logger.warning("stopped reading a streamed body on %s at %d bytes", path, state["received"])
                    if not state["app_started"]:
                        await _send_refusal(send, path, cap)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            if state["refused"]:
                return  # the 413 is already out; what the aborted application says is dropped
            if message["type"] == "http.response.start":
                state["app_started"] = True
            await send(message)

        return await self.app(scope, limited_receive, guarded_send)


async def _send_refusal(send, path: str, cap: int) -> None:
    content_type, body = refusal(path, cap)
    await _send_plain(send, STATUS, content_type, body)


async def _send_plain(send, status: int, content_type: str, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff"),
                (b"cache-control", b"no-store"),
                # The client may still be sending: do not keep a connection whose body we did not read.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """The same cap for requests that do not come through the ASGI middleware (the test client, a WSGI
    server): checked on CONTENT_LENGTH before anything reads the body. WSGI has no chunked request
    bodies (Django reads at most CONTENT_LENGTH bytes), so the declared length is the whole story."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raw = request.META.get("CONTENT_LENGTH") or ""
        if raw:
            try:
                declared = int(raw)
            except ValueError:
                reason = gettext("请求头 Content-Length 无效。")
                return HttpResponse(reason, status=400, content_type="text/plain; charset=utf-8")
            cap = cap_for_path(request.path_info)
            if declared > cap:
                logger.warning("refused a %d-byte body on %s (cap %d)", declared, request.path_info, cap)
                content_type, body = refusal(request.path_info, cap)
                if content_type == "application/json":
                    response = JsonResponse(json.loads(body), status=STATUS, json_dumps_params={"ensure_ascii": False})
                else:
                    response = HttpResponse(body, status=STATUS, content_type=content_type)
                response["Cache-Control"] = "no-store"  # (no Connection header: hop-by-hop is refused by WSGI)
                return response
        return self.get_response(request)


def install_daphne_guard() -> bool:
    """Stop Daphne itself from taking in an oversized body.

    Daphne (Twisted) receives the whole body before the ASGI application runs and then queues all of
    it as 8 KiB messages at once: 200 MB became ~2.6 GB of RSS before any middleware could say no.
    This guard runs as the body arrives: over the path's cap (declared or counted) it answers 413,
    closes the connection and keeps nothing. The ASGI middleware stays for other servers (uvicorn,
    runserver's Daphne in tests) and as the second line. Returns False when Daphne is not installed.
    """
    try:
        from daphne.http_protocol import WebRequest
    except ImportError:  # pragma: no cover - Daphne is in requirements
        return False
    if getattr(WebRequest, "_body_guard_installed", False):
        return True
    from urllib.parse import unquote

    original_got_length = WebRequest.gotLength
    original_handle_chunk = WebRequest.handleContentChunk
    original_process = WebRequest.process

    def got_length(self, length):
        original_got_length(self, length)
        raw = (getattr(self.channel, "_path", b"") or b"").split(b"?", 1)[0]
        self._body_path = unquote(raw.decode("latin-1"))
        self._body_cap = cap_for_path(self._body_path)
        self._body_seen = 0
        self._body_refused = False
        if length is not None and length > self._body_cap:
            logger.warning("refused a %d-byte body on %s (cap %d)", length, self._body_path, self._body_cap)
            _refuse(self)

    def handle_chunk(self, data):
        if getattr(self, "_body_refused", False):
            return  # discarded: nothing of a refused body is kept
        self._body_seen = getattr(self, "_body_seen", 0) + len(data)
        if self._body_seen > getattr(self, "_body_cap", settings.REQUEST_MAX_BODY_BYTES):
            logger.warning(
                "stopped reading a streamed body on %s at %d bytes (cap %d)",
                getattr(self, "_body_path", "?"),
                self._body_seen,
                self._body_cap,
            )
            _refuse(self)
            return
        original_handle_chunk(self, data)

    def process(self):
        if getattr(self, "_body_refused", False):
            # Answered already; the application never sees this request. The rest of the body has
            # been read and dropped, so closing now loses nothing the client still has to read.
            if self.channel.transport is not None:
                self.channel.transport.loseConnection()
            return None
        return original_process(self)

    WebRequest.gotLength = got_length
    WebRequest.handleContentChunk = handle_chunk
    WebRequest.process = process
    WebRequest._body_guard_installed = True
    return True


def _refuse(request) -> None:
    """Write the 413 straight to the connection and close it (the request never reached the application)."""
    request._body_refused = True
    content_type, body = refusal(request._body_path, request._body_cap)
    head = (
        "HTTP/1.1 413 Request Entity Too Large\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")
    try:
        request.content.close()  # drop whatever was spooled
    except Exception:  # a content file that cannot close still must not stop the refusal
        logger.debug("could not close the spooled body", exc_info=True)
    transport = request.channel.transport
    if transport is None:
        return
    transport.write(head + body)
    # Lingering close, as nginx does: closing a socket with unread client data sends a reset that can
    # destroy the 413 before the client reads it. So half-close (the client sees the answer and the
    # end), keep reading and dropping what still comes (handle_chunk keeps nothing), and close at the
    # end of the body or after LINGER_SECONDS, whichever is first.
    try:
        transport.loseWriteConnection()
    except (AttributeError, NotImplementedError):
        transport.loseConnection()
        return
    from twisted.internet import reactor

    reactor.callLater(LINGER_SECONDS, transport.loseConnection)
