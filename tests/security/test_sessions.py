"""Sessions and the second factor (issue 16, Low): MFA for every is_staff account, an absolute session
lifetime besides the idle timeout, no-store on logged-in pages, no admin <-> login redirect loop,
and a Secure, SameSite language cookie in production."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.utils import timezone

from regulator.choices import Role
from regulator.models import AuditEntry
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_SM3_ITERATIONS = 1000


def login(client, username, password=f.PASSWORD):
    ip = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_an_is_staff_account_without_an_admin_role_must_pass_the_second_factor(client, db):
    f.user("staff_inspector", Role.INSPECTOR, is_staff=True)
    response = login(client, "staff_inspector")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/enrol/"
    assert SESSION_KEY not in client.session  # no session before the second factor
    assert client.get("/admin/").status_code == 302


def test_an_api_token_is_refused_for_an_is_staff_account(db):
    from rest_framework.authtoken.models import Token

    user = f.user("staff_token", Role.INSPECTOR, is_staff=True)
    token = Token.objects.create(user=user)
    response = Client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 403 and response.json()["code"] == "token_not_allowed"


def test_a_constantly_active_session_ends_after_the_absolute_lifetime(client, db, settings):
    import time_machine

    settings.SESSION_ABSOLUTE_SECONDS = 12 * 3600
    user = f.user("busy", Role.INSPECTOR)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert login(client, "busy").status_code == 302
    # a request every 20 minutes: the idle timeout (30 min) never fires
    minute = 20
    while minute < 12 * 60:
        with time_machine.travel(start + timedelta(minutes=minute), tick=False):
            assert client.get("/notifications/").status_code == 200, f"logged out after {minute} min"
        minute += 20
    with time_machine.travel(start + timedelta(hours=12, minutes=1), tick=False):
        response = client.get("/notifications/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert SESSION_KEY not in client.session
    entry = AuditEntry.objects.filter(event="auth.session_expired").latest("id")
    assert entry.detail == {"user_id": str(user.pk), "why": "absolute"}


def test_a_new_login_restarts_the_absolute_lifetime(client, db, settings):
    import time_machine

    settings.SESSION_ABSOLUTE_SECONDS = 3600
    f.user("again", Role.INSPECTOR)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        login(client, "again")
    with time_machine.travel(start + timedelta(minutes=50), tick=False):
        client.post("/accounts/logout/")
        login(client, "again")
    with time_machine.travel(start + timedelta(minutes=70), tick=False):
        assert client.get("/notifications/").status_code == 200


def test_websocket_session_check_honours_the_absolute_lifetime(client, db, settings):
    import time_machine
    from django.contrib.sessions.backends.db import SessionStore

    from regulator.security import session_alive

    settings.SESSION_ABSOLUTE_SECONDS = 3600
    user = f.user("socket", Role.INSPECTOR)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        login(client, "socket")
    scope = {"session": SessionStore(session_key=client.cookies["sessionid"].value), "user": user}
    for minute in (20, 40):
        with time_machine.travel(start + timedelta(minutes=minute), tick=False):
            client.get("/notifications/")  # keeps it from going idle
            assert session_alive(scope)
    with time_machine.travel(start + timedelta(minutes=61), tick=False):
        assert not session_alive(scope)


def test_every_logged_in_page_says_no_store(client, db):
    client.force_login(f.user("reader", Role.INSPECTOR))
    for path in ("/enterprises/", "/notifications/", "/api/v1/me/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"], path


def test_an_anonymous_public_response_is_not_forced_to_no_store(client, db):
    response = Client().get("/healthz")
    assert "no-store" not in response.get("Cache-Control", "")


def test_admin_for_a_logged_in_user_without_staff_rights_answers_once(client, db):
    client.force_login(f.user("plain", Role.INSPECTOR))
    seen, path = [], "/admin/"
    for _ in range(5):
        response = client.get(path)
        seen.append((path, response.status_code))
        if response.status_code not in (301, 302):
            break
        path = response["Location"]
        assert path not in [p for p, _ in seen], f"redirect loop: {seen}"
    assert response.status_code == 403, seen
    assert "无权访问系统后台" in response.content.decode()
    assert len(seen) <= 2


def test_admin_for_an_anonymous_user_still_goes_to_the_platform_login(client, db):
    response = client.get("/admin/")
    assert response.status_code == 302
    follow = client.get(response["Location"])
    assert follow.status_code == 302 and follow["Location"].startswith("/accounts/login/")


def test_language_cookie_carries_the_configured_flags(client, db, settings):
    settings.LANGUAGE_COOKIE_SECURE = True
    settings.LANGUAGE_COOKIE_SAMESITE = "Lax"
    settings.LANGUAGE_COOKIE_HTTPONLY = True
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    cookie = response.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert cookie["secure"] and cookie["samesite"] == "Lax" and cookie["httponly"]


def _production_settings(*names):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "DEBUG", "PYTEST"))}
    env.update(
        PRODUCTION="1",
        SECRET_KEY="x" * 20 + "-sessions-" + "Yq8#vLp2@Zr6!Kd0^Wn4&Tb9*Hs3%Gm7",
        FIELD_KEYS="k1:" + "ab" * 16,
        SM2_PRIVATE_KEY="1" * 64,
        ALLOWED_HOSTS="regulator.example.cn",
        DJANGO_SETTINGS_MODULE="regulator.settings",
    )
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_settings_make_the_language_cookie_secure_and_same_site():
    values = _production_settings(
        "LANGUAGE_COOKIE_SECURE", "LANGUAGE_COOKIE_SAMESITE", "LANGUAGE_COOKIE_HTTPONLY", "SESSION_ABSOLUTE_SECONDS"
    )
    assert values == {
        "LANGUAGE_COOKIE_SECURE": True,
        "LANGUAGE_COOKIE_SAMESITE": "Lax",
        "LANGUAGE_COOKIE_HTTPONLY": True,
        "SESSION_ABSOLUTE_SECONDS": 12 * 3600,
    }


def test_a_password_only_session_ends_when_the_account_is_made_staff(client, db):
    user = f.user("promoted", Role.INSPECTOR)
    assert login(client, "promoted").status_code == 302
    assert client.get("/notifications/").status_code == 200
    type(user).objects.filter(pk=user.pk).update(is_staff=True)
    response = client.get("/notifications/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert SESSION_KEY not in client.session
    assert AuditEntry.objects.filter(event="auth.logout", user_id=user.pk).exists()
