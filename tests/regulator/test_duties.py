"""Separation of duties (三权分立) and the audit of role and permission changes."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import Client

from regulator.audit import record_event
from regulator.choices import Role
from regulator.grants import GrantRefused
from regulator.models import AuditEntry, User
from tests import factories as f


def as_client(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", [Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDITOR])
def test_mlps_role_cannot_also_be_superuser(db, role):
    user = User(username=f"x_{role}", role=role, is_superuser=True)
    with pytest.raises(ValidationError):
        user.full_clean()
    with pytest.raises(GrantRefused):
        User.objects.create(username=f"y_{role}", role=role, is_superuser=True)
    # The database refuses it too, when the model-level guard is skipped (bulk_create sends no signal).
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.bulk_create([User(username=f"z_{role}", role=role, is_superuser=True)])


def test_superuser_with_business_role_is_allowed(db):
    User.objects.create(username="root", role=Role.REGULATOR_ADMIN, is_superuser=True)


def test_only_the_auditor_reads_the_audit_log(world):
    record_event(event="test.event", detail={"k": "v"})
    sysadmin = f.user("sysadmin", Role.SYSTEM_ADMIN)
    secadmin = f.user("secadmin", Role.SECURITY_ADMIN)
    root = User.objects.create_superuser("root", password="Root-Passw0rd!")
    for user in (sysadmin, secadmin, root, world.inspector, world.city_admin):
        assert as_client(user).get("/accounts/security/audit/").status_code == 404, user.role
        assert as_client(user).get("/accounts/security/audit/export.csv").status_code == 404
    page = as_client(world.auditor).get("/accounts/security/audit/")
    assert page.status_code == 200 and "test.event" in page.content.decode()


def test_audit_log_is_not_in_the_admin(db):
    root = User.objects.create_superuser("root", password="Root-Passw0rd!")
    client = as_client(root)
    assert client.get("/admin/regulator/auditentry/").status_code == 404


def test_auditor_filters_and_verifies_the_chain(world):
    record_event(event="auth.login_failed", outcome="failure", detail={"username": "mallory"})
    record_event(event="auth.login", user=world.inspector)
    client = as_client(world.auditor)
    body = client.get("/accounts/security/audit/?outcome=failure").content.decode()
    assert "auth.login_failed" in body and "auth.login<" not in body.replace("</code>", "<")
    verified = client.get("/accounts/security/audit/?verify=1").content.decode()
    assert "哈希链完整" in verified
    assert AuditEntry.objects.filter(event="audit.verified", user_id=world.auditor.pk).exists()


def test_auditor_verify_shows_tampering(world, tamperable):
    entry = record_event(event="test.one")
    record_event(event="test.two")
    AuditEntry.objects.filter(pk=entry.pk).update(outcome="failure")
    body = as_client(world.auditor).get("/accounts/security/audit/?verify=1").content.decode()
    assert "哈希链校验失败" in body and f"#{entry.pk}" in body


def test_auditor_cannot_change_anything(world):
    client = as_client(world.auditor)
    assert client.post("/notifications/").status_code == 403
    assert client.post("/api/v1/regions/", {"code": "320583", "name": "x", "level": 3}).status_code == 403
    assert client.get("/accounts/security/audit/export.csv").status_code == 200
    assert AuditEntry.objects.filter(event="data.exported", user_id=world.auditor.pk).exists()


def test_role_change_is_audited(world):
    user = world.inspector
    user.role = Role.SECTION_HEAD
    user.save()
    entry = AuditEntry.objects.filter(event="user.roles_changed", object_id=str(user.pk)).latest("id")
    assert entry.detail["changes"]["role"] == {"from": "inspector", "to": "section_head"}


def test_permission_changes_are_audited(world):
    from django.contrib.auth.models import Group, Permission
    from guardian.shortcuts import assign_perm, remove_perm

    perm = Permission.objects.get(codename="reveal_sensitive")
    world.inspector.user_permissions.add(perm)
    assert AuditEntry.objects.filter(event="permission.user_permissions_changed", detail__action="add").exists()
    group = Group.objects.create(name="reviewers")
    group.permissions.add(perm)
    world.inspector.groups.add(group)
    assert AuditEntry.objects.filter(event="permission.group_permissions_changed").exists()
    assert AuditEntry.objects.filter(event="permission.user_groups_changed").exists()
    assign_perm("enterprises.view_enterprise", world.inspector, world.there)
    remove_perm("enterprises.view_enterprise", world.inspector, world.there)
    assert AuditEntry.objects.filter(event="permission.object_granted").exists()
    assert AuditEntry.objects.filter(event="permission.object_revoked").exists()


def test_admin_changes_are_audited_as_configuration_changes(db):
    root = User.objects.create_superuser("root", password="Root-Passw0rd!")
    client = as_client(root)
    response = client.post(
        "/admin/regulator/classificationoverride/add/",
        {"field_path": "enterprises.Enterprise.address", "category": "basic", "level": "sensitive", "reason": "r"},
    )
    assert response.status_code == 302
    entry = AuditEntry.objects.filter(event="config.add").latest("id")
    assert entry.user_id == root.pk and entry.detail["model"] == "regulator.classificationoverride"
