"""Production mode over real HTTP: Daphne with PRODUCTION=1 against the test database, behind a TCP
proxy on loopback that forwards bytes and adds nothing (the test sends what nginx would add:
X-Forwarded-Proto). One module-scoped fixture starts both; each test checks one property, so more
(lockout behind the proxy, an HTML upload refused) are one test each on the same ``site``.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.faultkit import free_port, wait_until

# django_db: so that pytest-django creates the test database; the rows Daphne needs are committed by the
# module fixture (and deleted after), each test itself only talks HTTP.
pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db]

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
USERNAME = "smoke_inspector"


class TcpProxy:
    """Forwards bytes between a loopback port and Daphne, adding nothing (as a TLS-terminating
    proxy would, minus the TLS): its own event loop in a thread."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TcpProxy:
        self.thread.start()
        self.ready.wait(10)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()

    async def _client(self, reader, writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return

        async def downstream():
            try:
                while data := await up_reader.read(65536):
                    writer.write(data)
                    await writer.drain()
                writer.write_eof()  # half-close: the client can still finish sending and read the answer
            except (ConnectionError, OSError):
                pass

        async def upstream():
            open_ = True
            try:
                while data := await reader.read(65536):
                    if open_:
                        try:
                            up_writer.write(data)
                            await up_writer.drain()
                        except (ConnectionError, OSError):
                            open_ = False  # the server hung up (a 413): discard the rest, as nginx does
            except (ConnectionError, OSError):
                pass
            up_writer.close()

        down, up = asyncio.ensure_future(downstream()), asyncio.ensure_future(upstream())
        await down
        try:  # lingering close: closing with unread client data would reset the answer away
            await asyncio.wait_for(up, timeout=20)
        except TimeoutError:
            pass
        writer.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Site:
    """Requests to the production Daphne through the proxy, as the browser behind nginx makes them."""

    def __init__(self, proxy_port: int, daphne: subprocess.Popen, password: str):
        self.port = proxy_port
        self.daphne = daphne
        self.origin = f"https://127.0.0.1:{proxy_port}"
        self.username = USERNAME
        self.password = password

    def request(self, method: str, path: str, *, body=None, headers=None, forwarded_proto: str | None = "https"):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        all_headers = {"Host": f"127.0.0.1:{self.port}"}
        if forwarded_proto:
            all_headers["X-Forwarded-Proto"] = forwarded_proto  # what the README's nginx adds
        all_headers.update(headers or {})
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        response.body = response.read()
        conn.close()
        return response

    @staticmethod
    def cookies(response) -> dict[str, str]:
        """name -> the whole Set-Cookie line."""
        return {line.split("=", 1)[0]: line for line in response.msg.get_all("Set-Cookie") or []}

    def csrf(self, path: str = "/accounts/login/") -> tuple[str, str]:
        """(csrftoken cookie, form token) from a GET of ``path``."""
        page = self.request("GET", path)
        cookie = self.cookies(page)["csrftoken"].split(";", 1)[0].split("=", 1)[1]
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1).decode()
        return cookie, token

    def login(self, username: str | None = None, password: str | None = None):
        from urllib.parse import urlencode

        cookie, token = self.csrf()
        form = urlencode(
            {"username": username or self.username, "password": password or self.password, "csrfmiddlewaretoken": token}
        )
        return self.request(
            "POST",
            "/accounts/login/",
            body=form,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={cookie}",
                "Origin": self.origin,
                "Referer": f"{self.origin}/accounts/login/",
            },
        )

    def session_cookie(self) -> str:
        logged_in = self.login()
        assert logged_in.status == 302, logged_in.body[:500]
        return self.cookies(logged_in)["sessionid"].split(";", 1)[0]

    def ws_handshake(self, path: str, *, origin: str, cookie: str, forwarded_proto: str | None = "https") -> bytes:
        """The status line of a WebSocket handshake through the proxy."""
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{self.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            f"Origin: {origin}",
            f"Cookie: {cookie}",
        ]
        if forwarded_proto:
            lines.append(f"X-Forwarded-Proto: {forwarded_proto}")
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            return s.recv(4096).split(b"\r\n", 1)[0]


@pytest.fixture(autouse=True)
def clean_cache():
    """Replaces the suite's: the cache lives in the database, and clearing it inside this test's open
    transaction would hold row locks that Daphne's login (its throttle counters) then waits on."""
    yield


