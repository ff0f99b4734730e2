"""Who sees what, through every door: HTML list/detail, API list/detail, the dossier, the admin."""

import pytest

# persona -> (names visible in the list, {enterprise key: expected detail status})
MATRIX = {
    "inspector": ({"here", "here_no_park"}, {"here": 200, "here_no_park": 200, "there": 404}),
    "other_inspector": ({"there"}, {"here": 404, "here_no_park": 404, "there": 200}),
    "city_admin": ({"here", "here_no_park", "there"}, {"here": 200, "here_no_park": 200, "there": 200}),
    "park_manager": ({"here"}, {"here": 200, "here_no_park": 404, "there": 404}),
    "enterprise_user": ({"here"}, {"here": 200, "here_no_park": 404, "there": 404}),
    "auditor": (set(), {"here": 404, "here_no_park": 404, "there": 404}),
}
KEYS = ["here", "here_no_park", "there"]


def _names(world, keys):
    return {getattr(world, k).name for k in keys}


@pytest.mark.parametrize("persona", MATRIX)
def test_html_list_and_detail(world, browser, persona):
    visible, details = MATRIX[persona]
    client = browser(getattr(world, persona))
    page = client.get("/enterprises/").content.decode()
    for key in KEYS:
        assert (getattr(world, key).name in page) == (key in visible), key
    for key, status in details.items():
        assert client.get(f"/enterprises/{getattr(world, key).pk}/").status_code == status, key


@pytest.mark.parametrize("persona", MATRIX)
def test_api_list_detail_and_dossier(world, api, persona):
    visible, details = MATRIX[persona]
    client = api(getattr(world, persona))
    body = client.get("/api/v1/enterprises/").json()
    assert {row["name"] for row in body["results"]} == _names(world, visible)
    for key, status in details.items():
        pk = getattr(world, key).pk
        assert client.get(f"/api/v1/enterprises/{pk}/").status_code == status, key
        assert client.get(f"/api/v1/enterprises/{pk}/dossier/").status_code == status, key


def test_anonymous_is_sent_to_login_or_refused(world, browser, api):
    client = browser(None)
    response = client.get("/enterprises/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client.get(f"/enterprises/{world.here.pk}/").status_code == 302
    assert client.get("/enterprises/export.csv").status_code == 302
    anon = api(None)
    assert anon.get("/api/v1/enterprises/").status_code in (401, 403)
    assert anon.get(f"/api/v1/enterprises/{world.here.pk}/dossier/").status_code in (401, 403)
    assert anon.get("/api/v1/industries/").status_code in (401, 403)


def test_related_resources_are_scoped_too(world, api):
    from .conftest import add_installation, add_licence

    add_licence(world.here, "L-HERE", 30)
    add_licence(world.there, "L-THERE", 30)
    add_installation(world.here, name="HERE-MH")
    add_installation(world.there, name="THERE-MH")
    client = api(world.inspector)
    assert [r["number"] for r in client.get("/api/v1/licences/").json()["results"]] == ["L-HERE"]
    assert [r["name"] for r in client.get("/api/v1/major-hazards/").json()["results"]] == ["HERE-MH"]
    other_licence = world.there.licences.get()
    assert client.get(f"/api/v1/licences/{other_licence.pk}/").status_code == 404


def test_admin_lists_and_change_pages_are_scoped(world, browser, staff_inspector, staff_other_inspector):
    client = browser(staff_inspector)
    page = client.get("/admin/enterprises/enterprise/").content.decode()
    assert world.here.name in page and world.there.name not in page
    assert client.get(f"/admin/enterprises/enterprise/{world.here.pk}/change/").status_code == 200
    assert client.get(f"/admin/enterprises/enterprise/{world.there.pk}/change/").status_code == 404
    assert client.get(f"/admin/enterprises/enterprise/{world.there.pk}/delete/").status_code == 404
    assert client.get(f"/admin/enterprises/enterprise/{world.there.pk}/history/").status_code == 404
    client = browser(staff_other_inspector)
    assert client.get(f"/admin/enterprises/enterprise/{world.here.pk}/change/").status_code == 404
    assert client.get(f"/admin/enterprises/enterprise/{world.there.pk}/change/").status_code == 200


def test_admin_related_models_are_scoped(world, browser, staff_inspector):
    from .conftest import add_installation, add_licence

    there_licence = add_licence(world.there, "L-THERE", 30)
    there_mh = add_installation(world.there, name="THERE-MH")
    client = browser(staff_inspector)
    assert client.get(f"/admin/enterprises/licence/{there_licence.pk}/change/").status_code == 404
    assert client.get(f"/admin/enterprises/majorhazardinstallation/{there_mh.pk}/change/").status_code == 404
    substance = there_mh.substances.get()
    assert client.get(f"/admin/enterprises/hazardoussubstance/{substance.pk}/change/").status_code == 404
    assert "L-THERE" not in client.get("/admin/enterprises/licence/").content.decode()


def test_non_staff_cannot_open_the_admin(world, browser):
    response = browser(world.inspector).get("/admin/enterprises/enterprise/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
