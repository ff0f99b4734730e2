"""Issue 16, Low: a tampered ciphertext in one row degrades that row, never the whole response.

SM4-GCM binds each value to its table, row and column. Before the fix, one row whose phone did
not authenticate raised SealedValueError out of the API list, the CSV/XLSX export (cut off
halfway) and the dossier page (500), and every access wrote another audit entry.
"""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from openpyxl import load_workbook
from rest_framework.test import APIClient

from enterprises.models import Enterprise
from regulator.fields import Sealed
from regulator.models import AuditEntry
from tests import factories as f

UNAVAILABLE = "不可用"


def _tamper(enterprise, field="principal_phone"):
    token = Enterprise.objects.filter(pk=enterprise.pk).values_list(field, flat=True).get()
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    Enterprise.objects.filter(pk=enterprise.pk).update(**{field: Sealed(tampered)})


@pytest.fixture
def tampered(world):
    world.here.principal_phone = "13800000001"
    world.here.save()
    world.here_no_park.principal_phone = "13900000002"
    world.here_no_park.save()
    _tamper(world.here)
    return world


def _failures(enterprise):
    return AuditEntry.objects.filter(event="crypto.decrypt_failed", object_id=str(enterprise.pk))


def _api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_api_list_completes_and_only_the_tampered_row_degrades(tampered):
    response = _api(tampered.inspector).get("/api/v1/enterprises/")
    assert response.status_code == 200
    rows = {r["id"]: r for r in response.json()["results"]}
    assert rows[tampered.here.pk]["principal_phone"] == UNAVAILABLE
    assert rows[tampered.here_no_park.pk]["principal_phone"] == "139****0002"
    assert _failures(tampered.here).count() == 1
    entry = _failures(tampered.here).get()
    assert entry.outcome == "failure" and entry.detail["field"] == "principal_phone"


def test_api_detail_and_reveal_show_unavailable(tampered):
    user = tampered.inspector
    user.user_permissions.add(Permission.objects.get(codename="reveal_sensitive"))
    user = type(user).objects.get(pk=user.pk)
    client = _api(user)
    assert client.get(f"/api/v1/enterprises/{tampered.here.pk}/").json()["principal_phone"] == UNAVAILABLE
    body = client.get(f"/api/v1/enterprises/{tampered.here.pk}/?reveal=1").json()
    assert body["principal_phone"] == UNAVAILABLE
    assert not AuditEntry.objects.filter(event="data.revealed").exists()  # nothing was revealed


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_completes_with_the_row_degraded(tampered, fmt):
    client = Client()
    client.force_login(tampered.inspector)
    response = client.get(f"/enterprises/export.{fmt}")
    assert response.status_code == 200
    if fmt == "csv":
        text = b"".join(response.streaming_content).decode("utf-8")
        lines = text.splitlines()
        assert len(lines) == 1 + Enterprise.objects.filter(pk__in=[tampered.here.pk, tampered.here_no_park.pk]).count()
        here = next(line for line in lines if tampered.here.uscc in line)
    else:
        ws = load_workbook(io.BytesIO(response.content)).active
        here = next(
            ",".join(str(c) for c in row) for row in ws.iter_rows(values_only=True) if tampered.here.uscc in row
        )
        text = "\n".join(",".join(str(c) for c in row) for row in ws.iter_rows(values_only=True))
    assert UNAVAILABLE in here
    assert "139****0002" in text
    assert _failures(tampered.here).count() == 1


def test_dossier_page_renders_with_the_field_unavailable(tampered):
    client = Client()
    client.force_login(tampered.inspector)
    page = client.get(f"/enterprises/{tampered.here.pk}/")
    assert page.status_code == 200
    assert UNAVAILABLE in page.content.decode()
    assert _failures(tampered.here).count() == 1


def test_list_page_completes(tampered):
    client = Client()
    client.force_login(tampered.inspector)
    assert client.get("/enterprises/").status_code == 200


def test_one_audit_entry_per_row_within_a_request(tampered):
    """Two instances of the same row read in one request: one entry, not one per access."""
    from regulator.requestlocal import _request
    from regulator.security.masking import mask_field

    request = type("Req", (), {"user": tampered.inspector, "META": {}})()
    token = _request.set(request)
    try:
        for _ in range(3):
            obj = Enterprise.objects.get(pk=tampered.here.pk)
            assert mask_field(obj, "principal_phone") == UNAVAILABLE
            assert mask_field(obj, "principal_phone") == UNAVAILABLE
    finally:
        _request.reset(token)
    assert _failures(tampered.here).count() == 1


def test_the_strict_read_still_raises(tampered):
    """Code that acts on the plaintext (not a display) still gets the error, never "不可用"."""
    from regulator.fields import SealedValueError

    obj = Enterprise.objects.get(pk=tampered.here.pk)
    with pytest.raises(SealedValueError):
        obj.principal_phone
    with pytest.raises(SealedValueError):
        obj.principal_phone  # again: still an error, and still only one audit entry for the row
    assert _failures(tampered.here).count() == 1


def test_admin_shows_unavailable_read_only_and_keeps_the_ciphertext(tampered):
    staff = f.user("staff_tamper", "inspector", jurisdiction=tampered.regions["county"], is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="enterprises"))
    staff.user_permissions.add(Permission.objects.get(codename="reveal_sensitive"))
    client = Client()
    client.force_login(staff)
    page = client.get(f"/admin/enterprises/enterprise/{tampered.here.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert UNAVAILABLE in html and 'name="principal_phone"' not in html
    assert 'name="safety_officer_phone"' in html  # readable fields stay editable for a revealer


def test_a_row_with_a_tampered_value_stays_editable(tampered):
    """The API update and the edit page work; the tampered ciphertext is written back untouched."""
    before = Enterprise.objects.filter(pk=tampered.here.pk).values_list("principal_phone", flat=True).get()
    response = _api(tampered.inspector).patch(
        f"/api/v1/enterprises/{tampered.here.pk}/", {"employees": 77}, format="json"
    )
    assert response.status_code == 200 and response.json()["principal_phone"] == UNAVAILABLE
    row = Enterprise.objects.filter(pk=tampered.here.pk).values_list("principal_phone", "employees").get()
    assert row == (before, 77)
    client = Client()
    client.force_login(tampered.inspector)
    page = client.get(f"/enterprises/{tampered.here.pk}/edit/")
    assert page.status_code == 200 and UNAVAILABLE in page.content.decode()
