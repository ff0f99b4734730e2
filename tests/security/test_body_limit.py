"""Request bodies over the path's cap are refused with 413 and a reason before anything reads them:
through the test client (the Django middleware), the ASGI middleware on its own, and a real Daphne
and `manage.py runserver` on loopback, whose memory must not grow with a 200 MB anonymous POST."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.test import Client

from tests.faultkit import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


# --- the cap per path --------------------------------------------------------------------------------
def test_caps_follow_the_settings_map(settings):
    from regulator.bodylimit import cap_for_path

    assert cap_for_path("/accounts/login/") == settings.REQUEST_MAX_BODY_BYTES == MiB
    assert cap_for_path("/api/v1/readings/") == settings.REQUEST_MAX_BODY_INGEST_BYTES
    for upload in (
        "/hazards/report/",
        "/hazards/12/photos/",
        "/hazards/12/act/submit-rectification/",
        "/hazards/runs/3/items/4/",
        "/enforcement/inspections/7/photos/",
        "/api/v1/hazards/",
        "/api/v1/hazards/12/photos/",
        "/api/v1/hazards/12/submit-rectification/",
        "/api/v1/checklist-runs/3/answer/",
    ):
        assert cap_for_path(upload) == settings.REQUEST_MAX_BODY_UPLOAD_BYTES, upload
    # Not an upload: a hazard's own API detail keeps the small default.
    assert cap_for_path("/api/v1/hazards/12/") == MiB
    # Django's own parsers stream files to disk and keep form fields under the largest non-upload cap.
    assert MiB >= settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == settings.REQUEST_MAX_BODY_INGEST_BYTES


# --- the test client (Django middleware) --------------------------------------------------------------
@pytest.mark.django_db
def test_oversized_login_post_is_refused_with_a_chinese_reason():
    body = b"x" * (MiB + 1)
    response = Client().post("/accounts/login/", data=body, content_type="application/octet-stream")
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/plain")
    assert "请求内容过大" in response.content.decode()


@pytest.mark.django_db
def test_oversized_api_post_is_refused_with_json():
    body = b"[" + b"1," * (2 * MiB) + b"1]"  # > 4 MiB on the ingest
    response = Client().post("/api/v1/readings/", data=body, content_type="application/json")
    assert response.status_code == 413
    payload = response.json()
    assert payload["code"] == "request_too_large"
    assert payload["max_bytes"] == 4 * MiB
    assert "请求内容过大" in payload["detail"]


@pytest.mark.django_db
def test_a_body_under_the_ingest_cap_reaches_the_view():
    """The control: 2 MiB of JSON is over the 1 MiB default but under the ingest cap, so the view
    answers (401: no token), not the cap."""
    body = json.dumps({"readings": [{"x": "y" * 1000}] * 2000}).encode()
    assert MiB < len(body) < 4 * MiB
    response = Client().post("/api/v1/readings/", data=body, content_type="application/json")
    assert response.status_code in (400, 401, 403)


# --- the ASGI middleware -------------------------------------------------------------------------------
def _run_asgi(headers, chunks, path="/accounts/login/"):
    """Run BodyLimitASGIMiddleware around an app that reads the whole body; return (sent, what the app saw)."""
    from regulator.bodylimit import BodyLimitASGIMiddleware

    seen = {"bytes": 0, "disconnected": False, "called": False}

    async def app(scope, receive, send):
        seen["called"] = True
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                seen["disconnected"] = True
                return
            seen["bytes"] += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": path, "method": "POST", "headers": headers}
    asyncio.run(BodyLimitASGIMiddleware(app)(scope, receive, send))
    return sent, seen


def test_asgi_refuses_on_content_length_without_reading():
    sent, seen = _run_asgi([(b"content-length", str(200 * MiB).encode())], [b"x" * 1024])
    assert sent[0]["status"] == 413
    assert not seen["called"]  # the application (Django) never ran


def test_asgi_stops_a_streamed_body_at_the_cap():
    """A chunked body has no Content-Length: bytes are counted, and at the cap the 413 goes out and
    the application is told the client left, so it never parses the body."""
    chunk = b"x" * 65536
    sent, seen = _run_asgi([], [chunk] * 64)  # 4 MiB against a 1 MiB cap
    assert sent[0]["status"] == 413
    assert b"\xe8\xaf\xb7\xe6\xb1\x82" in sent[1]["body"]  # 请求...
    assert seen["disconnected"]
    assert seen["bytes"] <= MiB
    assert len(sent) == 2  # nothing from the aborted application after the 413


def test_asgi_passes_a_body_under_the_cap():
    sent, seen = _run_asgi([(b"content-length", b"2048")], [b"x" * 1024, b"y" * 1024])
    assert sent[0]["status"] == 200
    assert seen["bytes"] == 2048


def test_asgi_refuses_an_unparsable_content_length():
    sent, _ = _run_asgi([(b"content-length", b"12, 99999999")], [b"x"])
    assert sent[0]["status"] == 400


# --- real servers on loopback -----------------------------------------------------------------------------
def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def server_rss_mib(pid: int) -> float:
    """RSS of the process and its children (runserver serves from a child with the autoreloader off too)."""
    total = rss_mib(pid)
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            total += rss_mib(int(child))
    return total


def post_big(port: int, size: int, *, chunked: bool, path: str = "/accounts/login/") -> bytes:
    """Send an anonymous multipart POST of ``size`` bytes (stopping when the server hangs up); the status line."""
    boundary = "----cap"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="f"; filename="x.bin"\r\n\r\n'.encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Content-Type: multipart/form-data; boundary={boundary}",
        "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(head) + size}",
        "",
        "",
    ]
    block = b"x" * MiB
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        try:
            s.sendall("\r\n".join(lines).encode())
            s.sendall(b"%x\r\n%s\r\n" % (len(head), head) if chunked else head)
            sent = 0
            while sent < size:
                piece = block[: min(MiB, size - sent)]
                s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
            if chunked:
                s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused while we were still sending: what we want
        try:
            return s.recv(4096)
        except ConnectionResetError:
            return b""


@pytest.fixture(scope="module", params=["daphne", "runserver"])
def server(request, tmp_path_factory):
    port = free_port()
    tmp = tmp_path_factory.mktemp(request.param)
    env = dict(os.environ, PYTHONUNBUFFERED="1", DATA_DIR=str(tmp), DATABASE_URL=f"sqlite:///{tmp}/db.sqlite3")
    env.pop("PRODUCTION", None)
    if request.param == "daphne":
        args = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "regulator.asgi:application"]
    else:
        args = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def listening():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(listening, timeout=90, what=f"{request.param} listening on {port}")
        yield request.param, port, proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()


@pytest.mark.e2e
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_200_mb_anonymous_post_is_refused_and_costs_no_memory(server, chunked):
    """Before the cap: Daphne 221 -> 2,619 MiB peak, 624 MiB after. Now: 413 and a flat RSS."""
    name, port, proc = server
    post_big(port, 1024, chunked=False)  # warm up: the first request imports the views
    before = server_rss_mib(proc.pid)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], server_rss_mib(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        answer = post_big(port, 200 * MiB, chunked=chunked)
    finally:
        done.set()
        sampler.join()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert "请求内容过大".encode() in answer
    assert peak[0] - before < 40, f"{name} RSS {before:.0f} -> {peak[0]:.0f} MiB"


def test_every_upload_endpoint_gets_the_upload_cap():
    """Every endpoint that takes files (the matrix's multipart rows and the upload pages) is on the
    upload cap: under the default 1 MiB cap a phone photo would be refused with 413."""
    from django.conf import settings
    from django.urls import reverse

    from regulator.bodylimit import cap_for_path
    from tests.security import matrix

    upload_cap = settings.REQUEST_MAX_BODY_UPLOAD_BYTES
    uploads = [name for name, row in matrix.API.items() if row.get("multipart")]
    assert uploads, "the matrix lists no upload endpoint"
    for name in uploads:
        url = reverse(name.rsplit(" ", 1)[0], kwargs={"pk": 1})
        assert cap_for_path(url) == upload_cap, f"{url} ({name}) is not on the upload cap"
