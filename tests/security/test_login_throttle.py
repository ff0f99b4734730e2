"""Login lockout and throttles behind a reverse proxy (issue 16, High 2).

Behind nginx without X-Forwarded-For every client has the proxy's address: failures must lock the
account they were made on (an existing one), never the address, and an address is only slowed
(429 + Retry-After). The client IP is believed from X-Forwarded-For/X-Real-IP only when the direct
peer is a trusted proxy, and the audit records that client IP. Proved through the test client and
over real HTTP through a byte-forwarding TCP proxy on loopback in front of a live server.
"""

from __future__ import annotations

import asyncio
import http.client
import itertools
import re
import threading
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client, RequestFactory
from django.utils import timezone

from regulator.choices import Role
from regulator.client_ip import client_ip
from regulator.models import AuditEntry, LoginLock
from tests import factories as f
from tests.alerts.e2e_support import processes  # noqa: F401 - the real-process fixture (Daphne)

_counter = itertools.count(1)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_SM3_ITERATIONS = 1000


def fresh_ip() -> str:
    """An address no other test (or another run sharing Redis) has used."""
    tag = uuid.uuid4().int
    return f"10.{tag % 250}.{(tag >> 8) % 250}.{next(_counter) % 250 + 1}"


def login(client, username, password, ip, **extra):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


@pytest.fixture
def officer(db):
    return f.user("officer", Role.INSPECTOR)


# --- Lock by account, never by address -------------------------------------------------------


def test_made_up_usernames_from_one_ip_do_not_lock_a_real_user(client, officer):
    proxy = fresh_ip()  # every client behind the proxy has this address
    for i in range(8):
        assert login(client, f"nobody{i}", "Wrong-Passw0rd", ip=proxy).status_code == 200
    assert not LoginLock.objects.filter(locked_until__isnull=False).exists()  # nobody is locked
    response = login(Client(), "officer", f.PASSWORD, ip=proxy)
    assert response.status_code == 302


def test_a_real_account_locks_after_n_failures_wherever_they_come_from(client, officer, settings):
    settings.LOGIN_MAX_FAILURES = 4
    same_ip = fresh_ip()
    for _ in range(4):
        login(client, "Officer", "Wrong-Passw0rd", ip=same_ip)  # the case of the name does not matter
    lock = LoginLock.objects.get(scope="account", key="officer")
    assert lock.failures == 4 and lock.locked_until > timezone.now()
    refused = login(Client(), "officer", f.PASSWORD, ip=fresh_ip())
    assert refused.status_code == 403 and "该账户因多次登录失败已被锁定" in refused.content.decode()
    # ... and only that account: another user behind the same address logs in
    f.user("colleague", Role.INSPECTOR)
    assert login(Client(), "colleague", f.PASSWORD, ip=same_ip).status_code == 302


def test_a_made_up_username_reads_as_locked_after_n_failures_but_locks_nothing(client, db, settings):
    """The page must not tell which usernames exist: a ghost "locks" like a real account, in words only."""
    settings.LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        login(client, "ghost", "Wrong-Passw0rd", ip=fresh_ip())
    response = login(client, "ghost", "Wrong-Passw0rd", ip=fresh_ip())
    assert response.status_code == 403 and "该账户因多次登录失败已被锁定" in response.content.decode()
    assert not LoginLock.objects.exists()
    f.user("ghost", Role.INSPECTOR)  # an account created later is not born locked
    assert login(Client(), "ghost", f.PASSWORD, ip=fresh_ip()).status_code == 302


# --- Throttles: slow down, never lock out ----------------------------------------------------


