from enterprises.models import Enterprise, EnterpriseChange, Industry, MajorHazardInstallation
from tests import factories as f

from .conftest import add_licence


def _form(world, **extra):
    data = {
        "uscc": f.make_uscc(6001),
        "name": "常熟己化工有限公司",
        "region": world.regions["township"].pk,
        "park": world.park.pk,
        "industry": Industry.objects.get(code="2614").pk,
        "scale": "small",
        "employees": "50",
        "operating_status": "operating",
    }
    data.update(extra)
    return data


def test_list_page_search_filters_and_pagination(world, browser):
    for i in range(30):
        f.enterprise(world.regions["county"], name=f"常熟批量{i:02d}机械有限公司")
    client = browser(world.inspector)
    page = client.get("/enterprises/").content.decode()
    assert "共 32 家企业" in page and "第 1 / 2 页" in page
    assert 'href="/enterprises/export.csv"' in page
    page = client.get("/enterprises/", {"q": "甲化工"}).content.decode()
    assert world.here.name in page and world.here_no_park.name not in page
    assert "q=%E7%94%B2%E5%8C%96%E5%B7%A5" in page  # export links keep the filters
    page2 = client.get("/enterprises/", {"page": 2}).content.decode()
    assert "第 2 / 2 页" in page2


def test_list_page_shows_new_button_to_regulators_only(world, browser):
    assert "/enterprises/new/" in browser(world.inspector).get("/enterprises/").content.decode()
    assert "/enterprises/new/" not in browser(world.park_manager).get("/enterprises/").content.decode()


def test_create_form_explains_a_wrong_check_character(world, browser):
    good = f.make_uscc(6001)
    wrong = good[:-1] + ("1" if good[-1] != "1" else "2")
    response = browser(world.inspector).post("/enterprises/new/", _form(world, uscc=wrong))
    assert response.status_code == 200
    assert f"第18位应为“{good[-1]}”" in response.content.decode()
    assert not Enterprise.objects.filter(name="常熟己化工有限公司").exists()


def test_create_form_saves_and_redirects_to_the_dossier(world, browser):
    response = browser(world.inspector).post("/enterprises/new/", _form(world, uscc=f.make_uscc(6001).lower()))
    ent = Enterprise.objects.get(name="常熟己化工有限公司")
    assert response.status_code == 302 and response["Location"] == f"/enterprises/{ent.pk}/"
    assert ent.uscc == f.make_uscc(6001)
    assert EnterpriseChange.objects.get(enterprise=ent).source == "ui"


def test_create_form_rejects_park_outside_region(world, browser):
    data = _form(world, region=world.regions["county"].pk)
    f.region("320581100", "梅李镇", 4, world.regions["county"])
    data["region"] = world.regions["county"].pk  # park is in the township, the county is its parent: allowed
    assert browser(world.inspector).post("/enterprises/new/", data).status_code == 302
    other_park = f.park(world.regions["other_county"], code="P-ZJG", name="张家港园区")
    response = browser(world.city_admin).post(
        "/enterprises/new/", _form(world, uscc=f.make_uscc(6002), park=other_park.pk)
    )
    assert "园区不在企业所在区划内" in response.content.decode()


def test_edit_form_permissions(world, browser):
    assert browser(world.inspector).get(f"/enterprises/{world.here.pk}/edit/").status_code == 200
    assert browser(world.inspector).get(f"/enterprises/{world.there.pk}/edit/").status_code == 404
    assert browser(world.park_manager).get(f"/enterprises/{world.here.pk}/edit/").status_code == 403
    assert browser(world.enterprise_user).get(f"/enterprises/{world.here.pk}/edit/").status_code == 403
    assert browser(world.park_manager).get("/enterprises/new/").status_code == 403


def test_edit_form_updates_and_timeline_shows_it(world, browser):
    client = browser(world.inspector)
    data = _form(world, uscc=world.here.uscc, name=world.here.name, employees="999")
    assert client.post(f"/enterprises/{world.here.pk}/edit/", data).status_code == 302
    page = client.get(f"/enterprises/{world.here.pk}/").content.decode()
    assert "从业人数" in page and "999" in page
    assert EnterpriseChange.objects.filter(enterprise=world.here, action="updated").exists()


def test_dossier_page_shows_sections(world, browser):
    add_licence(world.here, "SOON-1", 20)
    page = browser(world.enterprise_user).get(f"/enterprises/{world.here.pk}/").content.decode()
    for title in ("基本信息", "证照许可", "重大危险源", "档案变更记录"):
        assert title in page
    assert "SOON-1" in page and "20 天后到期" in page
    assert "编辑基本信息" not in page  # enterprise users read only


def test_installation_form_computes_grade(world, browser):
    client = browser(world.inspector)
    data = {
        "name": "液氯储罐区",
        "people_within_500m": "120",
        "custodian_main": "王强",
        "substances-TOTAL_FORMS": "2",
        "substances-INITIAL_FORMS": "0",
        "substances-0-name": "氯",
        "substances-0-substance_class": "specific",
        "substances-0-actual_quantity": "20",
        "substances-0-critical_quantity": "5",
    }
    response = client.post(f"/enterprises/{world.here.pk}/major-hazards/new/", data)
    assert response.status_code == 302
    inst = MajorHazardInstallation.objects.get(enterprise=world.here)
    assert (str(inst.r_value), inst.grade) == ("32.000", 3)  # 2 * 4 * 20/5
    page = client.get(f"/enterprises/{world.here.pk}/").content.decode()
    assert "三级" in page and "R = 32.000" in page


def test_licence_form_validates_dates(world, browser):
    client = browser(world.inspector)
    data = {"licence_type": "other", "number": "N-1", "issued_on": "2025-05-01", "expires_on": "2025-01-01"}
    response = client.post(f"/enterprises/{world.here.pk}/licences/new/", data)
    assert response.status_code == 200 and "有效期不能早于发证日期" in response.content.decode()
    data["expires_on"] = "2028-01-01"
    assert client.post(f"/enterprises/{world.here.pk}/licences/new/", data).status_code == 302
    assert world.here.licences.get().number == "N-1"


def test_filter_form_keeps_the_chosen_options(world, browser):
    industry = Industry.objects.get(code="26")
    page = (
        browser(world.inspector)
        .get("/enterprises/", {"industry": industry.pk, "region": world.regions["township"].pk})
        .content.decode()
    )
    assert f'<option value="{industry.pk}" selected>' in page
    assert f'<option value="{world.regions["township"].pk}" selected>' in page
    assert world.here.name in page and world.here_no_park.name not in page
    # regions outside the inspector's jurisdiction are not even offered
    assert "常熟市（320581）" in page and "张家港市（320582）" not in page
