"""The list and the dossier cost the same number of queries whatever the number of rows."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from enterprises import services
from tests import factories as f

from .conftest import add_installation, add_licence


def _count(client, url):
    client.get(url)  # warm up per-user caches (jurisdiction ids) so both runs compare like with like
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
        if getattr(response, "streaming", False):
            b"".join(response.streaming_content)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _grow_enterprises(world, n):
    for i in range(n):
        f.enterprise(world.regions["township"], park=world.park, name=f"常熟扩容{i}化工有限公司")


def _grow_dossier(world, n):
    for i in range(n):
        add_licence(world.here, f"L-{i}", 10 + i)
        add_installation(world.here, name=f"罐区{i}")
        services.enterprise_update(enterprise=world.here, user=world.inspector, data={"employees": 100 + i})


def test_list_api_and_page_do_not_grow_with_rows(world, api, browser):
    api_client, page_client = api(world.inspector), browser(world.inspector)
    urls = ["/api/v1/enterprises/", "/enterprises/", "/enterprises/?q=化工&licence_expiring=false"]
    before = [_count(api_client, urls[0]), _count(page_client, urls[1]), _count(page_client, urls[2])]
    _grow_enterprises(world, 20)
    after = [_count(api_client, urls[0]), _count(page_client, urls[1]), _count(page_client, urls[2])]
    assert before == after


def test_dossier_api_and_page_do_not_grow_with_related_rows(world, api, browser):
    add_licence(world.here, "L-first", 5)
    add_installation(world.here, name="罐区-first")
    api_client, page_client = api(world.inspector), browser(world.inspector)
    api_url, page_url = f"/api/v1/enterprises/{world.here.pk}/dossier/", f"/enterprises/{world.here.pk}/"
    before = (_count(api_client, api_url), _count(page_client, page_url))
    _grow_dossier(world, 19)
    after = (_count(api_client, api_url), _count(page_client, page_url))
    assert before == after


def test_export_does_not_grow_with_rows(world, browser):
    client = browser(world.inspector)
    before = _count(client, "/enterprises/export.csv")
    _grow_enterprises(world, 20)
    assert _count(client, "/enterprises/export.csv") == before


def test_dossier_page_runs_the_context_processors_once(world, browser):
    """Sections share the page's request context: one navigation menu, one unread count."""
    add_licence(world.here, "L-csrf", 30)
    client = browser(world.inspector)
    url = f"/enterprises/{world.here.pk}/"
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    unread_counts = [q for q in ctx.captured_queries if "regulator_notification" in q["sql"]]
    assert len(unread_counts) == 1
    html = response.content.decode()
    # What the sections took from the request context is still there: the CSRF token of the
    # licence delete form, and the page's own navigation.
    assert f"/enterprises/{world.here.pk}/licences/" in html
    assert html.count('name="csrfmiddlewaretoken"') >= 3  # language switch, logout, licence delete
    assert 'class="mainnav"' in html and "L-csrf" in html


def test_list_filters_render_and_keep_the_chosen_values(world, browser):
    from enterprises.models import Industry

    world.here.is_key = True
    world.here.risk_grade = "red"
    world.here.save(update_fields=["is_key", "risk_grade"])
    chem = Industry.objects.get(code="26")
    client = browser(world.inspector)
    response = client.get(f"/enterprises/?is_key=true&risk_grade=red&has_major_hazard=false&industry={chem.pk}")
    html = response.content.decode()
    assert '<option value="true" selected>' in html  # is_key
    assert '<option value="red" selected>' in html
    assert '<option value="false" selected>' in html  # has_major_hazard
    assert f'<option value="{chem.pk}" selected>' in html
    assert '<option value="unknown" selected>' in html  # licence_expiring not chosen
    assert "\u300026 化学原料和化学制品制造业" in html  # industry labels indented by level
    response = client.get("/enterprises/?is_key=true&risk_grade=red")
    assert world.here.name in response.content.decode()
    assert world.here_no_park.name not in response.content.decode()
