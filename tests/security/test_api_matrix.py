"""The API permission matrix: every (endpoint, method) under /api/v1/ against four personas.

Cases are generated from ``tests/security/matrix.py``'s rows: anonymous (401 with WWW-Authenticate),
signed in without the permission (403), permitted and in scope (2xx; a write adds exactly one audit
row), and permitted but out of scope (404 on an object of the other county; a list does not show it).
``test_every_endpoint_has_a_row`` fails when the URLconf serves an endpoint the matrix does not know.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.apps import apps
from django.urls import reverse
from rest_framework.test import APIClient

from regulator.choices import EnterpriseRole, Role
from tests import factories as f
from tests.security import matrix as m

CASES = ("anon", "denied", "ok", "out", "out_body")


def _cases():
    for key in sorted(m.API):
        row = m.API[key]
        method = key.rsplit(" ", 1)[1].lower()
        for case in CASES:
            if case in row.get("skip", {}):
                continue
            if case == "denied" and not row.get("denied"):
                continue
            if case == "out" and not row.get("out"):
                continue
            if case == "out_body" and not row.get("out_body"):
                continue
            if case in ("ok", "out") and not row.get("ok"):
                continue
            marks = []
            if case in row.get("xfail", {}):
                marks.append(pytest.mark.xfail(strict=True, reason=row["xfail"][case]))
            yield pytest.param(key, method, case, id=f"{key}-{case}", marks=marks)


@pytest.fixture(autouse=True)
def _fast(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def ctx(world):
    """The shared personas plus the managers and enterprise staff the workflows need, on both sides."""
    regions = world.regions
    return SimpleNamespace(
        world=world,
        inspector=world.inspector,
        city_admin=world.city_admin,
        auditor=world.auditor,
        park_manager=world.park_manager,
        enterprise_user=world.enterprise_user,
        officer=world.enterprise_user,
        manager=f.enterprise_user("manager", world.here, EnterpriseRole.SAFETY_MANAGER),
        there_officer=f.enterprise_user("thereofficer", world.there, EnterpriseRole.SAFETY_MANAGER),
        head=f.user("head", Role.SECTION_HEAD, jurisdiction=regions["county"]),
        other_head=f.user("head2", Role.SECTION_HEAD, jurisdiction=regions["other_county"]),
        inspector_b=f.user("inspector3", Role.INSPECTOR, jurisdiction=regions["county"]),
        other_b=f.user("inspector4", Role.INSPECTOR, jurisdiction=regions["other_county"]),
        county_admin=f.user("countyadmin", Role.REGULATOR_ADMIN, jurisdiction=regions["county"]),
        other_park=f.park(regions["other_county"], code="P-0002", name="张家港保税区"),
        industry=f.industry(),
    )


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def _url(key, row, obj, ctx=None):
    name = key.rsplit(" ", 1)[0]
    if "fixed_kwargs" in row and ctx is not None:
        return reverse(name, kwargs=row["fixed_kwargs"](ctx))
    route = m.endpoints()[key]
    if "(?P<" not in route and "<int:" not in route:
        return reverse(name)
    if obj is None:  # a detail route with no object (anonymous): any id will do
        return reverse(name, kwargs=_dummy_kwargs(route))
    kwargs = row.get("kwargs") or (lambda o: {"pk": o.pk})
    return reverse(name, kwargs=kwargs(obj))


def _dummy_kwargs(route):
    import re

    kwargs = dict.fromkeys(re.findall(r"\(\?P<(\w+)>", route) + re.findall(r"<int:(\w+)>", route), 999999)
    kwargs.update(dict.fromkeys(re.findall(r"<(?:str|slug):(\w+)>", route), "x"))
    kwargs.update({n: "00000000-0000-0000-0000-000000000000" for n in kwargs if n.endswith("uid")})
    return kwargs


def _send(client, method, url, row, payload):
    if method == "get" or method == "delete":
        return getattr(client, method)(url)
    if row.get("multipart"):
        return getattr(client, method)(url, payload or {}, format="multipart")
    return getattr(client, method)(url, payload or {}, format="json")


def _ids(response):
    body = response.json()
    rows = body["results"] if isinstance(body, dict) and "results" in body else body
    return {r.get("id", r.get("enterprise")) for r in rows}


def _count(label):
    return apps.get_model(label).objects.count()


@pytest.mark.parametrize("key,method,case", list(_cases()))
def test_api_matrix(ctx, key, method, case):
    row = m.API[key]
    kind = row.get("kind")
    write = method in m.WRITE_METHODS
    if case == "anon":
        response = _send(_client(), method, _url(key, row, None, ctx), row, {})
        assert response.status_code == row.get("anon_status", 401), response.content[:300]
        if response.status_code == 401 and "anon_status" not in row:
            assert response.headers.get("WWW-Authenticate"), "a 401 must say how to authenticate"
        return
    here = m.build(ctx, kind, "here") if kind else None
    payload = row["payload"](ctx, here) if write and row.get("payload") else {}
    if case == "denied":
        response = _send(_client(getattr(ctx, row["denied"])), method, _url(key, row, here, ctx), row, payload)
        assert response.status_code == 403, response.content[:300]
        return
    user = getattr(ctx, row["ok"])
    if case == "ok":
        audit = row.get("audit", m.AUDIT) if write else None
        before = _count(audit) if audit else 0
        response = _send(_client(user), method, _url(key, row, here, ctx), row, payload)
        expected = row.get("status", 200)
        assert response.status_code == expected, response.content[:500]
        if key.endswith("-list GET") and here is not None:
            assert here.pk in _ids(response), f"{key} does not list an object in scope"
        if row.get("events"):
            from regulator.models import AuditEntry

            events = sorted(AuditEntry.objects.order_by("id").values_list("event", flat=True)[before:])
            assert events == sorted(row["events"]), f"{key} audited {events}"
        elif audit:
            assert _count(audit) - before == 1, f"{key} must leave exactly one {audit} row"
        return
    if case == "out_body":  # a create naming the other county's enterprise, region or device
        body = row["out_body"](ctx)
        before = _count(m.AUDIT)
        response = _send(_client(user), method, _url(key, row, None, ctx), row, body)
        assert response.status_code in (400, 404), (response.status_code, response.content[:300])
        assert _count(m.AUDIT) == before, f"{key} wrote for another county"
        return
    # out of scope: the same kind of object, in the other county
    there = m.build(ctx, kind, "there")
    name = key.rsplit(" ", 1)[0]
    if name.endswith("-list") and method == "get":
        response = _client(user).get(reverse(name), {"page_size": 500})
        assert response.status_code == 200
        assert there.pk not in _ids(response), f"{key} lists an object of another county"
        return
    if write and row.get("payload"):
        payload = row["payload"](ctx, there)
    response = _send(_client(user), method, _url(key, row, there, ctx), row, payload)
    assert response.status_code == 404, response.content[:300]


def test_every_endpoint_has_a_row():
    """A new endpoint cannot be added silently: the URLconf and the matrix must list the same ones."""
    served = set(m.endpoints())
    missing = sorted(served - set(m.API))
    stale = sorted(set(m.API) - served)
    assert not missing, f"endpoints without a row in tests/security/matrix.py: {missing}"
    assert not stale, f"rows for endpoints that no longer exist: {stale}"


def test_rows_that_write_say_how_they_are_audited():
    for key, row in m.API.items():
        if key.rsplit(" ", 1)[1].lower() in m.WRITE_METHODS and row.get("ok") and row.get("audit", m.AUDIT) is None:
            assert row.get("no_audit"), f"{key} writes without an audit row and does not say why"


def test_patching_maintenance_on_a_device_changes_nothing(ctx):
    """Maintenance pauses alarms: only the maintenance action (with a reason, audited) may switch it."""
    device = m.build(ctx, "device", "here")
    response = _client(ctx.inspector).patch(f"/api/v1/devices/{device.pk}/", {"maintenance": True}, format="json")
    assert response.status_code == 200
    device.refresh_from_db()
    assert device.maintenance is False


@pytest.fixture
def server(live_server):
    """The live server with MEDIA_URL unset: Django's test media handler would otherwise get a bytes
    URL from None and fail every request, so give it a prefix no request uses."""
    from urllib.parse import urlparse

    media = getattr(live_server.thread.httpd.get_app(), "application", None)
    if media is not None and isinstance(getattr(media, "base_url", None), tuple) and media.base_url.path == b"":
        media.base_url = urlparse("/__no_media__/")
    return live_server


def test_every_endpoint_refuses_anonymous_over_real_http(server):
    """The anonymous column again, through a real server on loopback: 401 with a challenge everywhere."""
    import urllib.error
    import urllib.request

    live_server = server

    refused = {}
    for key in sorted(m.API):
        name, method = key.rsplit(" ", 1)
        route = m.endpoints()[key]
        path = reverse(name, kwargs=_dummy_kwargs(route) if ("(?P<" in route or "<int:" in route) else None)
        data = b"{}" if method in ("POST", "PUT", "PATCH") else None
        request = urllib.request.Request(
            live_server.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                refused[key] = (response.status, None)
        except urllib.error.HTTPError as exc:
            refused[key] = (exc.code, exc.headers.get("WWW-Authenticate"))
    wrong = {k: v for k, v in refused.items() if v[0] != 401 or (k != "readings-ingest POST" and not v[1])}
    assert not wrong, wrong