def test_ip_username_throttle_answers_429_with_retry_after_and_lets_another_ip_in(client, officer, settings):
    settings.SECURITY_LOGIN_RATE_IP_USERNAME = "3/min"
    settings.LOGIN_MAX_FAILURES = 100  # the throttle, not the lockout, answers here
    hammer = fresh_ip()
    codes = [login(client, "officer", "x", ip=hammer).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = login(client, "officer", f.PASSWORD, ip=hammer)  # even the right password waits
    assert limited.status_code == 429 and 1 <= int(limited["Retry-After"]) <= 61
    assert "登录尝试过于频繁" in limited.content.decode() and SESSION_KEY not in client.session
    assert login(Client(), "officer", f.PASSWORD, ip=fresh_ip()).status_code == 302  # the same user elsewhere
    entry = AuditEntry.objects.filter(event="auth.rate_limited").latest("id")
    assert entry.source_ip == hammer and entry.detail["scope"] == "ip-user"


def test_ip_throttle_slows_a_spraying_address_without_locking_it_or_others(client, officer, settings):
    import time_machine

    settings.SECURITY_LOGIN_RATE_IP = "5/min"
    sprayer = fresh_ip()
    start = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    with time_machine.travel(start, tick=False):
        codes = [login(client, f"user{i}", "x", ip=sprayer).status_code for i in range(6)]
        assert codes == [200] * 5 + [429]
        limited = login(Client(), "officer", f.PASSWORD, ip=sprayer)
        assert limited.status_code == 429 and int(limited["Retry-After"]) == 61
        assert login(Client(), "officer", f.PASSWORD, ip=fresh_ip()).status_code == 302  # another address
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        assert login(Client(), "officer", f.PASSWORD, ip=sprayer).status_code == 302  # slowed, not locked


# --- The client IP -----------------------------------------------------------------------------


def _request(remote, xff=None, real=None):
    meta = {"REMOTE_ADDR": remote}
    if xff is not None:
        meta["HTTP_X_FORWARDED_FOR"] = xff
    if real is not None:
        meta["HTTP_X_REAL_IP"] = real
    return RequestFactory().get("/", **meta)


def test_an_untrusted_peer_cannot_choose_its_address_with_forwarded_headers(settings):
    settings.SECURITY_TRUSTED_PROXIES = []
    assert client_ip(_request("203.0.113.9", xff="198.51.100.1", real="198.51.100.2")) == "203.0.113.9"
    settings.SECURITY_TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_ip(_request("203.0.113.9", xff="198.51.100.1", real="198.51.100.2")) == "203.0.113.9"


def test_a_trusted_proxy_gives_the_right_most_untrusted_forwarded_address(settings):
    settings.SECURITY_TRUSTED_PROXIES = ["10.0.0.0/8", "192.0.2.1"]
    # the client wrote "1.1.1.1" itself; nginx appended the address it saw (198.51.100.7)
    assert client_ip(_request("10.1.2.3", xff="1.1.1.1, 198.51.100.7")) == "198.51.100.7"
    # two proxies of ours in a row
    assert client_ip(_request("192.0.2.1", xff="1.1.1.1, 198.51.100.7, 10.9.9.9")) == "198.51.100.7"
    # X-Real-IP when there is no X-Forwarded-For
    assert client_ip(_request("10.1.2.3", real="198.51.100.8")) == "198.51.100.8"
    # garbage in the chain stops the walk at the last address we can vouch for
    assert client_ip(_request("10.1.2.3", xff="198.51.100.7, not-an-ip")) == "10.1.2.3"
    # IPv4-mapped IPv6 peers are the IPv4 address
    assert client_ip(_request("::ffff:10.1.2.3", xff="198.51.100.7")) == "198.51.100.7"
    assert client_ip(_request("10.1.2.3")) == "10.1.2.3"


def test_bad_trusted_proxy_setting_refuses_to_start():
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env.update(SECURITY_TRUSTED_PROXIES="10.0.0.0/8,not-a-network", DJANGO_SETTINGS_MODULE="regulator.settings")
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "SECURITY_TRUSTED_PROXIES" in result.stderr


def test_audit_records_the_client_behind_a_trusted_proxy_not_the_proxy(client, officer, settings):
    settings.SECURITY_TRUSTED_PROXIES = ["10.0.0.0/8"]
    real = "198.51.100.23"
    login(client, "officer", "Wrong-Passw0rd", ip="10.0.0.5", HTTP_X_FORWARDED_FOR=f"6.6.6.6, {real}")
    assert AuditEntry.objects.filter(event="auth.login_failed").latest("id").source_ip == real
    login(client, "officer", f.PASSWORD, ip="10.0.0.5", HTTP_X_REAL_IP=real)
    assert AuditEntry.objects.filter(event="auth.login").latest("id").source_ip == real


# --- Atomic counters on both cache backends ----------------------------------------------------


def _burst_allowed(rate: str, threads: int, hits: int) -> int:
    from django.db import connection

    from regulator.security import ratelimit

    bucket = f"login:ip:burst-{uuid.uuid4().hex}"
    now = 1_000_000 * 60 + 1.0  # one window for every hit, whatever the wall clock does

    def work(_):
        try:
            return sum(ratelimit.hit(bucket, rate, now=now).allowed for _ in range(hits))
        finally:
            connection.close()

    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(work, range(threads)))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_throttle_counter_is_atomic_on_the_database_cache(settings):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite's test database is one in-memory connection)")
    from django.core.management import call_command

    call_command("createcachetable", verbosity=0)
    assert _burst_allowed("40/min", threads=8, hits=15) == 40


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_throttle_counter_is_atomic_on_the_redis_cache():
    from django.test import override_settings

    from tests.faultkit import PrivateRedis

    with PrivateRedis() as redis:
        redis_cache = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis.url}}
        with override_settings(CACHES=redis_cache):  # back to the database cache before Redis stops
            assert _burst_allowed("40/min", threads=8, hits=15) == 40


