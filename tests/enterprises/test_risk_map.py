"""The risk map: points and grid clusters (counts add up, worst grade wins), filters, scoping, the
boundaries endpoint and the page in Chinese and English."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from enterprises import geo, geo_map
from enterprises.models import EnterpriseRisk, Industry, RegionBoundary
from tests import factories as f

POINTS = reverse("riskmap:points")
BOUNDARIES = reverse("riskmap:boundaries")
PAGE = reverse("riskmap:index")
CHANGSHU_BBOX = "120.5,31.4,121.1,31.9"  # the county and some margin


def _at(ent, lon, lat, grade="", **extra):
    ent.longitude, ent.latitude, ent.risk_grade = Decimal(str(lon)), Decimal(str(lat)), grade
    for k, v in extra.items():
        setattr(ent, k, v)
    ent.save()
    return ent


@pytest.fixture
def mapped(world):
    """Boundaries from the shipped demo file; world's enterprises placed, plus two tight groups in 常熟."""
    call_command("load_boundaries", str(geo.DEMO_BOUNDARIES), "--skip-unknown")
    here = _at(world.here, 120.80, 31.70, "red", is_key=True)
    EnterpriseRisk.objects.create(
        enterprise=here, score=87.5, grade="red", method="rules", assessed_at=timezone.now(), factors=[]
    )
    _at(world.here_no_park, 120.65, 31.62, "blue")
    _at(world.there, 120.55, 31.90, "orange")
    # Group A (west) and group B (east), each within ~50 m, far apart; one loner in between.
    group_a = [
        _at(f.enterprise(world.regions["township"]), 120.7000 + i * 0.0001, 31.6500, g)
        for i, g in enumerate(["red", "blue", "blue", "yellow"])
    ]
    group_b = [
        _at(f.enterprise(world.regions["township"]), 120.9000 + i * 0.0001, 31.7500, g)
        for i, g in enumerate(["yellow", "", "", "blue", "blue"])
    ]
    return {"group_a": group_a, "group_b": group_b}


def _get(client, user, url, **params):
    client.force_login(user)
    return client.get(url, params)


def test_points_in_view_carry_the_tooltip_fields_and_link_to_the_dossier(client, world, mapped):
    data = _get(client, world.inspector, POINTS, bbox=CHANGSHU_BBOX).json()
    names = {p["name"] for p in data["points"]}
    assert "常熟甲化工有限公司" in names and "常熟乙机械有限公司" in names
    assert "张家港丙化工有限公司" not in names  # the next county is out of the inspector's scope
    here = next(p for p in data["points"] if p["id"] == world.here.pk)
    assert here["grade"] == "red" and here["score"] == 87.5 and here["key"] is True
    assert here["industry"] == "有机化学原料制造" and here["grade_label"] == "重大风险（红）"
    assert here["url"] == reverse("enterprises:detail", args=[world.here.pk])
    assert (here["lon"], here["lat"]) == (120.8, 31.7)
    assert data["total"] == 11
    assert data["grades"] == {"red": 2, "orange": 0, "yellow": 2, "blue": 5, "none": 2}


def test_few_enterprises_cluster_only_where_dense(client, world, mapped):
    """Under the fetch limit, a place with CLUSTER_MIN (5) or more is a cluster; sparser ones stay points."""
    data = _get(client, world.inspector, POINTS, bbox=CHANGSHU_BBOX).json()
    assert data["clustered"] is True
    assert [c["count"] for c in data["clusters"]] == [5]  # group B; group A has 4
    assert data["clusters"][0]["grade"] == "yellow"
    group_a = {e.pk for e in mapped["group_a"]}
    assert {p["id"] for p in data["points"]} == group_a | {world.here.pk, world.here_no_park.pk}
    # Zoomed in to street level, group B is points again.
    data = _get(client, world.inspector, POINTS, bbox="120.89995,31.74995,120.90055,31.75005").json()
    assert data["clustered"] is False and len(data["points"]) == 5


def test_clusters_add_up_and_take_their_worst_grade(client, world, mapped, monkeypatch):
    monkeypatch.setattr(geo_map, "POINTS_LIMIT", 3)
    data = _get(client, world.inspector, POINTS, bbox=CHANGSHU_BBOX).json()
    assert data["clustered"] is True
    assert data["cell"] == 2.0**-5  # 0.6° span / 12 columns = 0.05 -> the power of two below
    assert sum(c["count"] for c in data["clusters"]) + len(data["points"]) == data["total"] == 11
    by_size = {c["count"]: c for c in data["clusters"]}
    a, b = by_size[4], by_size[5]
    assert a["grade"] == "red" and a["grades"] == {"red": 1, "orange": 0, "yellow": 1, "blue": 2, "none": 0}
    assert b["grade"] == "yellow" and b["grades"] == {"red": 0, "orange": 0, "yellow": 1, "blue": 2, "none": 2}
    assert abs(a["lon"] - 120.70015) < 1e-6 and a["lat"] == 31.65  # the members' centroid
    # The loners are plain points with their details, not clusters of one.
    assert {p["id"] for p in data["points"]} == {world.here.pk, world.here_no_park.pk}
    assert all(p["name"] and p["url"] for p in data["points"])


