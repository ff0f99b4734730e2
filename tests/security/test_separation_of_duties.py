"""Separation of duties (三权分立): who may grant which role, flag, permission or group, checked in
the services (regulator.grants), the admin forms and the model-level guards, every change audited
with its actor; and the per-token throttle of the readings ingest (429 + Retry-After)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.test import Client
from rest_framework.test import APIClient

from regulator import grants
from regulator.choices import Role
from regulator.models import AuditEntry, User
from tests import factories as f


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_SM3_ITERATIONS = 1000


def perm(label: str) -> Permission:
    app_label, codename = label.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


@pytest.fixture
def people(db):
    """Made from the server console (no actor), the designated path for MLPS administrators."""
    sysadmin = f.user("sysadmin", Role.SYSTEM_ADMIN, is_staff=True)
    sysadmin.user_permissions.add(
        *[perm(p) for p in ("regulator.view_user", "regulator.add_user", "regulator.change_user")],
        *[perm(p) for p in ("auth.view_group", "auth.add_group", "auth.change_group")],
    )
    secadmin = f.user("secadmin", Role.SECURITY_ADMIN, is_staff=True)
    secadmin.user_permissions.add(perm("regulator.unlock_account"), perm("regulator.view_user"))
    clerk = f.user("clerk", Role.INSPECTOR)
    root = User.objects.create_superuser("root", password=f.PASSWORD)
    return type("People", (), {"sysadmin": sysadmin, "secadmin": secadmin, "clerk": clerk, "root": root})


def as_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def change_form(user, **overrides) -> dict:
    """What the admin's user change form posts for ``user`` as it is, with ``overrides``."""
    user.refresh_from_db()
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "full_name": user.full_name,
        "role": user.role,
        "enterprise_role": user.enterprise_role,
        "jurisdiction": user.jurisdiction_id or "",
        "park": user.park_id or "",
        "groups": [g.pk for g in user.groups.all()],
        "user_permissions": [p.pk for p in user.user_permissions.all()],
    }
    for flag in ("is_active", "is_staff", "is_superuser", "must_change_password"):
        if getattr(user, flag):
            data[flag] = "on"
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def post_change(actor, target, **overrides):
    return as_client(actor).post(f"/admin/regulator/user/{target.pk}/change/", change_form(target, **overrides))


def holds(user, label: str) -> bool:
    return User.objects.get(pk=user.pk).has_perm(label)


# --- The system administrator -----------------------------------------------------------------


