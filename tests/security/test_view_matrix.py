"""The HTML permission matrix: every page of the apps that writes, against anonymous and out of scope.

Rows live in ``tests/security/matrix.py`` (``VIEWS`` for pages that write, ``READ_VIEWS`` for the
rest). Anonymous POSTs are sent to the login page and write nothing; the permitted persona POSTing
to an object of the other county gets 404 (and so does a URL that pairs its own enterprise with
the other county's licence or installation). Pages whose object arrives in the form instead of the
URL create nothing for the other county, and do create it for their own (so the payload is valid).
``test_every_page_is_classified`` fails when a new page is neither a write row nor a read.
"""

from __future__ import annotations

import inspect

import pytest
from django.apps import apps
from django.conf import settings
from django.test import Client
from django.urls import reverse

from regulator.models import AuditEntry
from tests.security import matrix as m
from tests.security.test_api_matrix import _dummy_kwargs, _fast, ctx  # noqa: F401 - the shared fixtures


def _cases():
    for name in sorted(m.VIEWS):
        row = m.VIEWS[name]
        yield pytest.param(name, "anon", id=f"{name}-anon")
        if row.get("kind"):
            yield pytest.param(name, "out", id=f"{name}-out")
        if row.get("mixed"):
            yield pytest.param(name, "mixed", id=f"{name}-mixed")
        if row.get("body"):
            yield pytest.param(name, "body-ok", id=f"{name}-body-ok")
            yield pytest.param(name, "body-out", id=f"{name}-body-out")


def _client(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _url(name, row, obj):
    if obj is None:
        route = m.html_write_views()[name]
        return reverse(name, kwargs=_dummy_kwargs(route) if "<" in route else None)
    kwargs = row.get("kwargs") or (lambda o: {"pk": o.pk})
    return reverse(name, kwargs=kwargs(obj))


@pytest.mark.parametrize("name,case", list(_cases()))
def test_view_matrix(ctx, name, case):  # noqa: F811 - the fixture imported above
    row = m.VIEWS[name]
    audit_before = AuditEntry.objects.count()
    if case == "anon":
        url = _url(name, row, None)
        response = _client().post(url, {})
        assert response.status_code == 302, response.content[:200]
        assert response.url.startswith(reverse(settings.LOGIN_URL)), response.url
        assert AuditEntry.objects.count() == audit_before
        return
    user = getattr(ctx, row["ok"])
    if case in ("out", "mixed"):
        there = m.build(ctx, row["kind"], "there")
        kwargs = (row.get("kwargs") or (lambda o: {"pk": o.pk}))(there)
        if case == "mixed":  # the parent in scope, the child of the other county
            kwargs["pk"] = ctx.world.here.pk
        response = _client(user).post(reverse(name, kwargs=kwargs), {})
        assert response.status_code == 404, (response.status_code, response.content[:200])
        return
    model = apps.get_model(row["model"])
    before = model.objects.count()
    side = "here" if case == "body-ok" else "there"
    response = _client(user).post(_url(name, row, None), row["body"](ctx, side))
    if case == "body-ok":
        assert response.status_code == 302, response.content.decode()[:2000]
        assert model.objects.count() == before + 1
        return
    assert response.status_code == row.get("out_status", response.status_code)
    assert response.status_code != 302 or "login" not in response.url
    assert model.objects.count() == before, f"{name} created a {row['model']} in the other county"


def test_every_page_is_classified():
    """A new page cannot be added silently: each is a write row or a read, and reads do not write."""
    served = m.html_write_views()
    known = set(m.VIEWS) | set(m.READ_VIEWS)
    missing = sorted(set(served) - known)
    stale = sorted(known - set(served))
    assert not missing, f"pages without a row in tests/security/matrix.py: {missing}"
    assert not stale, f"rows for pages that no longer exist: {stale}"
    pages = m.html_pages()
    for name in m.READ_VIEWS:
        source = inspect.getsource(inspect.unwrap(pages[name][1]))
        assert "POST" not in source, f"{name} handles POST: it belongs in VIEWS"
