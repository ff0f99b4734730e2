"""TOTP second factor for admin roles: enrolment, verification, replay refused, secret encrypted."""

import pyotp
import pytest
from django.contrib.auth import SESSION_KEY

from regulator.choices import Role
from regulator.models import AuditEntry, TOTPDevice
from regulator.security import totp
from tests import factories as f
from tests.regulator.conftest import login


@pytest.fixture
def sysadmin(db):
    return f.user("sysadmin", Role.SYSTEM_ADMIN)


def enrol(client, user, ip):
    response = login(client, user.username, f.PASSWORD, ip=ip)
    assert response.status_code == 302 and response["Location"] == "/accounts/login/enrol/"
    page = client.get("/accounts/login/enrol/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "otpauth://totp/" in body and "<svg" in body
    device = TOTPDevice.objects.get(user=user)
    assert device.secret.replace(" ", "")[:4] in body
    return device


@pytest.mark.parametrize("role", [Role.REGULATOR_ADMIN, Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDITOR])
def test_admin_roles_get_no_session_before_the_second_factor(client, db, role, fresh_ip):
    user = f.user(f"u_{role}", role)
    login(client, user.username, f.PASSWORD, ip=fresh_ip())
    assert SESSION_KEY not in client.session
    assert client.get("/notifications/").status_code == 302


def test_inspector_needs_no_second_factor(client, db, fresh_ip):
    f.user("plain", Role.INSPECTOR)
    assert login(client, "plain", f.PASSWORD, ip=fresh_ip()).status_code == 302
    assert SESSION_KEY in client.session


def test_enrol_then_verify_then_replay_is_refused(client, sysadmin, fresh_ip):
    ip = fresh_ip()
    device = enrol(client, sysadmin, ip)
    code = pyotp.TOTP(device.secret).now()
    response = client.post("/accounts/login/enrol/", {"code": code}, REMOTE_ADDR=ip)
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(sysadmin.pk)
    assert AuditEntry.objects.filter(event="mfa.enrolled", user_id=sysadmin.pk).exists()
    device.refresh_from_db()
    assert device.confirmed_at is not None

    # Next login: password then the same code again -> refused (replay), a later code -> accepted
    client.post("/accounts/logout/")
    assert login(client, "sysadmin", f.PASSWORD, ip=ip)["Location"] == "/accounts/login/verify/"
    replay = client.post("/accounts/login/verify/", {"code": code}, REMOTE_ADDR=ip)
    assert replay.status_code == 200 and SESSION_KEY not in client.session
    assert AuditEntry.objects.filter(event="mfa.failed", user_id=sysadmin.pk).exists()
    import time

    next_code = pyotp.TOTP(device.secret).at(time.time() + 30)
    ok = client.post("/accounts/login/verify/", {"code": next_code}, REMOTE_ADDR=ip)
    assert ok.status_code == 302 and client.session[SESSION_KEY] == str(sysadmin.pk)
    assert client.session["security.mfa_verified"] is True


def test_totp_verify_is_once_per_step(db, sysadmin):
    device = totp.start_enrolment(sysadmin)
    now = 1_800_000_000
    code = pyotp.TOTP(device.secret).at(now)
    assert totp.verify(device, code, now=now)
    assert not totp.verify(device, code, now=now)
    fresh = TOTPDevice.objects.get(pk=device.pk)
    assert not totp.verify(fresh, code, now=now + 5)  # another process, same step: still refused
    assert not totp.verify(fresh, pyotp.TOTP(device.secret).at(now - 30), now=now)  # older step
    assert totp.verify(fresh, pyotp.TOTP(device.secret).at(now + 30), now=now + 30)
    assert not totp.verify(fresh, "12345", now=now) and not totp.verify(fresh, "abcdef", now=now)


def test_secret_is_stored_encrypted(db, sysadmin):
    device = totp.start_enrolment(sysadmin)
    raw = TOTPDevice.objects.filter(pk=device.pk).values_list("secret", flat=True).get()
    assert device.secret not in raw and "$" in raw
    assert TOTPDevice.objects.get(pk=device.pk).secret == device.secret


def test_wrong_codes_count_towards_lockout(client, sysadmin, fresh_ip):
    ip = fresh_ip()
    device = enrol(client, sysadmin, ip)
    client.post("/accounts/login/enrol/", {"code": pyotp.TOTP(device.secret).now()}, REMOTE_ADDR=ip)
    client.post("/accounts/logout/")
    login(client, "sysadmin", f.PASSWORD, ip=ip)
    for _ in range(4):
        client.post("/accounts/login/verify/", {"code": "000000"}, REMOTE_ADDR=fresh_ip())
    # the fifth failure (4 codes + nothing else) is reached with one more wrong code
    response = client.post("/accounts/login/verify/", {"code": "000000"}, REMOTE_ADDR=fresh_ip())
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert login(client, "sysadmin", f.PASSWORD, ip=fresh_ip()).status_code == 403


def test_pending_login_expires(client, sysadmin, fresh_ip):
    import time_machine

    ip = fresh_ip()
    enrol(client, sysadmin, ip)
    with time_machine.travel(__import__("time").time() + 400):
        response = client.get("/accounts/login/enrol/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"


def test_admin_site_login_goes_through_the_platform_flow(client, db):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_security_admin_resets_a_lost_device(db, sysadmin):
    secadmin = f.user("secadmin", Role.SECURITY_ADMIN)
    device = totp.start_enrolment(sysadmin)
    device.confirmed_at = device.created_at
    device.save()
    assert totp.reset_device(sysadmin, by=secadmin)
    assert not TOTPDevice.objects.filter(user=sysadmin).exists()
    assert AuditEntry.objects.filter(event="mfa.reset", user_id=secadmin.pk, object_id=str(sysadmin.pk)).exists()


def test_demo_totp_code_command(db, sysadmin, settings, capsys):
    from django.core.management import CommandError, call_command

    device = totp.start_enrolment(sysadmin)
    call_command("totp_code", "sysadmin")
    code = capsys.readouterr().out.strip()
    assert totp.verify(device, code)
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="PRODUCTION"):
        call_command("totp_code", "sysadmin")


def test_admin_roles_cannot_use_api_tokens_around_the_second_factor(db, sysadmin):
    from django.test import Client
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=sysadmin)
    response = Client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 403 and response.json()["code"] == "token_not_allowed"
    inspector = f.user("tokeninspector", Role.INSPECTOR)
    ok = Client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=inspector).key}")
    assert ok.status_code == 200
