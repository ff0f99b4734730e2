"""Data classification registry, masking, and the audited reveal."""

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client

from enterprises.models import Enterprise
from regulator.choices import Role
from regulator.models import AuditEntry, ClassificationOverride
from regulator.security.classification import classify, registry, unencrypted_core_fields
from regulator.security.masking import display_value, mask_text, mask_value
from tests import factories as f


def test_every_field_of_every_model_is_classified(db):
    from regulator.security.classification import Category, Level

    rows = registry()
    assert len(rows) > 100
    for row in rows:
        c = row["classification"]
        assert c.category in Category.values and c.level in Level.values, row["path"]


def test_defaults_rules_and_overrides(db):
    assert classify("enterprises.Enterprise.name").level == "public"
    assert classify("enterprises.Enterprise.principal_phone").level == "sensitive"  # encrypted
    assert classify("enterprises.MajorHazardInstallation.process_parameters").level == "core"
    assert classify("regulator.User.password").level == "core"
    assert classify("regulator.User.email").level == "sensitive"  # name rule
    assert classify("regulator.AuditEntry.event").category == "system"
    assert classify("enterprises.Enterprise.address").level == "internal"
    ClassificationOverride.objects.create(
        field_path="enterprises.Enterprise.address", category="basic", level="sensitive"
    )
    assert classify("enterprises.Enterprise.address").level == "sensitive"
    assert classify("enterprises.Enterprise.address").source == "override (admin)"


def test_models_declare_their_own_classification(db):
    from regulator.models import Park

    Park.data_classification = {"code": ("basic", "core")}
    try:
        assert classify("regulator.Park.code").level == "core"
        assert "regulator.Park.code" in unencrypted_core_fields()
    finally:
        del Park.data_classification


def test_no_core_text_field_is_stored_in_clear(db):
    assert unencrypted_core_fields() == []


def test_classification_report_command(db, capsys):
    call_command("classification_report", "--level", "core")
    out = capsys.readouterr().out
    assert "enterprises.MajorHazardInstallation.process_parameters" in out and "核心" in out


@pytest.mark.parametrize(
    "value, expected",
    [
        ("13812345678", "138****5678"),
        ("320581199001011234", "3205**********1234"),
        ("zhang.san@example.com", "z***@example.com"),
        ("张三丰", "张**"),
    ],
)
def test_mask_text_shapes(value, expected):
    assert mask_text(value) == expected


def test_mask_value_follows_the_level(db):
    assert mask_value("enterprises.Enterprise.principal_phone", "13812345678") == "138****5678"
    assert mask_value("enterprises.MajorHazardInstallation.process_parameters", "T=180C") == "******"
    assert mask_value("enterprises.Enterprise.name", "常熟甲化工有限公司") == "常熟甲化工有限公司"


def test_display_value_reveals_only_with_permission_and_audits(world):
    field = "enterprises.Enterprise.principal_phone"
    assert display_value(world.inspector, field, "13812345678", reveal=True) == "138****5678"
    assert not AuditEntry.objects.filter(event="data.revealed").exists()
    world.inspector.user_permissions.add(Permission.objects.get(codename="reveal_sensitive"))
    from regulator.models import User

    inspector = User.objects.get(pk=world.inspector.pk)
    assert display_value(inspector, field, "13812345678") == "138****5678"  # lists stay masked
    assert display_value(inspector, field, "13812345678", reveal=True) == "13812345678"
    assert AuditEntry.objects.filter(event="data.revealed", user_id=inspector.pk).exists()


def reveal_url(ent, field="principal_phone"):
    return f"/accounts/security/reveal/enterprises/enterprise/{ent.pk}/{field}/"


def test_reveal_endpoint(world):
    world.here.principal_phone = "13812345678"
    world.here.save()
    world.there.principal_phone = "13900000000"
    world.there.save()
    client = Client()
    client.force_login(world.inspector)
    assert client.get(reveal_url(world.here)).status_code == 405  # POST only
    assert client.post(reveal_url(world.here)).status_code == 403  # no permission
    assert AuditEntry.objects.filter(event="data.reveal_refused").exists()
    world.inspector.user_permissions.add(Permission.objects.get(codename="reveal_sensitive"))
    response = client.post(reveal_url(world.here))
    assert response.status_code == 200 and response.json() == {"value": "13812345678"}
    assert response["Cache-Control"] == "no-store"
    entry = AuditEntry.objects.filter(event="data.revealed").latest("id")
    assert entry.user_id == world.inspector.pk and entry.object_id == str(world.here.pk)
    assert entry.detail["field"] == "enterprises.Enterprise.principal_phone"
    assert client.post(reveal_url(world.there)).status_code == 404  # out of jurisdiction
    assert client.post(reveal_url(world.here, "name")).status_code == 404  # not a revealable field


def test_reveal_endpoint_enforces_csrf(world):
    world.inspector.user_permissions.add(Permission.objects.get(codename="reveal_sensitive"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.inspector)
    assert client.post(reveal_url(world.here)).status_code == 403
    assert not AuditEntry.objects.filter(event="data.revealed").exists()


def test_template_tags_mask_and_offer_reveal(world, rf):
    from django.template import Context, Template

    world.here.principal_phone = "13812345678"
    world.here.save()
    ent = Enterprise.objects.get(pk=world.here.pk)
    template = Template(
        '{% load security %}{{ ent|masked:"principal_phone" }}|{% reveal_button ent "principal_phone" %}'
    )
    request = rf.get("/")
    request.user = world.inspector
    assert template.render(Context({"ent": ent, "request": request})) == "138****5678|"
    world.inspector.user_permissions.add(Permission.objects.get(codename="reveal_sensitive"))
    from regulator.models import User

    request.user = User.objects.get(pk=world.inspector.pk)
    out = template.render(Context({"ent": ent, "request": request}))
    assert "js-reveal" in out and reveal_url(ent) in out


def test_classification_page_for_admins_only(world):
    sysadmin = f.user("sysadmin", Role.SYSTEM_ADMIN)
    client = Client()
    client.force_login(world.inspector)
    assert client.get("/accounts/security/classification/").status_code == 403
    client.force_login(sysadmin)
    page = client.get("/accounts/security/classification/?level=core")
    assert page.status_code == 200 and "process_parameters" in page.content.decode()


def test_admin_lists_every_field_with_category_and_level(db):
    from regulator.models import User

    root = User.objects.create_superuser("root", password="Root-Passw0rd!")
    client = Client()
    client.force_login(root)
    changelist = client.get("/admin/regulator/classificationoverride/")
    assert (
        changelist.status_code == 200
        and "/admin/regulator/classificationoverride/registry/" in changelist.content.decode()
    )
    page = client.get("/admin/regulator/classificationoverride/registry/?level=core")
    body = page.content.decode()
    assert page.status_code == 200
    assert "enterprises.MajorHazardInstallation.process_parameters" in body and "核心" in body
    assert "enterprises.Enterprise.name" not in body  # public, filtered out
