"""Issue 16 item 5: the API, the exports and the admin mask what the page masks, by one rule.

Before the fix ``GET /api/v1/enterprises/<id>/`` returned phone numbers in full to any user in
scope, the admin change page showed them in its inputs, and the export used a copy of the rule.
"""

from __future__ import annotations

import importlib
import inspect
import json
import urllib.request

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from rest_framework import serializers
from rest_framework.test import APIClient

from enterprises.models import MajorHazardInstallation
from regulator.api.masking import MaskingSerializerMixin
from regulator.models import AuditEntry
from regulator.security.classification import classify
from tests import factories as f

PHONE = "13812345678"
MASKED = "138****5678"


def _api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def _grant_reveal(user):
    user.user_permissions.add(Permission.objects.get(codename="reveal_sensitive"))
    return type(user).objects.get(pk=user.pk)  # drop the permission cache


@pytest.fixture
def phones(world):
    world.here.principal_phone = PHONE
    world.here.safety_officer_phone = "13900001111"
    world.here.save()
    return world


def test_api_detail_masks_phones_for_a_user_without_reveal(phones):
    body = _api(phones.inspector).get(f"/api/v1/enterprises/{phones.here.pk}/").json()
    assert body["principal_phone"] == MASKED
    assert body["safety_officer_phone"] == "139****1111"
    assert PHONE not in json.dumps(body)
    assert not AuditEntry.objects.filter(event="data.revealed").exists()


def test_api_detail_masks_even_for_a_revealer_until_asked(phones):
    user = _grant_reveal(phones.inspector)
    body = _api(user).get(f"/api/v1/enterprises/{phones.here.pk}/").json()
    assert body["principal_phone"] == MASKED
    assert not AuditEntry.objects.filter(event="data.revealed").exists()


def test_api_reveal_gives_plaintext_to_a_revealer_and_audits_the_fields(phones):
    user = _grant_reveal(phones.inspector)
    body = _api(user).get(f"/api/v1/enterprises/{phones.here.pk}/?reveal=1").json()
    assert body["principal_phone"] == PHONE and body["safety_officer_phone"] == "13900001111"
    entry = AuditEntry.objects.get(event="data.revealed")
    assert entry.object_id == str(phones.here.pk) and entry.username == user.username
    assert sorted(entry.detail["fields"]) == [
        "enterprises.Enterprise.principal_phone",
        "enterprises.Enterprise.safety_officer_phone",
    ]
    assert entry.detail["via"] == "api"


def test_api_reveal_without_the_permission_is_refused_and_audited(phones):
    response = _api(phones.inspector).get(f"/api/v1/enterprises/{phones.here.pk}/?reveal=1")
    assert response.status_code == 403 and "权限" in response.json()["detail"]
    assert PHONE not in response.content.decode()
    assert AuditEntry.objects.filter(event="data.reveal_refused").exists()


def test_api_list_never_reveals(phones):
    user = _grant_reveal(phones.inspector)
    rows = _api(user).get("/api/v1/enterprises/?reveal=1").json()["results"]
    row = next(r for r in rows if r["id"] == phones.here.pk)
    assert row["principal_phone"] == MASKED
    assert not AuditEntry.objects.filter(event="data.revealed").exists()


def test_installation_process_parameters_are_hidden_in_the_api(phones):
    mhi = MajorHazardInstallation.objects.create(
        enterprise=phones.here, name="罐区", code="MH-1", people_within_500m=10, process_parameters="T=180C"
    )
    body = _api(phones.inspector).get(f"/api/v1/major-hazards/{mhi.pk}/").json()
    assert body["process_parameters"] == "******"


def _serializer_classes():
    for config in apps.get_app_configs():
        try:
            module = importlib.import_module(f"{config.name}.api.serializers")
        except ModuleNotFoundError:
            continue
        for _name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, serializers.ModelSerializer) and cls.__module__ == module.__name__:
                yield cls


def _sensitive_output_fields(cls):
    model = cls.Meta.model
    out = []
    for name, field in cls().fields.items():
        if field.write_only:
            continue
        source = field.source or name
        try:
            model_field = model._meta.get_field(source)
        except Exception:
            continue
        if getattr(model_field, "concrete", False) and classify(model_field).needs_masking:
            out.append(name)
    return out


def test_every_serializer_with_a_personal_or_encrypted_field_masks_it(db):
    """Every ModelSerializer of every app that shows a sensitive/core field goes through the rule
    (a write serializer counts when its own output shows the field)."""
    checked = []
    for cls in _serializer_classes():
        sensitive = _sensitive_output_fields(cls)
        if not sensitive:
            continue
        represents_itself = (
            cls.to_representation is not serializers.ModelSerializer.to_representation
            and not issubclass(cls, MaskingSerializerMixin)
        )
        if represents_itself:
            continue  # delegates its output to another serializer (checked on its own)
        assert issubclass(cls, MaskingSerializerMixin), f"{cls.__module__}.{cls.__name__} shows {sensitive} unmasked"
        checked.append(cls.__name__)
    assert {"EnterpriseListSerializer", "EnterpriseDetailSerializer", "InstallationSerializer"} <= set(checked)


def test_write_serializer_output_is_the_masked_detail(phones, django_user_model):
    from enterprises.api.serializers import EnterpriseWriteSerializer

    data = EnterpriseWriteSerializer(phones.here, context={"request": None}).data
    assert data["principal_phone"] == MASKED


