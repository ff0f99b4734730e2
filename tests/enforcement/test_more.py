"""Photos, form validation, credit and listing endpoints, plan input rules."""

import io
from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image
from rest_framework.test import APIClient

from enforcement import services
from enforcement.models import DishonestyListing, InspectionPhoto
from regulator.errors import DomainError, InvalidInput

pytestmark = pytest.mark.django_db

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


def test_team_member_uploads_a_photo_and_only_scoped_users_see_it(client, county, plan):
    draw = services.draw_plan(plan=plan, user=county.head)
    inspection = draw.inspections.first()
    member = inspection.team.first()
    client.force_login(member)
    client.post(
        reverse("enforcement:inspection_photo", args=[inspection.pk]),
        {"image": SimpleUploadedFile("site.png", PNG, content_type="image/png"), "caption": "罐区现场"},
    )
    photo = InspectionPhoto.objects.get(inspection=inspection)
    url = reverse("enforcement:photo_file", args=[inspection.pk, photo.pk])
    served = b"".join(client.get(url).streaming_content)
    assert Image.open(io.BytesIO(served)).size == (1, 1) and photo.image.name.endswith(".png")  # re-encoded
    client.force_login(county.world.other_inspector)
    assert client.get(url).status_code == 404
    # not an image: refused
    with pytest.raises(InvalidInput):
        services.inspection_add_photo(
            inspection=inspection,
            user=member,
            upload=SimpleUploadedFile("x.png", b"<script>", content_type="image/png"),
        )
    # an inspector outside the team may not add photos
    outsider = next(p.user for p in county.profiles if not inspection.team.filter(pk=p.user_id).exists())
    with pytest.raises(DomainError):
        services.inspection_add_photo(inspection=inspection, user=outsider, upload=SimpleUploadedFile("s.png", PNG))


def test_plan_rules(county):
    base = {
        "user": county.head,
        "name": "x",
        "jurisdiction": county.region,
        "period_start": date(2026, 1, 1),
        "period_end": date(2026, 1, 31),
    }
    with pytest.raises(InvalidInput):
        services.plan_create(**base, team_size=1)
    with pytest.raises(InvalidInput):
        services.plan_create(**{**base, "period_end": date(2025, 12, 1)})
    with pytest.raises(InvalidInput):
        services.plan_create(**base, strata=[{"label": "x", "ratio": "1.5"}])
    with pytest.raises(InvalidInput):
        services.plan_create(**base, strata=[{"label": "x", "risk": ["purple"], "ratio": "0.5"}])
    with pytest.raises(InvalidInput):  # another county's jurisdiction
        services.plan_create(**{**base, "jurisdiction": county.world.regions["other_county"]})
    with pytest.raises(DomainError):  # inspectors do not make plans
        services.plan_create(**{**base, "user": county.world.inspector})


def test_plan_form_reports_bad_strata(client, county):
    client.force_login(county.head)
    response = client.post(
        reverse("enforcement:plan_create"),
        {
            "name": "x",
            "jurisdiction": county.region.pk,
            "period_start": "2026-01-01",
            "period_end": "2026-01-31",
            "strata": "只有三列 | * | *",
            "default_ratio": "0.05",
            "team_size": "2",
        },
    )
    assert response.status_code == 200 and "分层每行需要5列" in response.content.decode()


def test_credit_api_and_listing_workflow(county):
    world = county.world
    inspector = APIClient()
    inspector.force_authenticate(world.inspector)
    made = inspector.post(
        "/api/v1/enforcement/credit-events/",
        {
            "enterprise": world.here.pk,
            "kind": "accident_general",
            "occurred_on": "2026-05-01",
            "description": "一人轻伤",
        },
    )
    assert made.status_code == 201, made.json()
    score = inspector.get(f"/api/v1/enforcement/credit-scores/{world.here.pk}/").json()
    assert score["score"] == 65 and score["grade"] == "C"
    history = inspector.get(f"/api/v1/enforcement/credit-scores/{world.here.pk}/history/").json()
    assert history[-1]["added"][0]["rule"] == "R-ACC-1"
    far = APIClient()
    far.force_authenticate(world.other_inspector)
    assert far.get(f"/api/v1/enforcement/credit-scores/{world.here.pk}/").status_code == 404
    assert (
        far.post(
            "/api/v1/enforcement/credit-events/",
            {"enterprise": world.here.pk, "kind": "penalty", "occurred_on": "2026-05-01"},
        ).status_code
        == 400  # another county's enterprise reads as absent, as everywhere else
    )
    head = APIClient()
    head.force_authenticate(county.head)
    listing = head.post("/api/v1/enforcement/dishonesty-listings/", {"enterprise": world.here.pk, "reason": "瞒报事故"})
    assert listing.status_code == 201
    listing_id = listing.json()["id"]
    ent_client = APIClient()
    ent_client.force_authenticate(world.enterprise_user)
    too_early = ent_client.post(
        f"/api/v1/enforcement/dishonesty-listings/{listing_id}/repair/", {"statement": "已整改"}
    )
    assert too_early.status_code == 409 and too_early.json()["code"] == "too_early"
    DishonestyListing.objects.filter(pk=listing_id).update(listed_on=date.today() - timedelta(days=400))
    applied = ent_client.post(f"/api/v1/enforcement/dishonesty-listings/{listing_id}/repair/", {"statement": "已整改"})
    assert applied.status_code == 201
    decided = head.post(
        f"/api/v1/enforcement/dishonesty-listings/{listing_id}/repairs/{applied.json()['id']}/decide/",
        {"approve": "true", "note": "整改到位"},
    )
    assert decided.status_code == 200 and decided.json()["status"] == "approved"
    assert DishonestyListing.objects.get(pk=listing_id).status == "repaired"
