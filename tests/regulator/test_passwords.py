"""PBKDF2-HMAC-SM3 hashing, the MLPS password rules, expiry and the forced change at first login."""

from datetime import timedelta

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.utils import timezone

from regulator.choices import Role
from regulator.models import AuditEntry, PasswordHistory, User
from regulator.security.hashers import PBKDF2SM3PasswordHasher, pbkdf2_sm3
from tests import factories as f
from tests.regulator.conftest import login


def test_pbkdf2_sm3_matches_an_independent_computation():
    # PBKDF2 (RFC 8018) with HMAC-SM3 built by hand on hmac+SM3 for one 32-byte block.
    import hmac

    from regulator.crypto import sm3

    class SM3:
        digest_size = 32
        block_size = 64

        def __init__(self, data=b""):
            self.buf = data

        def update(self, data):
            self.buf += data

        def digest(self):
            return sm3(self.buf)

        def copy(self):
            return SM3(self.buf)

    password, salt, iterations = b"Passw0rd!", b"salt1234", 50
    u = hmac.new(password, salt + b"\x00\x00\x00\x01", SM3).digest()
    out = bytearray(u)
    for _ in range(iterations - 1):
        u = hmac.new(password, u, SM3).digest()
        out = bytearray(a ^ b for a, b in zip(out, u, strict=True))
    assert pbkdf2_sm3("Passw0rd!", "salt1234", iterations) == bytes(out)


def test_new_passwords_use_sm3_and_verify(db):
    user = f.user("alice", Role.INSPECTOR)
    assert user.password.startswith("pbkdf2_sm3$1000$")
    assert user.check_password(f.PASSWORD)
    assert not user.check_password(f.PASSWORD + "x")


def test_old_sha256_hash_verifies_and_is_upgraded_on_login(db, client, fresh_ip):
    user = f.user("legacy", Role.INSPECTOR)
    legacy = PBKDF2PasswordHasher().encode(f.PASSWORD, "legacysalt123456", iterations=1000)
    User.objects.filter(pk=user.pk).update(password=legacy)
    response = login(client, "legacy", f.PASSWORD, ip=fresh_ip())
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.password.startswith("pbkdf2_sm3$")
    # an upgrade is not a password change: no history row, expiry clock not reset
    assert PasswordHistory.objects.filter(user=user).count() == 0


def test_hasher_upgrades_when_iterations_change(settings):
    hasher = PBKDF2SM3PasswordHasher()
    encoded = hasher.encode("x", hasher.salt(), 1000)
    assert not hasher.must_update(encoded)
    settings.PASSWORD_SM3_ITERATIONS = 2000
    assert hasher.must_update(encoded)


@pytest.mark.parametrize(
    "password, code",
    [
        ("Ab1!", "password_too_short"),
        ("abcdefgh1", "password_too_simple"),  # two classes only
        ("Zhangsan-2026x", "password_contains_username"),
    ],
)
def test_password_rules_refuse(db, password, code):
    user = f.user("zhangsan", Role.INSPECTOR)
    with pytest.raises(ValidationError) as exc:
        validate_password(password, user)
    assert code in [e.code for e in exc.value.error_list]


def test_three_of_four_classes_is_enough(db):
    user = f.user("lisi", Role.INSPECTOR)
    validate_password("kuangjing-2026", user)  # lower + digit + other
    validate_password("Kuangjing2026", user)  # upper + lower + digit


def test_last_five_passwords_cannot_be_reused(db):
    user = f.user("wangwu", Role.INSPECTOR)
    passwords = [f"Anquan-{i}-Jianguan" for i in range(6)]
    for pw in passwords:
        validate_password(pw, user)
        user.set_password(pw)
        user.save()
    # the current one and the four before it are refused ...
    for pw in passwords[1:]:
        with pytest.raises(ValidationError):
            validate_password(pw, user)
    # ... the sixth-last is allowed again
    validate_password(passwords[0], user)
    assert PasswordHistory.objects.filter(user=user).count() == 5


def test_password_set_by_admin_must_be_changed_at_first_login(db, client, fresh_ip):
    admin_user = User.objects.create_superuser("root", password="Root-Passw0rd!")
    new_user = f.user("zhaoliu", Role.INSPECTOR)
    from regulator.requestlocal import _request

    class FakeRequest:
        user = admin_user
        META = {}

    token = _request.set(FakeRequest())
    try:
        new_user.set_password("Chushi-Mima-01")
        new_user.save()
    finally:
        _request.reset(token)
    new_user.refresh_from_db()
    assert new_user.must_change_password

    response = login(client, "zhaoliu", "Chushi-Mima-01", ip=fresh_ip())
    assert response.status_code == 302 and response["Location"].startswith("/accounts/password/")
    # every other page sends them back to the change form ...
    page = client.get("/notifications/")
    assert page.status_code == 302 and page["Location"].startswith("/accounts/password/")
    # ... and the API answers 403 with the reason
    api = client.get("/api/v1/me/")
    assert api.status_code == 403
    assert api.json()["code"] == "password_change_required" and api.json()["reason"] == "initial"

    changed = client.post(
        "/accounts/password/",
        {"old_password": "Chushi-Mima-01", "new_password1": "Ziji-Xuande-02", "new_password2": "Ziji-Xuande-02"},
    )
    assert changed.status_code == 302
    new_user.refresh_from_db()
    assert not new_user.must_change_password
    assert client.get("/notifications/").status_code == 200
    assert AuditEntry.objects.filter(event="password.changed", object_id=str(new_user.pk)).exists()


def test_expired_password_forces_a_change(db, client, fresh_ip):
    user = f.user("sunqi", Role.INSPECTOR)
    User.objects.filter(pk=user.pk).update(password_changed_at=timezone.now() - timedelta(days=91))
    response = login(client, "sunqi", f.PASSWORD, ip=fresh_ip())
    assert response["Location"].startswith("/accounts/password/")
    api = client.get("/api/v1/me/")
    assert api.status_code == 403 and api.json()["reason"] == "expired"


def test_password_of_89_days_is_still_valid(db, client, fresh_ip):
    user = f.user("zhouba", Role.INSPECTOR)
    User.objects.filter(pk=user.pk).update(password_changed_at=timezone.now() - timedelta(days=89))
    login(client, "zhouba", f.PASSWORD, ip=fresh_ip())
    assert client.get("/api/v1/me/").status_code == 200


def test_api_token_user_with_expired_password_gets_403(db, client):
    from rest_framework.authtoken.models import Token

    user = f.user("tokenuser", Role.INSPECTOR)
    token = Token.objects.create(user=user)
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 200
    User.objects.filter(pk=user.pk).update(password_changed_at=timezone.now() - timedelta(days=100))
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 403 and response.json()["reason"] == "expired"