# --- Over real HTTP, behind a TCP proxy on loopback ------------------------------------------


class LoopbackProxy:
    """A TCP proxy in a thread: forwards bytes both ways and adds nothing (nginx as the README had
    it), or, with ``forward=True``, adds X-Forwarded-For/X-Real-IP to each request as the README's
    nginx block now does ($proxy_add_x_forwarded_for, $remote_addr)."""

    def __init__(self, upstream_port: int, *, forward: bool = False):
        self.upstream_port, self.forward = upstream_port, forward
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        assert ready.wait(30), "the proxy did not start"

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _handle(self, reader, writer):
        peer = writer.get_extra_info("peername")[0]
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        if self.forward:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head[:-4].split(b"\r\n")
            kept, forwarded = [lines[0]], []
            for line in lines[1:]:
                name = line.split(b":", 1)[0].strip().lower()
                if name == b"x-forwarded-for":
                    forwarded.append(line.split(b":", 1)[1].strip())
                elif name != b"x-real-ip":
                    kept.append(line)
            chain = b", ".join([*forwarded, peer.encode()])
            kept += [b"X-Forwarded-For: " + chain, b"X-Real-IP: " + peer.encode()]
            up_writer.write(b"\r\n".join(kept) + b"\r\n\r\n")

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def _shutdown(self):
        self.server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self):
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