def test_zooming_in_on_a_cluster_shows_its_points(client, world, mapped, monkeypatch):
    monkeypatch.setattr(geo_map, "POINTS_LIMIT", 3)
    data = _get(client, world.inspector, POINTS, bbox="120.695,31.645,120.705,31.655").json()
    assert data["total"] == 4
    # Still more than the limit, so clustered at this cell size; at the finest cell everything is a point.
    assert sum(c["count"] for c in data["clusters"]) + len(data["points"]) == 4
    finest = _get(client, world.inspector, POINTS, bbox="120.69995,31.64995,120.70045,31.65005").json()
    assert finest["clustered"] is False and len(finest["points"]) == 4


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"grade": "red"}, {"here", "a0"}),
        ({"grade": "none"}, {"b1", "b2"}),
        ({"key": "1"}, {"here"}),
        ({"grade": "blue", "key": "0"}, {"here_no_park", "a1", "a2", "b3", "b4"}),
    ],
)
def test_filters(client, world, mapped, params, expected):
    ids = {"here": world.here.pk, "here_no_park": world.here_no_park.pk}
    ids.update({f"a{i}": e.pk for i, e in enumerate(mapped["group_a"])})
    ids.update({f"b{i}": e.pk for i, e in enumerate(mapped["group_b"])})
    data = _get(client, world.inspector, POINTS, bbox=CHANGSHU_BBOX, **params).json()
    assert {p["id"] for p in data["points"]} == {ids[k] for k in expected}


def test_section_and_park_filters(client, world, mapped):
    mining = Industry.objects.filter(section="B", level=4).order_by("code").first()  # GB/T 4754 data
    loner = _at(f.enterprise(world.regions["township"], industry=mining), 120.75, 31.60, "blue")
    data = _get(client, world.inspector, POINTS, bbox=CHANGSHU_BBOX, section="B").json()
    assert [p["id"] for p in data["points"]] == [loner.pk]
    data = _get(client, world.inspector, POINTS, bbox=CHANGSHU_BBOX, park=world.park.pk).json()
    assert [p["id"] for p in data["points"]] == [world.here.pk]


def test_region_drill_down_limits_points_to_the_subtree(client, world, mapped):
    data = _get(client, world.city_admin, POINTS, region="320582").json()
    assert [p["name"] for p in data["points"]] == ["张家港丙化工有限公司"]
    # Without a bbox the region's own outline frames the query.
    outline = RegionBoundary.objects.get(region__code="320582")
    assert data["bbox"] == [outline.min_lon, outline.min_lat, outline.max_lon, outline.max_lat]


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "121,31,120,32"}, "bbox"),
        ({"grade": "purple"}, "grade"),
        ({"park": "x"}, "park"),
    ],
)
def test_bad_input_is_a_400_with_the_reason(client, world, mapped, params, reason):
    response = _get(client, world.inspector, POINTS, **params)
    assert response.status_code == 400
    body = response.json()
    assert reason in body["errors"] and body["detail"]


def test_scoping_other_county_and_park_manager(client, world, mapped):
    data = _get(client, world.other_inspector, POINTS, bbox="119,30,122,33").json()
    assert {p["id"] for p in data["points"]} == {world.there.pk}
    data = _get(client, world.park_manager, POINTS, bbox="119,30,122,33").json()
    assert {p["id"] for p in data["points"]} == {world.here.pk}
    data = _get(client, world.city_admin, POINTS, bbox="119,30,122,33").json()
    assert data["total"] == 12


def test_region_outside_the_jurisdiction_is_404(client, world, mapped):
    assert _get(client, world.inspector, POINTS, region="320582").status_code == 404
    assert _get(client, world.inspector, BOUNDARIES, region="320582").status_code == 404
    assert _get(client, world.inspector, PAGE, region="320582").status_code == 404
    assert _get(client, world.inspector, BOUNDARIES, region="999999").status_code == 404


@pytest.mark.parametrize("url", [PAGE, POINTS, BOUNDARIES])
def test_enterprise_users_and_auditors_get_403_anonymous_goes_to_login(client, world, mapped, url):
    assert _get(client, world.enterprise_user, url).status_code == 403
    assert _get(client, world.auditor, url).status_code == 403
    client.logout()
    response = client.get(url)
    assert response.status_code == 302 and "/accounts/login" in response["Location"]