def test_export_uses_the_same_rule(phones):
    from enterprises.exporting import row_for
    from regulator.security.masking import mask_field

    row = row_for(phones.here)
    assert MASKED in row and PHONE not in row
    assert mask_field(phones.here, "principal_phone") == MASKED


# --- admin ----------------------------------------------------------------------------------


@pytest.fixture
def staff(phones):
    user = f.user("staff_insp", "inspector", jurisdiction=phones.regions["county"], is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="enterprises"))
    return user


def test_admin_change_page_masks_phones_for_a_user_without_reveal(phones, staff, client):
    client.force_login(staff)
    page = client.get(f"/admin/enterprises/enterprise/{phones.here.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert PHONE not in html and MASKED in html
    assert 'name="principal_phone"' not in html  # not an input to read back either
    assert not AuditEntry.objects.filter(event="data.revealed").exists()


def test_admin_change_page_for_a_revealer_is_audited(phones, staff, client):
    staff = _grant_reveal(staff)
    client.force_login(staff)
    html = client.get(f"/admin/enterprises/enterprise/{phones.here.pk}/change/").content.decode()
    assert PHONE in html
    entry = AuditEntry.objects.get(event="data.revealed")
    assert entry.detail["via"] == "admin" and "enterprises.Enterprise.principal_phone" in entry.detail["fields"]


def test_admin_save_by_a_user_without_reveal_keeps_the_phones(phones, staff, client):
    from tests.enterprises.test_admin import _enterprise_form

    client.force_login(staff)
    response = client.post(
        f"/admin/enterprises/enterprise/{phones.here.pk}/change/", _enterprise_form(phones.here, employees="55")
    )
    assert response.status_code == 302, response.content.decode()[:1500]
    phones.here.refresh_from_db()
    assert phones.here.employees == 55 and phones.here.principal_phone == PHONE


# --- real HTTP ------------------------------------------------------------------------------


@pytest.fixture
def server(live_server):
    """The live server with MEDIA_URL = None (private media): give its media handler a prefix no
    request uses (as tests/enterprises/test_risk_map_browser.py does)."""
    from urllib.parse import urlparse

    media = getattr(live_server.thread.httpd.get_app(), "application", None)
    if media is not None and isinstance(getattr(media, "base_url", None), tuple) and media.base_url.path == b"":
        media.base_url = urlparse("/__no_media__/")
    return live_server


@pytest.mark.django_db(transaction=True)
def test_api_masks_over_real_http(server):
    """Through a real server and token authentication, not the test client."""
    from rest_framework.authtoken.models import Token

    live_server = server
    regions = f.region_tree()
    ent = f.enterprise(regions["county"], principal_phone=PHONE)
    inspector = f.user("http_inspector", "inspector", jurisdiction=regions["county"])
    revealer = _grant_reveal(f.user("http_revealer", "inspector", jurisdiction=regions["county"]))

    def get(user, query=""):
        token = Token.objects.create(user=user) if not Token.objects.filter(user=user).exists() else user.auth_token
        request = urllib.request.Request(
            f"{live_server.url}/api/v1/enterprises/{ent.pk}/{query}", headers={"Authorization": f"Token {token.key}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    status, body = get(inspector)
    assert status == 200 and MASKED in body and PHONE not in body
    status, body = get(inspector, "?reveal=1")
    assert status == 403 and PHONE not in body
    status, body = get(revealer, "?reveal=1")
    assert status == 200 and json.loads(body)["principal_phone"] == PHONE
    assert AuditEntry.objects.filter(event="data.revealed", username="http_revealer").count() == 1


# --- the page's own edit form -----------------------------------------------------------------


def _edit_data(world, **extra):
    from enterprises.models import Industry

    ent = world.here
    data = {
        "uscc": ent.uscc,
        "name": ent.name,
        "region": ent.region_id,
        "park": ent.park_id or "",
        "industry": Industry.objects.get(pk=ent.industry_id).pk,
        "scale": ent.scale,
        "employees": "61",
        "operating_status": ent.operating_status,
    }
    data.update(extra)
    return data


def test_edit_form_does_not_show_phones_to_an_editor_without_reveal(phones, client):
    client.force_login(phones.inspector)
    html = client.get(f"/enterprises/{phones.here.pk}/edit/").content.decode()
    assert PHONE not in html and MASKED in html  # the masked value is the input's placeholder
    assert not AuditEntry.objects.filter(event="data.revealed").exists()
    # Left empty, the phones keep their value; typed, they are replaced.
    assert client.post(f"/enterprises/{phones.here.pk}/edit/", _edit_data(phones)).status_code == 302
    phones.here.refresh_from_db()
    assert phones.here.employees == 61 and phones.here.principal_phone == PHONE
    data = _edit_data(phones, principal_phone="13700000000")
    assert client.post(f"/enterprises/{phones.here.pk}/edit/", data).status_code == 302
    phones.here.refresh_from_db()
    assert phones.here.principal_phone == "13700000000" and phones.here.safety_officer_phone == "13900001111"


def test_edit_form_for_a_revealer_shows_phones_and_is_audited(phones, client):
    client.force_login(_grant_reveal(phones.inspector))
    html = client.get(f"/enterprises/{phones.here.pk}/edit/").content.decode()
    assert PHONE in html
    entry = AuditEntry.objects.get(event="data.revealed")
    assert entry.detail["via"] == "form" and "enterprises.Enterprise.principal_phone" in entry.detail["fields"]