class Browser:
    """A minimal HTTP client from a chosen loopback source address, with cookies and the CSRF token."""

    def __init__(self, port: int, source: str = "127.0.0.1"):
        self.port, self.source, self.cookies = port, source, {}

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, source_address=(self.source, 0), timeout=60)
        headers = {"Connection": "close", **(headers or {})}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            body = urllib.parse.urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        content = response.read().decode("utf-8", "replace")
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key.strip()] = rest.split(";", 1)[0]
        conn.close()
        return SimpleNamespace(status=response.status, headers=dict(response.getheaders()), text=content)

    def login(self, username, password, headers=None):
        page = self.request("GET", "/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        form = {"username": username, "password": password, "csrfmiddlewaretoken": token}
        return self.request("POST", "/accounts/login/", form, headers)


@pytest.fixture
def upstream_port(transactional_db):
    """Django's live server thread on a free loopback port (pytest-django's ``live_server`` wraps the
    app in a media handler that fails on this project's MEDIA_URL = None: media is never served)."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connections
    from django.test.testcases import LiveServerThread

    shared = {c.alias: c for c in connections.all() if c.vendor == "sqlite" and c.is_in_memory_db()}
    thread = LiveServerThread(
        "127.0.0.1", static_handler=lambda _media_handler: WSGIHandler(), connections_override=shared, port=0
    )
    for conn in shared.values():
        conn.inc_thread_sharing()
    thread.daemon = True
    thread.start()
    thread.is_ready.wait(60)
    if thread.error:
        raise thread.error
    yield thread.port
    thread.terminate()
    for conn in shared.values():
        conn.dec_thread_sharing()


def test_over_http_behind_a_plain_proxy_made_up_usernames_lock_nobody(upstream_port, settings):
    """The README's old setup: the proxy forwards bytes only, every client is 127.0.0.1."""
    settings.SECURITY_TRUSTED_PROXIES = []
    f.user("officer", Role.INSPECTOR)
    proxy = LoopbackProxy(upstream_port)
    try:
        for i in range(7):
            assert Browser(proxy.port).login(f"nobody{i}", "Wrong-Passw0rd").status == 200
        officer = Browser(proxy.port)
        response = officer.login("officer", f.PASSWORD)
        assert response.status == 302, response.text[:500]
        page = officer.request("GET", "/notifications/")
        assert page.status == 200 and "no-store" in page.headers["Cache-Control"]  # a logged-in page
    finally:
        proxy.close()


def test_over_http_behind_a_trusted_proxy_the_real_client_is_throttled_and_audited(upstream_port, settings):
    """The proxy adds X-Forwarded-For/X-Real-IP; clients come from distinct loopback addresses."""
    settings.SECURITY_TRUSTED_PROXIES = ["127.0.0.1"]
    settings.SECURITY_LOGIN_RATE_IP = "4/min"
    f.user("officer", Role.INSPECTOR)
    proxy = LoopbackProxy(upstream_port, forward=True)
    try:
        attacker = Browser(proxy.port, source="127.0.0.3")
        spoof = {"X-Forwarded-For": "127.0.0.2", "X-Real-IP": "127.0.0.2"}  # tries to pass as the officer's PC
        # each login() is a GET and a POST; only the POSTs count as attempts
        responses = [attacker.login(f"user{i}", "x", headers=spoof) for i in range(5)]
        assert [r.status for r in responses] == [200] * 4 + [429]
        assert 1 <= int(responses[4].headers["Retry-After"]) <= 61 and "登录尝试过于频繁" in responses[4].text
        failed = AuditEntry.objects.filter(event="auth.login_failed").latest("id")
        assert failed.source_ip == "127.0.0.3"  # the spoofed header is left of the proxy's entry
        officer_pc = Browser(proxy.port, source="127.0.0.2")
        assert officer_pc.login("officer", f.PASSWORD).status == 302
        assert AuditEntry.objects.filter(event="auth.login").latest("id").source_ip == "127.0.0.2"
    finally:
        proxy.close()


def _loopback_address() -> str:
    """A random 127/8 source address, so counters left in a shared Redis by another run never match."""
    tag = uuid.uuid4().int
    return f"127.{tag % 250 + 1}.{(tag >> 8) % 250 + 1}.{(tag >> 16) % 250 + 1}"


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_over_http_daphne_behind_a_trusted_proxy_throttles_the_real_client_and_audits_it(processes):  # noqa: F811
    """Production's server (Daphne, ASGI) behind the forwarding proxy, configured from the environment."""
    import sys
    from pathlib import Path

    from tests.alerts.e2e_support import _port_open, free_port, wait_for

    start, logdir = processes
    f.user("officer", Role.INSPECTOR)
    web_port = free_port()
    daphne = str(Path(sys.executable).parent / "daphne")
    start(
        "daphne",
        *("env", "SECURITY_TRUSTED_PROXIES=127.0.0.1", "SECURITY_LOGIN_RATE_IP=4/min", "PASSWORD_SM3_ITERATIONS=1000"),
        *(daphne, "-b", "127.0.0.1", "-p", str(web_port), "regulator.asgi:application"),
    )
    wait_for(lambda: _port_open("127.0.0.1", web_port), 60, "daphne to listen")
    proxy = LoopbackProxy(web_port, forward=True)
    try:
        attacker_ip, officer_ip = _loopback_address(), _loopback_address()
        attacker = Browser(proxy.port, source=attacker_ip)
        spoof = {"X-Forwarded-For": officer_ip}
        responses = [attacker.login(f"user{i}", "x", headers=spoof) for i in range(5)]
        assert [r.status for r in responses] == [200] * 4 + [429], (logdir / "daphne.log").read_text()[-2000:]
        assert 1 <= int(responses[4].headers["Retry-After"]) <= 61
        assert AuditEntry.objects.filter(event="auth.login_failed").latest("id").source_ip == attacker_ip
        assert Browser(proxy.port, source=officer_ip).login("officer", f.PASSWORD).status == 302
        assert AuditEntry.objects.filter(event="auth.login").latest("id").source_ip == officer_ip
    finally:
        proxy.close()
