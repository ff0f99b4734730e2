"""``manage.py load_boundaries``: good files load (and replace), bad files fail with a clear message and
write nothing; the shipped demo boundaries hold the demo's enterprises."""

from __future__ import annotations

import json
import random
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from enterprises import geo
from enterprises.models import Enterprise, RegionBoundary
from regulator.models import Region
from tests import factories as f

SQUARE = [[[120.0, 31.0], [121.0, 31.0], [121.0, 32.0], [120.0, 32.0], [120.0, 31.0]]]


def _feature(code, coords=SQUARE, kind="Polygon", prop="code"):
    return {
        "type": "Feature",
        "properties": {prop: code, "name": "x"},
        "geometry": {"type": kind, "coordinates": coords},
    }


def _write(tmp_path, data, name="b.geojson"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


def _load(path, *args):
    out = StringIO()
    call_command("load_boundaries", path, *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def regions(db):
    return f.region_tree()


def test_good_file_loads_each_feature_with_its_bbox_and_replaces_on_reload(tmp_path, regions):
    hole = [[120.2, 31.2], [120.4, 31.2], [120.4, 31.4], [120.2, 31.4], [120.2, 31.2]]
    multi = [[SQUARE[0], hole], [[[122.0, 30.0], [122.5, 30.0], [122.5, 30.5], [122.0, 30.0]]]]
    data = {"type": "FeatureCollection", "features": [_feature("320581"), _feature("320582", multi, "MultiPolygon")]}
    out = _load(_write(tmp_path, data))
    assert "loaded 2 boundaries" in out
    county = RegionBoundary.objects.get(region__code="320581")
    assert (county.min_lon, county.min_lat, county.max_lon, county.max_lat) == (120.0, 31.0, 121.0, 32.0)
    assert county.source == "b.geojson"
    other = RegionBoundary.objects.get(region__code="320582")
    assert (other.min_lon, other.max_lon, other.min_lat) == (120.0, 122.5, 30.0)
    assert geo.contains(other.geometry, 120.1, 31.1) and not geo.contains(other.geometry, 120.3, 31.3)  # hole

    smaller = [[[120.5, 31.5], [120.6, 31.5], [120.6, 31.6], [120.5, 31.5]]]
    _load(
        _write(tmp_path, {"type": "FeatureCollection", "features": [_feature("320581", smaller)]}), "--source", "测绘院"
    )
    county.refresh_from_db()
    assert county.max_lon == 120.6 and county.source == "测绘院"
    assert RegionBoundary.objects.count() == 2


def test_code_property_and_feature_id(tmp_path, regions):
    data = {"type": "FeatureCollection", "features": [_feature(320581, prop="adcode")]}
    _load(_write(tmp_path, data))  # adcode is one of the default properties, numbers are fine
    assert RegionBoundary.objects.filter(region__code="320581").exists()
    by_id = {"type": "FeatureCollection", "features": [{**_feature("ignored", prop="other"), "id": "320582"}]}
    _load(_write(tmp_path, by_id))
    assert RegionBoundary.objects.filter(region__code="320582").exists()
    custom = {"type": "FeatureCollection", "features": [_feature("320500", prop="GB")]}
    _load(_write(tmp_path, custom), "--code-property", "GB")
    assert RegionBoundary.objects.filter(region__code="320500").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON (line 1"),
        (json.dumps({"type": "Feature"}), "not a GeoJSON FeatureCollection"),
        (json.dumps({"type": "FeatureCollection", "features": []}), "has no features"),
        (
            json.dumps({"type": "FeatureCollection", "features": [_feature("320581", [120, 31], "Point")]}),
            "feature 0 (code 320581): geometry must be a Polygon or MultiPolygon, not Point",
        ),
        (
            json.dumps({"type": "FeatureCollection", "features": [_feature("320581", [[[120, 31], [121, 31]]])]}),
            "ring 0 needs at least 4 positions",
        ),
        (
            json.dumps(
                {"type": "FeatureCollection", "features": [_feature("320581", [[[1, 2], [3, 400], [5, 6], [1, 2]]])]}
            ),
            "is not a WGS-84 longitude/latitude",
        ),
        (json.dumps({"type": "FeatureCollection", "features": [_feature("")]}), "feature 0: no region code"),
        (
            json.dumps({"type": "FeatureCollection", "features": [_feature("320581"), _feature("320581")]}),
            "the code appears twice",
        ),
    ],
)
def test_bad_file_is_a_clear_error_and_writes_nothing(tmp_path, regions, content, message):
    with pytest.raises(CommandError) as err:
        _load(_write(tmp_path, content))
    assert message in str(err.value) and "b.geojson" in str(err.value)
    assert not RegionBoundary.objects.exists()


def test_missing_file(tmp_path, regions):
    with pytest.raises(CommandError, match="no such file"):
        _load(str(tmp_path / "nope.geojson"))


def test_unknown_codes_fail_unless_skipped(tmp_path, regions):
    data = {"type": "FeatureCollection", "features": [_feature("320581"), _feature("110105")]}
    path = _write(tmp_path, data)
    with pytest.raises(CommandError, match="1 feature\\(s\\) match no region: 110105"):
        _load(path)
    assert not RegionBoundary.objects.exists()  # all or nothing
    out = _load(path, "--skip-unknown")
    assert "loaded 1 boundaries: 320581" in out and "skipped 1 unknown codes: 110105" in out


def test_demo_enterprises_lie_inside_their_township_boundary(db, settings):
    """The shipped GeoJSON covers every demo region, and seeding places each enterprise inside its region."""
    from enterprises import demo
    from regulator.management.commands.seed_demo import DemoContext

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    ctx = DemoContext(rng=random.Random(7), seed=7, enterprises=60, now=timezone.now(), stdout=StringIO(), style=None)
    demo.seed(ctx)
    assert set(Region.objects.values_list("code", flat=True)) - {"320000"} == set(
        RegionBoundary.objects.values_list("region__code", flat=True)
    )
    outlines = {b.region_id: b.geometry for b in RegionBoundary.objects.all()}
    enterprises = list(Enterprise.objects.select_related("region__parent"))
    assert len(enterprises) == 60
    for e in enterprises:
        lon, lat = float(e.longitude), float(e.latitude)
        assert geo.contains(outlines[e.region_id], lon, lat), e.name
        assert geo.contains(outlines[e.region.parent_id], lon, lat), e.name  # and so inside the county