@pytest.fixture(scope="module")
def site(django_db_setup, django_db_blocker, tmp_path_factory):
    if not settings.USING_POSTGRES:
        pytest.skip("the production smoke test needs PostgreSQL (set DATABASE_URL): Daphne must see the test database")
    from django.db import connection

    from regulator.choices import Role
    from regulator.crypto import _demo_key_spec
    from tests import factories as f

    tmp = tmp_path_factory.mktemp("production")
    password = "Smoke-" + secrets.token_urlsafe(12) + "9a"
    with django_db_blocker.unblock():
        regions = f.region_tree()
        user = f.user(USERNAME, Role.INSPECTOR, jurisdiction=regions["county"])
        user.set_password(password)
        user.save()
        db = connection.settings_dict
    env = dict(os.environ)
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("DEBUG", None)
    env.update(
        PRODUCTION="1",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        FIELD_KEYS=settings.FIELD_KEYS or _demo_key_spec(),  # the keys of the rows this process writes
        SM2_PRIVATE_KEY=settings.SM2_PRIVATE_KEY or "1" * 64,
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        DATA_DIR=str(tmp),
        PYTHONUNBUFFERED="1",
    )
    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert collected.returncode == 0, collected.stderr.decode()[-2000:]
    port = free_port()
    log = open(tmp / "daphne.log", "wb")  # noqa: SIM115 - closed with the process
    daphne = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "regulator.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proxy = None
    try:

        def listening():
            assert daphne.poll() is None, (tmp / "daphne.log").read_text(errors="replace")[-3000:]
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, timeout=90, what="the production Daphne to listen")
        proxy = TcpProxy(port).start()
        yield Site(proxy.port, daphne, password)
    finally:
        if proxy is not None:
            proxy.stop()
        os.killpg(daphne.pid, signal.SIGTERM)
        try:
            daphne.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(daphne.pid, signal.SIGKILL)
            daphne.wait(timeout=5)
        log.close()
        if os.environ.get("SMOKE_SHOW_LOGS"):
            print((tmp / "daphne.log").read_text(errors="replace")[-4000:])
        # Daphne committed audit rows that protect the user: empty the tables as a transactional test does.
        with django_db_blocker.unblock():
            from django.core.management import call_command

            call_command("flush", interactive=False, verbosity=0)


def test_plain_http_is_redirected_to_https(site):
    response = site.request("GET", "/accounts/login/", forwarded_proto=None)
    assert response.status in (301, 302)
    assert response.getheader("Location", "").startswith("https://")


def test_security_headers(site):
    response = site.request("GET", "/accounts/login/")
    assert response.status == 200
    hsts = response.getheader("Strict-Transport-Security", "")
    assert int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 31536000
    assert "includeSubDomains" in hsts
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert response.getheader("Referrer-Policy") in ("same-origin", "strict-origin-when-cross-origin", "no-referrer")
    csp = response.getheader("Content-Security-Policy", "")
    assert "default-src" in csp and "frame-ancestors 'none'" in csp
    assert response.getheader("X-Frame-Options") == "DENY"
    assert "ws://" not in csp  # plain WebSockets only in DEBUG


def _flags(line: str) -> set[str]:
    return {part.strip().split("=", 1)[0].lower() for part in line.split(";")[1:]}


def _samesite(line: str) -> str:
    match = re.search(r"samesite=(\w+)", line, re.IGNORECASE)
    return match.group(1).lower() if match else ""


def test_cookie_flags(site):
    csrf_line = site.cookies(site.request("GET", "/accounts/login/"))["csrftoken"]
    assert "secure" in _flags(csrf_line)
    assert _samesite(csrf_line) in ("lax", "strict")
    # (The CSRF cookie is readable by our own scripts by design: static/*/ send it as X-CSRFToken.)
    logged_in = site.login()
    assert logged_in.status == 302, logged_in.body[:500]
    session_line = site.cookies(logged_in)["sessionid"]
    assert {"secure", "httponly"} <= _flags(session_line)
    assert _samesite(session_line) in ("lax", "strict")


