import pytest
from django.urls import reverse

from enterprises.models import RegionBoundary

pytestmark = pytest.mark.django_db

SQUARE = {"type": "Polygon", "coordinates": [[[120.0, 31.0], [121.0, 31.0], [121.0, 32.0], [120.0, 31.0]]]}


def test_admin_lists_boundaries_and_refuses_edits(admin_client, world):
    region = world.regions["county"]
    RegionBoundary.objects.create(
        region=region, geometry=SQUARE, min_lon=120, min_lat=31, max_lon=121, max_lat=32, source="test file"
    )
    listing = admin_client.get(reverse("admin:enterprises_regionboundary_changelist"))
    assert listing.status_code == 200
    assert region.name in listing.content.decode()
    assert admin_client.get(reverse("admin:enterprises_regionboundary_add")).status_code == 403
    boundary = RegionBoundary.objects.get()
    change = admin_client.post(reverse("admin:enterprises_regionboundary_change", args=[boundary.pk]), {"source": "x"})
    assert change.status_code == 403
    assert RegionBoundary.objects.get().source == "test file"
