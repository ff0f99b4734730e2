"""The dashboard page and its JSON API: rendering (zh/en), pickers, drill-down links, scoping, errors."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.enterprises import dashboard_data as data

pytestmark = pytest.mark.django_db

OCT = {"period": "month", "month": "2026-10"}


@pytest.fixture
def built(world):
    data.build(world)
    return world


def page(client, user, **params):
    client.force_login(user)
    return client.get(reverse("dashboard:index"), params)


def test_regulator_home_is_the_dashboard(client, world):
    client.force_login(world.inspector)
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response.url == reverse("dashboard:index")
    client.force_login(world.enterprise_user)
    assert client.get(reverse("home")).url != reverse("dashboard:index")


def test_page_renders_cards_charts_and_drill_down_in_chinese(client, built):
    response = page(client, built.inspector, region="320581", **OCT)
    assert response.status_code == 200
    html = response.content.decode()
    assert "监管驾驶舱" in html and "隐患整改率" in html and "按期整改率" in html
    # KPI card with its definition and the change against September (4 vs 2 hazards found).
    assert "4 项" in html and "▲ +2" in html
    assert "统计期内上报（发现）的隐患数" in html
    # ECharts from the local package, data for the charts in a JSON script element.
    assert "js/echarts-global.js" in html and 'id="db-data"' in html and "js/dashboard.js" in html
    # Drill-down: the township links to its own dashboard with the same period.
    assert "?region=320581001&amp;period=month&amp;month=2026-10" in html
    assert "本级" in html
    # Change colours follow each indicator's direction: fewer on-time closings is bad, more found is neutral.
    import re

    on_time = re.search(r'data-key="on_time_rate".*?</article>', html, re.S).group(0)
    found = re.search(r'data-key="hazards_found".*?</article>', html, re.S).group(0)
    assert 'class="db-bad"' in on_time and 'class="db-flat"' in found
    assert 'href="/dashboard/"' in html  # the nav entry


def test_page_renders_in_english(client, built):
    client.force_login(built.inspector)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    response = client.get(reverse("dashboard:index"), {"region": "320581", **OCT})
    assert response.status_code == 200
    assert '<html lang="en">' in response.content.decode()


def test_lowest_level_links_enterprises_to_their_dossier(client, built):
    html = page(client, built.inspector, region="320581001", **OCT).content.decode()
    assert reverse("enterprises:detail", args=[built.here.pk]) in html and built.here.name in html


def test_quarter_year_and_custom_periods(client, built):
    for params in (
        {"period": "quarter", "quarter": "2026-Q4"},
        {"period": "year", "year": "2026"},
        {"period": "custom", "start": "2026-10-01", "end": "2026-10-31"},
    ):
        response = page(client, built.inspector, **params)
        assert response.status_code == 200, params
    html = page(client, built.inspector, period="custom", start="2026-10-31", end="2026-10-01").content.decode()
    assert "结束日期不能早于开始日期" in html


def test_enterprise_users_and_outsiders_get_403(client, built):
    assert page(client, built.enterprise_user).status_code == 403
    assert page(client, built.auditor).status_code == 403
    assert page(client, built.inspector, region="320582").status_code == 403
    assert page(client, built.inspector, region="999999").status_code == 404


def test_park_manager_sees_the_park(client, built):
    response = page(client, built.park_manager, **OCT)
    assert response.status_code == 200
    html = response.content.decode()
    assert built.here.name in html and built.here_no_park.name not in html


def api_get(user, **params):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client.get("/api/v1/dashboard/", params)


def test_api_returns_the_same_numbers(built):
    response = api_get(built.inspector, region="320581", start="2026-10-01", end="2026-10-31")
    assert response.status_code == 200
    body = response.json()
    ind = {row["key"]: row for row in body["indicators"]}
    assert ind["hazards_found"]["value"] == 4 and ind["hazards_found"]["previous"] == 2
    assert ind["on_time_rate"]["value"] == 66.7
    assert body["region"] == {"code": "320581", "name": "常熟市", "level": 3}
    assert len(body["trend"]["hazards_found"]) == 12
    assert {row["region"]["code"] for row in body["children"]} == {"320581", "320581001"}


def test_api_errors(built):
    assert api_get(built.inspector, start="2026-10-31", end="2026-10-01").status_code == 400
    bad = api_get(built.inspector, start="2026-13-01", end="2026-10-01")
    assert bad.status_code == 400 and "start" in bad.json()["detail"]
    assert api_get(built.inspector, period="month", month="2026/10").status_code == 400
    assert api_get(built.inspector, region="320582").status_code == 403
    assert api_get(built.inspector, region="999999").status_code == 404
    assert api_get(built.enterprise_user).status_code == 403
    assert api_get(None).status_code in (401, 403)


def test_api_city_admin_and_default_region(built):
    body = api_get(built.city_admin, **OCT).json()
    assert body["region"]["code"] == "320500"
    assert {row["region"]["code"] for row in body["children"]} == {"320581", "320582"}


def test_section_head_sees_the_subtree_and_park_manager_only_the_park_region(client, built):
    from regulator.choices import Role
    from tests import factories as f

    head = f.user("dash_head", Role.SECTION_HEAD, jurisdiction=built.regions["county"])
    assert page(client, head, region="320581001", **OCT).status_code == 200
    assert page(client, head, region="320500").status_code == 403
    assert api_get(built.park_manager, region="320581001").status_code == 403
    body = api_get(built.park_manager, **OCT).json()
    assert body["children_kind"] == "enterprise"
    assert [row["enterprise"]["id"] for row in body["children"]] == [built.here.pk]