def test_sysadmin_manages_ordinary_users_in_the_admin(people):
    """The baseline: the form works, so the refusals below are the rule and not a broken form."""
    reveal = perm("regulator.reveal_sensitive")
    response = post_change(
        people.sysadmin, people.clerk, user_permissions=[reveal.pk], role=Role.SECTION_HEAD, full_name="张三"
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    people.clerk.refresh_from_db()
    assert people.clerk.role == Role.SECTION_HEAD and holds(people.clerk, "regulator.reveal_sensitive")


def test_sysadmin_cannot_grant_itself_unlock_account_in_the_admin(people):
    unlock = perm("regulator.unlock_account")
    mine = [p.pk for p in people.sysadmin.user_permissions.all()]
    response = post_change(people.sysadmin, people.sysadmin, user_permissions=[*mine, unlock.pk])
    assert response.status_code == 200
    body = response.content.decode()
    assert "不得给自己授权" in body and "只有超级用户可以授予三权分立职责权限" in body
    assert not holds(people.sysadmin, "regulator.unlock_account")


def test_sysadmin_cannot_grant_itself_unlock_account_through_the_service(people):
    with pytest.raises(grants.GrantRefused):
        grants.user_grant_permissions(user=people.sysadmin, perms=["regulator.unlock_account"], by=people.sysadmin)
    # Nor by going round the service: the model-level guard sees the same actor.
    with pytest.raises(grants.GrantRefused), grants.acting_as(people.sysadmin), transaction.atomic():
        people.sysadmin.user_permissions.add(perm("regulator.unlock_account"))
    assert not holds(people.sysadmin, "regulator.unlock_account")
    refused = AuditEntry.objects.filter(event="permission.grant_refused", user_id=people.sysadmin.pk)
    assert refused.count() == 1 and refused.get().outcome == "failure"


def test_sysadmin_cannot_join_a_group_that_carries_unlock_account(people):
    group = Group.objects.create(name="解锁")
    group.permissions.add(perm("regulator.unlock_account"))
    response = post_change(people.sysadmin, people.sysadmin, groups=[group.pk])
    assert response.status_code == 200 and "不得给自己授权" in response.content.decode()
    assert not people.sysadmin.groups.exists() and not holds(people.sysadmin, "regulator.unlock_account")


def test_sysadmin_cannot_grant_security_permissions_to_an_ordinary_user(people):
    response = post_change(people.sysadmin, people.clerk, user_permissions=[perm("regulator.unlock_account").pk])
    assert response.status_code == 200 and "只有超级用户可以授予三权分立职责权限" in response.content.decode()
    assert not holds(people.clerk, "regulator.unlock_account")


def test_sysadmin_cannot_set_is_superuser_on_others(people):
    response = post_change(people.sysadmin, people.clerk, is_superuser="on")
    assert response.status_code in (200, 302)
    assert not User.objects.get(pk=people.clerk.pk).is_superuser
    with pytest.raises(grants.GrantRefused):
        grants.user_set_privileges(user=people.clerk, is_superuser=True, by=people.sysadmin)
    assert not User.objects.get(pk=people.clerk.pk).is_superuser


def test_sysadmin_cannot_give_admin_access(people):
    response = post_change(people.sysadmin, people.clerk, is_staff="on")
    assert response.status_code == 200 and "只有超级用户可以授予管理后台访问" in response.content.decode()
    assert not User.objects.get(pk=people.clerk.pk).is_staff


@pytest.mark.parametrize("role", [Role.SECURITY_ADMIN, Role.AUDITOR, Role.SYSTEM_ADMIN])
def test_sysadmin_cannot_make_someone_an_mlps_admin(people, role):
    response = post_change(people.sysadmin, people.clerk, role=role)
    assert response.status_code == 200 and "只有超级用户可以设置三权分立角色" in response.content.decode()
    assert User.objects.get(pk=people.clerk.pk).role == Role.INSPECTOR
    with pytest.raises(grants.GrantRefused):
        grants.user_set_privileges(user=people.clerk, role=role, by=people.sysadmin)
    assert User.objects.get(pk=people.clerk.pk).role == Role.INSPECTOR


def test_sysadmin_cannot_take_over_the_security_admins_account(people):
    """Resetting the security admin's password would make the system admin the security admin."""
    client = as_client(people.sysadmin)
    assert client.get(f"/admin/regulator/user/{people.secadmin.pk}/password/").status_code == 403
    response = client.post(
        f"/admin/regulator/user/{people.secadmin.pk}/change/", change_form(people.secadmin, user_permissions=[])
    )
    assert response.status_code == 403
    assert holds(people.secadmin, "regulator.unlock_account")


def test_sysadmin_cannot_delete_an_mlps_admin_by_bulk_action(people):
    """The changelist's bulk delete checks only the model permission; the model guard checks the object."""
    people.sysadmin.user_permissions.add(perm("regulator.delete_user"))
    response = as_client(people.sysadmin).post(
        "/admin/regulator/user/",
        {"action": "delete_selected", "_selected_action": [people.secadmin.pk], "post": "yes"},
    )
    assert response.status_code == 403
    assert User.objects.filter(pk=people.secadmin.pk).exists()
    # Nor round the admin: the model-level guard refuses the delete itself.
    with pytest.raises(grants.GrantRefused), grants.acting_as(people.sysadmin), transaction.atomic():
        User.objects.filter(pk=people.secadmin.pk).delete()
    assert User.objects.filter(pk=people.secadmin.pk).exists()


def test_user_clean_refuses_two_duties(people):
    from django.core.exceptions import ValidationError

    people.clerk.user_permissions.add(perm("regulator.unlock_account"))
    people.clerk.role = Role.AUDITOR
    with pytest.raises(ValidationError, match="不能同时承担"):
        people.clerk.full_clean()


def test_sysadmin_cannot_grant_security_permissions_through_a_group(people):
    unlock = perm("regulator.unlock_account")
    group = Group.objects.create(name="值班")
    people.sysadmin.groups.add(group)  # from the console
    people.clerk.groups.add(group)
    client = as_client(people.sysadmin)
    response = client.post(f"/admin/auth/group/{group.pk}/change/", {"name": "值班", "permissions": [unlock.pk]})
    assert response.status_code == 200
    body = response.content.decode()
    assert "不得给自己授权" in body and "只有超级用户可以授予三权分立职责权限" in body
    assert not group.permissions.exists()
    # A business permission for a group of ordinary users is the system admin's job.
    people.sysadmin.groups.remove(group)
    reveal = perm("regulator.reveal_sensitive")
    response = client.post(f"/admin/auth/group/{group.pk}/change/", {"name": "值班", "permissions": [reveal.pk]})
    assert response.status_code == 302 and holds(people.clerk, "regulator.reveal_sensitive")


# --- One duty per account -------------------------------------------------------------------


DUTY_PERMISSION = {
    Role.SYSTEM_ADMIN: "regulator.change_user",
    Role.SECURITY_ADMIN: "regulator.unlock_account",
    Role.AUDITOR: "regulator.view_auditentry",
}
PAIRS = [(a, b) for a in DUTY_PERMISSION for b in DUTY_PERMISSION if a != b]


@pytest.mark.parametrize(("role", "other"), PAIRS)
def test_an_mlps_admin_cannot_take_a_second_duty_by_permission(people, role, other):
    """Role first, then another duty's permission: refused even to the superuser and the console."""
    user = f.user("someone", role)
    for by in (people.root, None):
        with pytest.raises(grants.GrantRefused, match="三权分立"):
            grants.user_grant_permissions(user=user, perms=[DUTY_PERMISSION[other]], by=by)
    assert not holds(user, DUTY_PERMISSION[other])


@pytest.mark.parametrize(("role", "other"), PAIRS)
def test_a_holder_of_one_duty_cannot_be_given_another_mlps_role(people, role, other):
    """Another duty's permission first, then the role: refused in the service and the admin."""
    user = f.user("someone", Role.INSPECTOR)
    grants.user_grant_permissions(user=user, perms=[DUTY_PERMISSION[other]], by=people.root)
    with pytest.raises(grants.GrantRefused, match="三权分立"):
        grants.user_set_privileges(user=user, role=role, by=people.root)
    response = post_change(people.root, user, role=role)
    assert response.status_code == 200 and "不能同时承担" in response.content.decode()
    assert User.objects.get(pk=user.pk).role == Role.INSPECTOR


def test_a_group_cannot_carry_a_second_duty_to_an_mlps_admin(people):
    group = Group.objects.create(name="账户管理")
    group.permissions.add(perm("regulator.change_user"))
    with pytest.raises(grants.GrantRefused, match="三权分立"):
        grants.user_add_groups(user=people.secadmin, groups=[group], by=people.root)
    # Nor the other way round: a permission added to a group a security admin is in.
    group.permissions.clear()
    people.secadmin.groups.add(group)
    with pytest.raises(grants.GrantRefused, match="三权分立"):
        grants.group_grant_permissions(group=group, perms=["regulator.change_user"], by=people.root)
    assert not holds(people.secadmin, "regulator.change_user")


def test_an_mlps_admin_is_never_a_superuser(people):
    with pytest.raises(grants.GrantRefused):
        grants.user_set_privileges(user=people.secadmin, is_superuser=True, by=people.root)
    with pytest.raises(grants.GrantRefused):
        grants.user_set_privileges(user=people.root, role=Role.AUDITOR, by=None)


def test_secadmin_cannot_grant_itself_user_management(people):
    with pytest.raises(grants.GrantRefused) as refused:
        grants.user_grant_permissions(user=people.secadmin, perms=["regulator.change_user"], by=people.secadmin)
    assert "不得给自己授权" in refused.value.messages
    assert not holds(people.secadmin, "regulator.change_user")
    # Nor can it hand user management (or anything) to somebody else.
    with pytest.raises(grants.GrantRefused):
        grants.user_grant_permissions(user=people.clerk, perms=["regulator.reveal_sensitive"], by=people.secadmin)


def test_superuser_cannot_grant_to_itself_but_can_appoint_admins(people):
    with pytest.raises(grants.GrantRefused, match="不得给自己授权"):
        grants.user_grant_permissions(user=people.root, perms=["regulator.reveal_sensitive"], by=people.root)
    grants.user_set_privileges(user=people.clerk, role=Role.AUDITOR, is_staff=False, by=people.root)
    assert User.objects.get(pk=people.clerk.pk).role == Role.AUDITOR


# --- Every grant and revoke audited once, with the actor ------------------------------------


def new_entries(since: int):
    return list(AuditEntry.objects.filter(pk__gt=since).exclude(event__startswith="config.").order_by("id"))


def last_id() -> int:
    return AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0


@pytest.mark.parametrize(
    ("grant", "revoke", "event"),
    [
        (
            lambda p, by: grants.user_grant_permissions(user=p.clerk, perms=["regulator.reveal_sensitive"], by=by),
            lambda p, by: grants.user_revoke_permissions(user=p.clerk, perms=["regulator.reveal_sensitive"], by=by),
            "permission.user_permissions_changed",
        ),
        (
            lambda p, by: grants.user_add_groups(user=p.clerk, groups=[Group.objects.get(name="g")], by=by),
            lambda p, by: grants.user_remove_groups(user=p.clerk, groups=[Group.objects.get(name="g")], by=by),
            "permission.user_groups_changed",
        ),
        (
            lambda p, by: grants.group_grant_permissions(
                group=Group.objects.get(name="g"), perms=["regulator.reveal_sensitive"], by=by
            ),
            lambda p, by: grants.group_revoke_permissions(
                group=Group.objects.get(name="g"), perms=["regulator.reveal_sensitive"], by=by
            ),
            "permission.group_permissions_changed",
        ),
        (
            lambda p, by: grants.user_set_privileges(user=p.clerk, role=Role.SECTION_HEAD, by=by),
            lambda p, by: grants.user_set_privileges(user=p.clerk, role=Role.INSPECTOR, by=by),
            "user.roles_changed",
        ),
    ],
    ids=["user-permission", "group-membership", "group-permission", "role"],
)
def test_each_grant_and_revoke_writes_one_audit_row_with_the_actor(people, grant, revoke, event):
    Group.objects.create(name="g")
    for step in (grant, revoke):
        since = last_id()
        step(people, people.sysadmin)
        rows = new_entries(since)
        assert [r.event for r in rows] == [event]
        assert rows[0].user_id == people.sysadmin.pk and rows[0].detail["actor"] == "sysadmin"


def test_an_admin_grant_writes_one_grant_row_with_the_actor(people):
    since = last_id()
    reveal = perm("regulator.reveal_sensitive")
    assert post_change(people.sysadmin, people.clerk, user_permissions=[reveal.pk]).status_code == 302
    rows = [r for r in new_entries(since) if r.event.startswith("permission.")]
    assert len(rows) == 1 and rows[0].user_id == people.sysadmin.pk
    assert rows[0].detail["action"] == "add" and rows[0].object_id == str(people.clerk.pk)


def test_a_refused_admin_grant_is_audited_as_a_failure(people):
    since = last_id()
    post_change(people.sysadmin, people.sysadmin, role=Role.SECURITY_ADMIN)
    rows = new_entries(since)
    assert [r.event for r in rows] == ["permission.grant_refused"]
    assert rows[0].outcome == "failure" and rows[0].user_id == people.sysadmin.pk


# --- Through real HTTP ---------------------------------------------------------------------------


@pytest.fixture
def server(live_server):
    """The live server, usable with MEDIA_URL = None: Django's test media handler parses it at start
    and None gives it a bytes URL that fails every request, so give it a prefix no request uses."""
    from urllib.parse import urlparse

    media = getattr(live_server.thread.httpd.get_app(), "application", None)
    if media is not None and isinstance(getattr(media, "base_url", None), tuple) and media.base_url.path == b"":
        media.base_url = urlparse("/__no_media__/")
    return live_server


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def test_sysadmin_self_grant_is_refused_over_real_http(server, people):
    cookie = session_cookie(people.sysadmin)
    url = f"{server.url}/admin/regulator/user/{people.sysadmin.pk}/change/"
    page = urllib.request.urlopen(urllib.request.Request(url, headers={"Cookie": cookie}), timeout=30)
    csrf_cookie = next(h for h in page.headers.get_all("Set-Cookie") or [] if h.startswith("csrftoken="))
    csrf_cookie = csrf_cookie.split(";")[0]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.read().decode()).group(1)
    data = change_form(people.sysadmin)
    data["user_permissions"] = [*data["user_permissions"], perm("regulator.unlock_account").pk]
    data["csrfmiddlewaretoken"] = token
    pairs = [(k, v) for k, vs in data.items() for v in (vs if isinstance(vs, list) else [vs])]
    body = urllib.parse.urlencode(pairs).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Cookie": f"{cookie}; {csrf_cookie}", "Referer": url}, method="POST"
    )
    answer = urllib.request.urlopen(request, timeout=30)
    assert answer.status == 200 and "不得给自己授权" in answer.read().decode()
    assert not holds(people.sysadmin, "regulator.unlock_account")