def test_body_cap_refuses_200_mb_and_daphne_memory_stays_flat(site):
    """Before the cap a 200 MB anonymous POST took Daphne from ~220 MiB to ~2.6 GiB."""
    site.request("GET", "/accounts/login/")  # warm: the views are imported
    before = rss_mib(site.daphne.pid)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mib(site.daphne.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    size = 200 * MiB
    head = (
        f"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1:{site.port}\r\nX-Forwarded-Proto: https\r\n"
        f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {size}\r\n\r\n"
    ).encode()
    answer = b""
    try:
        with socket.create_connection(("127.0.0.1", site.port), timeout=60) as s:
            try:
                s.sendall(head)
                block = b"x" * MiB
                for _ in range(size // MiB):
                    s.sendall(block)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused while sending
            try:
                answer = s.recv(4096)
            except ConnectionResetError:
                answer = b""
    finally:
        done.set()
        sampler.join()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert "请求内容过大".encode() in answer
    assert peak[0] - before < 40, f"Daphne RSS {before:.0f} -> {peak[0]:.0f} MiB"
    # ... and the site still answers afterwards.
    assert site.request("GET", "/accounts/login/").status == 200


def test_websocket_origin_behind_the_proxy(site):
    """Same scheme, host and port connects; another port, plain http or no TLS at the proxy do not."""
    cookie = site.session_cookie()
    assert b" 101 " in site.ws_handshake("/ws/alerts/", origin=site.origin, cookie=cookie) + b" "
    other_port = f"https://127.0.0.1:{site.port + 1}"
    assert b" 101" not in site.ws_handshake("/ws/alerts/", origin=other_port, cookie=cookie)
    plain = f"http://127.0.0.1:{site.port}"
    assert b" 101" not in site.ws_handshake("/ws/alerts/", origin=plain, cookie=cookie)
    assert b" 101" not in site.ws_handshake("/ws/alerts/", origin=plain, cookie=cookie, forwarded_proto=None)


@pytest.fixture(scope="module")
def rows(site, django_db_blocker):
    """Rows the production Daphne must see, committed before any test's transaction opens (a test's
    own writes would hold the audit chain's lock until it ends; the module's teardown flushes)."""
    from types import SimpleNamespace

    from django.utils import timezone

    from enforcement.models import Inspection
    from regulator.choices import Role
    from regulator.models import Region, User
    from tests import factories as f

    password = "Smoke-" + secrets.token_urlsafe(12) + "7b"
    with django_db_blocker.unblock():
        county = Region.objects.get(code="320581")
        victim = f.user("smoke_victim", Role.INSPECTOR, jurisdiction=county)
        victim.set_password(password)
        victim.save()
        inspection = Inspection.objects.create(
            enterprise=f.enterprise(county, name="烟测化工有限公司"), date=timezone.localdate()
        )
        inspection.team.add(User.objects.get(username=USERNAME))
    return SimpleNamespace(victim="smoke_victim", victim_password=password, inspection=inspection)


def test_lockout_behind_the_proxy_locks_the_account_not_the_bureau(site, rows):
    """Every request arrives from the proxy's address (it sends no X-Forwarded-For): failed logins
    on made-up usernames lock nobody, and only the account being guessed locks."""
    run = secrets.token_hex(4)  # fresh names: a made-up name guessed N times reads "locked" too
    for i in range(settings.LOGIN_MAX_FAILURES + 2):
        refused = site.login(f"no-such-user-{run}-{i}", "wrong-password-1A")
        assert refused.status in (200, 429), refused.status
    assert site.login().status == 302, "a made-up username locked a real user behind the proxy"
    for _ in range(settings.LOGIN_MAX_FAILURES):
        site.login(rows.victim, "wrong-password-1A")
    locked = site.login(rows.victim, rows.victim_password)
    assert locked.status != 302, "the guessed account did not lock"
    assert site.login().status == 302, "locking one account locked another behind the same proxy"


def test_an_html_photo_is_refused_over_the_proxy(site, rows, django_db_blocker):
    """A script dressed as a photo, posted to the inspection photo form: 400 with the reason, and
    nothing stored that the origin could later serve."""
    from enforcement.models import InspectionPhoto

    inspection = rows.inspection
    session = site.session_cookie()
    path = f"/enforcement/inspections/{inspection.pk}/"
    assert site.request("GET", path, headers={"Cookie": session}).status == 200
    cookie, token = site.csrf()  # any matching (cookie, token) pair passes the CSRF check
    boundary = "smoke" + secrets.token_hex(8)
    # A JPEG's magic bytes in front of the script: what a magic-byte check lets through.
    payload = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00<html><script>alert(document.cookie)</script></html>"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n{token}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="caption"\r\n\r\n现场\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="photo.html"\r\n'
            "Content-Type: text/html\r\n\r\n"
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    refused = site.request(
        "POST",
        f"/enforcement/inspections/{inspection.pk}/photos/",
        body=body,
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Cookie": f"{session}; csrftoken={cookie}",
            "Origin": site.origin,
            "Referer": f"{site.origin}{path}",
        },
    )
    assert refused.status == 400, (refused.status, refused.body[:300])
    assert "图片".encode() in refused.body or "照片".encode() in refused.body
    with django_db_blocker.unblock():
        assert not InspectionPhoto.objects.filter(inspection=inspection).exists()