def test_boundaries_are_the_region_and_its_children(client, world, mapped):
    data = _get(client, world.city_admin, BOUNDARIES).json()
    assert data["region"] == {"code": "320500", "name": "苏州市"}
    roles = {ft["properties"]["code"]: ft["properties"]["role"] for ft in data["features"]}
    assert roles == {"320500": "self", "320581": "child", "320582": "child"}
    props = {ft["properties"]["code"]: ft["properties"] for ft in data["features"]}
    assert props["320581"]["drill"] is True  # 常熟 has a township boundary below it
    assert props["320582"]["drill"] is False
    assert props["320581"]["label"] == "常熟市" and props["320581"]["name"] == "常熟市·320581"
    assert data["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    city = RegionBoundary.objects.get(region__code="320500")
    assert data["bbox"] == [city.min_lon, city.min_lat, city.max_lon, city.max_lat]

    data = _get(client, world.inspector, BOUNDARIES).json()
    assert [ft["properties"]["code"] for ft in data["features"]] == ["320581", "320581001"]
    assert [c["code"] for c in data["crumbs"]] == ["320581"]  # nothing above the jurisdiction
    data = _get(client, world.city_admin, BOUNDARIES, region="320581001").json()
    assert [c["name"] for c in data["crumbs"]] == ["苏州市", "常熟市", "虞山街道"]


def test_boundaries_without_data_is_an_empty_collection(client, world):
    data = _get(client, world.inspector, BOUNDARIES).json()
    assert data["features"] == [] and data["bbox"] is None and data["region"]["code"] == "320581"


def test_page_renders_in_chinese_with_nav_entry(client, world, mapped):
    response = _get(client, world.inspector, PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'lang="zh-hans"' in html and "风险地图" in html
    assert f'data-points-url="{POINTS}"' in html and f'data-boundaries-url="{BOUNDARIES}"' in html
    assert "js/risk_map.js" in html and "js/echarts-global.js" in html
    assert f'href="{PAGE}"' in html  # the nav entry
    for label in ("重大风险（红）", "较大风险（橙）", "一般风险（黄）", "低风险（蓝）", "未评定"):
        assert label in html  # legend and grade filter


def test_page_renders_in_english(client, world, mapped):
    client.force_login(world.park_manager)
    client.cookies["django_language"] = "en"
    response = client.get(PAGE)
    assert response.status_code == 200
    assert 'lang="en"' in response.content.decode()


def test_enterprise_user_has_no_nav_entry(client, world):
    client.force_login(world.enterprise_user)
    html = client.get(reverse("enterprises:list")).content.decode()
    assert f'href="{PAGE}"' not in html


def test_drilled_page_shows_breadcrumbs(client, world, mapped):
    html = _get(client, world.city_admin, PAGE, region="320581").content.decode()
    assert 'data-region="320500"' in html and 'data-region="320581"' in html


def test_groups_split_by_a_cell_border_become_one_cluster(client, world, monkeypatch):
    monkeypatch.setattr(geo_map, "POINTS_LIMIT", 3)
    border = 3862 * 2.0**-5  # 120.6875: a cell border at this view's cell size (2**-5)
    grades = ["blue", "blue", "orange", "blue", "", "blue"]
    for i, grade in enumerate(grades):
        lon = border - 0.0005 if i < 3 else border + 0.0005
        _at(f.enterprise(world.regions["township"]), lon, 31.60, grade)
    data = _get(client, world.inspector, POINTS, bbox=CHANGSHU_BBOX).json()
    assert data["points"] == [] and len(data["clusters"]) == 1
    (only,) = data["clusters"]
    assert only["count"] == 6 and only["grade"] == "orange" and only["grades"]["none"] == 1
    assert abs(only["lon"] - border) < 1e-6


def test_merge_close_keeps_every_member():
    cells = [
        {"n": n, "lon": lon, "lat": 0.0, "first": i, **{f"n_{g}": 0 for g in geo_map.GRADES}}
        for i, (n, lon) in enumerate([(5, 0.0), (1, 0.3), (2, 0.6), (4, 2.0)])
    ]
    for c in cells:
        c["n_blue"] = c["n"]
    merged = geo_map.merge_close(cells, 0.5)
    # 0.6 is beyond the radius of 0.0, so both stay; the loner at 0.3 joins one of them; 2.0 stays alone.
    assert len(merged) == 3 and 4 in [c["n"] for c in merged]
    assert sum(c["n"] for c in merged) == sum(c["n_blue"] for c in merged) == 12


def test_superuser_opens_on_the_widest_boundary_and_sees_everything(client, world, mapped):
    root = f.user("root", "inspector", is_superuser=True)
    data = _get(client, root, BOUNDARIES).json()
    assert data["region"]["code"] == "320500"
    data = _get(client, root, POINTS).json()  # no bbox: the city's outline frames the query
    assert data["total"] == 12
