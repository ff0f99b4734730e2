"""Security headers, CSRF enforcement, and `check --deploy` clean in production mode."""

import os
import re
import subprocess
import sys
from pathlib import Path

from django.test import Client

from regulator.choices import Role
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]


def test_headers_on_every_page(db):
    response = Client().get("/accounts/login/")
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_our_pages_have_no_inline_scripts_or_handlers(db):
    templates = list((ROOT / "templates" / "registration").glob("*.html")) + list(
        (ROOT / "templates" / "security").glob("*.html")
    )
    assert templates
    for path in templates:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path
        assert not re.search(r"\son[a-z]+\s*=", text), path


def test_login_requires_csrf_token(db):
    f.user("officer", Role.INSPECTOR)
    client = Client(enforce_csrf_checks=True)
    refused = client.post("/accounts/login/", {"username": "officer", "password": f.PASSWORD})
    assert refused.status_code == 403
    page = client.get("/accounts/login/")
    token = page.cookies["csrftoken"].value
    ok = client.post("/accounts/login/", {"username": "officer", "password": f.PASSWORD, "csrfmiddlewaretoken": token})
    assert ok.status_code == 302


def test_session_api_writes_require_csrf(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.city_admin)
    response = client.post("/notifications/", {})
    assert response.status_code == 403


def _run_deploy_check(extra_env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "DEBUG", "PYTEST"))}
    env.update(
        PRODUCTION="1",
        SECRET_KEY="x" * 20 + "-deploy-check-" + "Yq8#vLp2@Zr6!Kd0^Wn4&Tb9*Hs3%Gm7",
        FIELD_KEYS="k1:" + "ab" * 16,
        SM2_PRIVATE_KEY="1" * 64,
        ALLOWED_HOSTS="regulator.example.cn",
        DJANGO_SETTINGS_MODULE="regulator.settings",
    )
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--tag", "security", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_in_production():
    # The deployment (security-tagged) checks; API schema warnings of other apps are not in scope.
    result = _run_deploy_check()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_keys():
    result = _run_deploy_check({"SM2_PRIVATE_KEY": ""})
    assert result.returncode != 0 and "SM2_PRIVATE_KEY" in result.stderr


def test_production_headers_hsts_and_secure_cookies(settings, db):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    response = Client().get("/accounts/login/", secure=True)
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    assert response.cookies["csrftoken"]["secure"]


def test_csp_allows_websockets_to_this_host_only(db):
    csp = Client().get("/accounts/login/", HTTP_HOST="localhost")["Content-Security-Policy"]
    connect = next(part for part in csp.split(";") if "connect-src" in part).split()
    assert connect == ["connect-src", "'self'", "ws://localhost", "wss://localhost"]
