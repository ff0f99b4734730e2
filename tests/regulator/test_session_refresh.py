"""The idle timeout slides with activity, but the session row is written at most once a minute."""

from datetime import timedelta

import pytest
import time_machine as tm
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from regulator.choices import Role
from tests import factories as f
from tests.regulator.conftest import login


@pytest.fixture
def officer(db):
    return f.user("officer", Role.INSPECTOR)


def _session_writes(ctx) -> list[str]:
    return [
        q["sql"]
        for q in ctx.captured_queries
        if "django_session" in q["sql"] and q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT"))
    ]


def _expiry(client):
    return Session.objects.get(session_key=client.cookies["sessionid"].value).expire_date


def test_requests_within_a_minute_do_not_write_the_session(client, officer, fresh_ip):
    start = timezone.now()
    with tm.travel(start, tick=False):
        login(client, "officer", f.PASSWORD, ip=fresh_ip())
        saved = _expiry(client)
    with tm.travel(start + timedelta(seconds=50), tick=False):
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/notifications/").status_code == 200
        assert _session_writes(ctx) == []
        assert _expiry(client) == saved
    with tm.travel(start + timedelta(seconds=70), tick=False):
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/notifications/").status_code == 200
        assert len(_session_writes(ctx)) == 1
        assert _expiry(client) - saved == timedelta(seconds=70)


def test_idle_timeout_is_never_longer_than_30_minutes_after_the_last_write(client, officer, fresh_ip):
    start = timezone.now()
    with tm.travel(start, tick=False):
        login(client, "officer", f.PASSWORD, ip=fresh_ip())
    with tm.travel(start + timedelta(seconds=59), tick=False):
        assert client.get("/notifications/").status_code == 200  # too soon to move the expiry
    with tm.travel(start + timedelta(minutes=30, seconds=1), tick=False):
        response = client.get("/notifications/")  # 29 min after the last request, 30 after the write
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_activity_after_a_minute_extends_the_session(client, officer, fresh_ip):
    start = timezone.now()
    with tm.travel(start, tick=False):
        login(client, "officer", f.PASSWORD, ip=fresh_ip())
    with tm.travel(start + timedelta(minutes=20), tick=False):
        assert client.get("/notifications/").status_code == 200
    with tm.travel(start + timedelta(minutes=49), tick=False):
        assert client.get("/notifications/").status_code == 200  # 29 min idle: still in
    with tm.travel(start + timedelta(minutes=79, seconds=30), tick=False):
        response = client.get("/notifications/")  # 30.5 min idle
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_logout_within_the_minute_still_ends_the_session(client, officer, fresh_ip):
    start = timezone.now()
    with tm.travel(start, tick=False):
        login(client, "officer", f.PASSWORD, ip=fresh_ip())
        key = client.cookies["sessionid"].value
    with tm.travel(start + timedelta(seconds=10), tick=False):
        client.post("/accounts/logout/")
        assert not Session.objects.filter(session_key=key).exists()
        response = client.get("/notifications/")
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_an_expired_session_is_not_brought_back_by_the_refresh(client, officer, fresh_ip):
    start = timezone.now()
    with tm.travel(start, tick=False):
        login(client, "officer", f.PASSWORD, ip=fresh_ip())
    with tm.travel(start + timedelta(minutes=31), tick=False):
        before = Session.objects.count()
        response = client.get("/notifications/")
        assert response.status_code == 302
        # No new row holding nothing but the refresh stamp.
        assert Session.objects.count() <= before
        assert Session.objects.filter(expire_date__gt=timezone.now()).count() == 0
