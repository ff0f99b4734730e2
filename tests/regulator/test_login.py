"""Login flow: audit with source IP, new session id, lockout and unlock, rate limits, idle timeout."""

from datetime import timedelta

import pytest
from django.contrib.auth import SESSION_KEY
from django.utils import timezone

from regulator.choices import Role
from regulator.models import AuditEntry, LoginLock
from tests import factories as f
from tests.regulator.conftest import login


@pytest.fixture
def officer(db):
    return f.user("officer", Role.INSPECTOR)


def test_successful_login_is_audited_with_ip_and_gets_a_new_session_id(client, officer, fresh_ip):
    ip = fresh_ip()
    client.get("/accounts/login/")
    session = client.session
    session["pre_login"] = "x"
    session.save()
    before = session.session_key
    response = login(client, "officer", f.PASSWORD, ip=ip)
    assert response.status_code == 302
    after = client.cookies["sessionid"].value
    assert after != before  # no session fixation
    assert client.session[SESSION_KEY] == str(officer.pk)
    entry = AuditEntry.objects.filter(event="auth.login").latest("id")
    assert entry.user_id == officer.pk and entry.source_ip == ip and entry.outcome == "success"


def test_failure_is_audited_with_username_and_ip(client, officer, fresh_ip):
    ip = fresh_ip()
    response = login(client, "officer", "wrong-Passw0rd", ip=ip)
    assert response.status_code == 200 and "用户名或密码错误" in response.content.decode()
    entry = AuditEntry.objects.filter(event="auth.login_failed").latest("id")
    assert entry.username == "officer" and entry.source_ip == ip and entry.outcome == "failure"
    assert SESSION_KEY not in client.session


def test_logout_is_audited(client, officer, fresh_ip):
    login(client, "officer", f.PASSWORD, ip=fresh_ip())
    client.post("/accounts/logout/")
    assert AuditEntry.objects.filter(event="auth.logout", user_id=officer.pk).exists()


def test_five_failures_lock_the_account_for_30_minutes_even_with_the_right_password(client, officer, fresh_ip):
    for _ in range(5):
        login(client, "officer", "Wrong-Passw0rd", ip=fresh_ip())  # different IPs: the account counter
    lock = LoginLock.objects.get(scope="account", key="officer")
    assert lock.failures == 5
    assert timedelta(minutes=29) < lock.locked_until - timezone.now() <= timedelta(minutes=30)
    response = login(client, "officer", f.PASSWORD, ip=fresh_ip())
    assert response.status_code == 403 and "锁定" in response.content.decode()
    assert SESSION_KEY not in client.session
    assert AuditEntry.objects.filter(event="auth.lockout", detail__scope="account").count() == 1
    assert AuditEntry.objects.filter(event="auth.login_refused").exists()


def test_four_failures_then_success_resets_the_account_counter(client, officer, fresh_ip):
    for _ in range(4):
        login(client, "officer", "Wrong-Passw0rd", ip=fresh_ip())
    assert login(client, "officer", f.PASSWORD, ip=fresh_ip()).status_code == 302
    assert LoginLock.objects.get(scope="account", key="officer").failures == 0


def test_lock_expires_after_30_minutes(client, officer, fresh_ip):
    import time_machine as tm

    for _ in range(5):
        login(client, "officer", "Wrong-Passw0rd", ip=fresh_ip())
    with tm.travel(timezone.now() + timedelta(minutes=31)):
        assert login(client, "officer", f.PASSWORD, ip=fresh_ip()).status_code == 302