# --- The readings ingest throttle ----------------------------------------------------------------


@pytest.fixture
def tokens(world):
    from devices.services import ingest_token_create

    return [ingest_token_create(enterprise=world.here, name=f"DCS{i}")[1] for i in range(2)]


def ingest(raw):
    return APIClient().post("/api/v1/readings/", {"readings": []}, format="json", HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_ingest_is_throttled_per_token(settings, tokens):
    settings.DEVICES_INGEST_RATE = "5/hour"
    first, second = tokens
    assert [ingest(first).status_code for _ in range(5)] == [200] * 5
    refused = ingest(first)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1 and "请求过于频繁" in refused.json()["detail"]
    assert ingest(second).status_code == 200  # another enterprise's feed is not slowed


def _raw_post(url, raw):
    request = urllib.request.Request(
        url,
        data=json.dumps({"readings": []}).encode(),
        headers={"Authorization": f"Bearer {raw}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.headers.get("Retry-After")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Retry-After")


def test_ingest_throttle_is_atomic_under_concurrent_requests(server, settings, tokens):
    settings.DEVICES_INGEST_RATE = "10/day"
    first, second = tokens
    url = f"{server.url}/api/v1/readings/"
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: _raw_post(url, first), range(40)))
    codes = [code for code, _ in answers]
    assert codes.count(200) == 10, codes
    assert codes.count(429) == 30
    assert all(retry and int(retry) >= 1 for code, retry in answers if code == 429)
    assert _raw_post(url, second)[0] == 200