def test_security_admin_unlocks_and_it_is_audited(client, officer, fresh_ip, db):
    for _ in range(5):
        login(client, "officer", "Wrong-Passw0rd", ip=fresh_ip())
    lock = LoginLock.objects.get(scope="account", key="officer")
    secadmin = f.user("secadmin", Role.SECURITY_ADMIN)
    sysadmin = f.user("sysadmin", Role.SYSTEM_ADMIN)
    from django.test import Client

    as_sys = Client()
    as_sys.force_login(sysadmin)
    assert as_sys.get("/accounts/security/locks/").status_code == 403
    assert as_sys.post(f"/accounts/security/locks/{lock.pk}/unlock/").status_code == 403

    as_sec = Client()
    as_sec.force_login(secadmin)
    page = as_sec.get("/accounts/security/locks/")
    assert page.status_code == 200 and "officer" in page.content.decode()
    assert as_sec.post(f"/accounts/security/locks/{lock.pk}/unlock/").status_code == 302
    lock.refresh_from_db()
    assert lock.locked_until is None and lock.failures == 0
    assert AuditEntry.objects.filter(event="auth.unlock", user_id=secadmin.pk, object_id=str(lock.pk)).exists()
    assert login(client, "officer", f.PASSWORD, ip=fresh_ip()).status_code == 302


def test_login_rate_limit_answers_429_with_retry_after_without_hurting_others(client, officer, fresh_ip, settings):
    settings.SECURITY_LOGIN_RATE_IP_USERNAME = "3/min"
    hammer_ip = fresh_ip()
    codes = [login(client, "officer", "x", ip=hammer_ip).status_code for _ in range(4)]
    assert codes[:3] == [200, 200, 200]
    assert codes[3] == 429
    limited = login(client, "officer", "x", ip=hammer_ip)
    assert limited.status_code == 429 and 1 <= int(limited["Retry-After"]) <= 61
    assert AuditEntry.objects.filter(event="auth.rate_limited").exists()
    # someone else, from elsewhere, logs in normally
    from django.test import Client

    f.user("bystander", Role.INSPECTOR)
    assert login(Client(), "bystander", f.PASSWORD, ip=fresh_ip()).status_code == 302


def test_api_throttle_is_per_user(db, settings):
    from django.core.cache import cache
    from django.test import Client

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "3/min"},
    }
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    original_rates = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    try:
        greedy, polite = f.user("greedy", Role.INSPECTOR), f.user("polite", Role.INSPECTOR)
        cache.delete_many([f"throttle_user_{greedy.pk}", f"throttle_user_{polite.pk}"])
        a, b = Client(), Client()
        a.force_login(greedy)
        b.force_login(polite)
        codes = [a.get("/api/v1/me/").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        response = a.get("/api/v1/me/")
        assert response.status_code == 429 and int(response["Retry-After"]) > 0
        assert b.get("/api/v1/me/").status_code == 200
    finally:
        # Restore the class attribute itself: the settings fixture is still overridden here.
        SimpleRateThrottle.THROTTLE_RATES = original_rates


def test_idle_session_ends_after_30_minutes_and_activity_extends_it(client, officer, fresh_ip):
    import time_machine as tm

    start = timezone.now()
    login(client, "officer", f.PASSWORD, ip=fresh_ip())
    with tm.travel(start + timedelta(minutes=25)):
        assert client.get("/notifications/").status_code == 200  # activity slides the expiry
    with tm.travel(start + timedelta(minutes=50)):
        assert client.get("/notifications/").status_code == 200  # 25 min after the last request
    with tm.travel(start + timedelta(minutes=81)):
        response = client.get("/notifications/")  # 31 min idle
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_session_alive_for_websockets(client, officer, fresh_ip):
    import time_machine as tm
    from django.contrib.sessions.backends.db import SessionStore

    from regulator.security import session_alive

    start = timezone.now()
    login(client, "officer", f.PASSWORD, ip=fresh_ip())
    scope = {"session": SessionStore(session_key=client.cookies["sessionid"].value), "user": officer}
    assert session_alive(scope)
    with tm.travel(start + timedelta(minutes=31)):
        assert not session_alive(scope)
    client.post("/accounts/logout/")
    assert not session_alive(scope)
    assert not session_alive({"session": SessionStore(), "user": officer})
