from datetime import date

from enterprises import uscc
from enterprises.models import Enterprise, EnterpriseChange, Industry
from tests import factories as f

from .conftest import add_installation, add_licence


def _payload(world, **extra):
    data = {
        "uscc": f.make_uscc(5001),
        "name": "常熟戊化工有限公司",
        "region": world.regions["township"].pk,
        "park": world.park.pk,
        "industry": Industry.objects.get(code="2614").pk,
        "principal_phone": "13800000009",
    }
    data.update(extra)
    return data


def test_create_with_bad_check_character_is_400_with_reason(world, api):
    good = f.make_uscc(5001)
    wrong = good[:-1] + ("1" if good[-1] != "1" else "2")
    response = api(world.inspector).post("/api/v1/enterprises/", _payload(world, uscc=wrong), format="json")
    assert response.status_code == 400
    assert f"应为“{good[-1]}”" in response.json()["uscc"][0]


def test_create_with_forbidden_letter_is_400(world, api):
    response = api(world.inspector).post(
        "/api/v1/enterprises/", _payload(world, uscc="91320581MA0000000I"), format="json"
    )
    assert response.status_code == 400
    assert "I" in response.json()["uscc"][0]


def test_create_normalises_and_records_api_source(world, api):
    code = f.make_uscc(5001)
    response = api(world.inspector).post(
        "/api/v1/enterprises/", _payload(world, uscc=code.lower().replace("9", "９")), format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["uscc"] == code and body["high_risk_sector"] == "chemicals"
    assert EnterpriseChange.objects.get(enterprise_id=body["id"]).source == "api"


def test_duplicate_uscc_is_400(world, api):
    response = api(world.inspector).post("/api/v1/enterprises/", _payload(world, uscc=world.here.uscc), format="json")
    assert response.status_code == 400 and "uscc" in response.json()


def test_create_outside_jurisdiction_is_400(world, api):
    payload = _payload(world, region=world.regions["other_county"].pk, park=None)
    response = api(world.inspector).post("/api/v1/enterprises/", payload, format="json")
    assert response.status_code == 400 and "region" in response.json()


def test_park_manager_and_enterprise_user_cannot_write(world, api):
    for persona in (world.park_manager, world.enterprise_user):
        client = api(persona)
        assert client.post("/api/v1/enterprises/", _payload(world), format="json").status_code == 403
        assert client.patch(f"/api/v1/enterprises/{world.here.pk}/", {"employees": 3}, format="json").status_code == 403


def test_patch_updates_and_out_of_scope_is_404(world, api):
    client = api(world.inspector)
    response = client.patch(f"/api/v1/enterprises/{world.here.pk}/", {"employees": 321}, format="json")
    assert response.status_code == 200 and response.json()["employees"] == 321
    assert client.patch(f"/api/v1/enterprises/{world.there.pk}/", {"employees": 1}, format="json").status_code == 404
    assert client.delete(f"/api/v1/enterprises/{world.here.pk}/").status_code == 405


def test_list_and_detail_mask_phones_as_the_page_does(world, api):
    """The detail used to return phones in full to anyone in scope; now only ?reveal=1 with the
    reveal permission does (tests/security/test_masking.py covers the reveal and its audit)."""
    world.here.principal_phone = "13800000001"
    world.here.save()
    client = api(world.inspector)
    row = next(r for r in client.get("/api/v1/enterprises/").json()["results"] if r["id"] == world.here.pk)
    assert row["principal_phone"] == "138****0001"
    assert client.get(f"/api/v1/enterprises/{world.here.pk}/").json()["principal_phone"] == "138****0001"


def test_filters(world, api):
    client = api(world.city_admin)

    def names(**params):
        return {r["name"] for r in client.get("/api/v1/enterprises/", params).json()["results"]}

    Enterprise.objects.filter(pk=world.here.pk).update(former_names_text="虞山老化工厂", risk_grade="red", is_key=True)
    add_licence(world.here_no_park, "EXP-1", 30)
    add_licence(world.there, "LATER-1", 400)
    assert names(q="老化工") == {world.here.name}
    assert names(q=" ".join(world.there.uscc.lower())) == {world.there.name}
    assert names(q=world.there.uscc[:17]) == {world.there.name}
    assert names(region=world.regions["county"].pk) == {world.here.name, world.here_no_park.name}
    assert names(region=world.regions["township"].pk) == {world.here.name}
    assert names(park=world.park.pk) == {world.here.name}
    assert names(industry=Industry.objects.get(code="C").pk) == {
        world.here.name,
        world.here_no_park.name,
        world.there.name,
    }
    assert names(industry=Industry.objects.get(code="26").pk) == names()
    assert names(industry=Industry.objects.get(code="34").pk) == set()
    assert names(risk_grade="red") == {world.here.name}
    assert names(is_key="true") == {world.here.name}
    assert names(licence_expiring="true") == {world.here_no_park.name}
    Enterprise.objects.filter(pk=world.there.pk).update(high_risk_sector="chemicals")
    assert names(high_risk_sector="chemicals") == {world.there.name}
    Enterprise.objects.filter(pk=world.there.pk).update(name="苏州ABC精细化工有限公司", former_names_text="Old Name")
    assert names(q="abc精细") == {"苏州ABC精细化工有限公司"}  # letters: compared without case
    assert names(q="old") == {"苏州ABC精细化工有限公司"}
    assert names(q="精细化工") == {"苏州ABC精细化工有限公司"}  # none: a plain LIKE, same result
    assert names(q="%") == names(q="_") == set()  # LIKE wildcards are text to search for


def test_licences_api_flags_expiry_and_writes_through_service(world, api):
    client = api(world.inspector)
    response = client.post(
        "/api/v1/licences/",
        {
            "enterprise": world.here.pk,
            "licence_type": "safety_production",
            "number": "(苏)WH安许证字[E1]",
            "issued_on": "2024-01-01",
            "expires_on": date.today().replace(year=date.today().year + 1).isoformat(),
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert EnterpriseChange.objects.filter(enterprise=world.here, action="licence_added", source="api").exists()
    add_licence(world.here, "SOON", 10)
    expiring = client.get("/api/v1/licences/", {"expiring": "true"}).json()["results"]
    assert [(r["number"], r["expiring_soon"]) for r in expiring] == [("SOON", True)]
    # an enterprise out of scope reads as non-existent
    response = client.post(
        "/api/v1/licences/",
        {
            "enterprise": world.there.pk,
            "licence_type": "other",
            "number": "X",
            "issued_on": "2024-01-01",
            "expires_on": "2026-01-01",
        },
        format="json",
    )
    assert response.status_code == 400 and "enterprise" in response.json()
    bad_dates = {"enterprise": world.here.pk, "licence_type": "other", "number": "Y"}
    response = client.post(
        "/api/v1/licences/", {**bad_dates, "issued_on": "2025-01-01", "expires_on": "2024-01-01"}, format="json"
    )
    assert response.status_code == 400


def test_major_hazard_api_computes_r_and_grade(world, api):
    client = api(world.inspector)
    response = client.post(
        "/api/v1/major-hazards/",
        {
            "enterprise": world.here.pk,
            "name": "液氨储罐区",
            "people_within_500m": 120,
            "custodian_main": "王强",
            "custodian_technical": "李明",
            "custodian_operational": "赵刚",
            "substances": [
                {"name": "氨", "substance_class": "specific", "actual_quantity": "30", "critical_quantity": "10"}
            ],
            "r_value": "0.001",
            "grade": 4,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["r_value"], body["grade"], body["alpha"]) == ("12.000", 3, "2.0")  # 2 * 2 * 30/10
    assert body["substances"][0]["beta"] == "2.00"
    response = client.patch(
        f"/api/v1/major-hazards/{body['id']}/",
        {
            "substances": [
                {"name": "氨", "substance_class": "specific", "actual_quantity": "300", "critical_quantity": "10"}
            ]
        },
        format="json",
    )
    assert (response.json()["r_value"], response.json()["grade"]) == ("120.000", 1)


def test_dossier_has_every_registry_section(world, api):
    add_licence(world.here, "SOON", 10)
    add_licence(world.here, "OLD", -5)
    add_licence(world.here, "LATER", 300)
    add_installation(world.here, world.inspector, name="液氯储罐区")
    body = api(world.inspector).get(f"/api/v1/enterprises/{world.here.pk}/dossier/").json()
    assert body["enterprise"]["uscc"] == world.here.uscc
    sections = body["sections"]
    assert {"basic", "licences", "major_hazards", "timeline"} <= set(sections)
    basic = {f["key"]: f["value"] for f in sections["basic"]["data"]["fields"]}
    assert basic["uscc"] == world.here.uscc and basic["park"] == world.park.name
    licences = sections["licences"]["data"]
    assert {i["number"]: i["status"] for i in licences["items"]} == {
        "SOON": "expiring",
        "OLD": "expired",
        "LATER": "valid",
    }
    assert (licences["expiring_count"], licences["expired_count"]) == (1, 1)
    hazard = sections["major_hazards"]["data"]["items"][0]
    assert hazard["grade_display"] == "四级" and hazard["r_value"] == "8.000" and hazard["custodians"]["main"] == "张三"
    assert hazard["substances"][0]["name"] == "氯"
    assert sections["timeline"]["data"]["items"][0]["action"] == "hazard_added"


def test_industry_tree(world, api):
    client = api(world.inspector)
    tree = client.get("/api/v1/industries/tree/").json()
    assert [n["code"] for n in tree] == list("ABCDEFGHIJKLMNOPQRST")
    manufacturing = next(n for n in tree if n["code"] == "C")
    assert [n["code"] for n in manufacturing["children"]] == [str(c) for c in range(13, 44)]
    chemicals = next(n for n in manufacturing["children"] if n["code"] == "26")
    assert "261" in [g["code"] for g in chemicals["children"]]
    flat = client.get("/api/v1/industries/", {"high_risk_sector": "hazardous_storage"}).json()
    assert {i["code"] for i in flat} == {"594", "5941", "5942", "5949"}


def test_schema_and_docs_work_offline(world, browser):
    client = browser(world.inspector)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/api/v1/enterprises/{id}/dossier/", "/api/v1/industries/tree/", "/api/v1/major-hazards/"):
        assert path in text
    docs = client.get("/api/docs/").content.decode()
    assert "cdn" not in docs.lower() and "swagger-ui" in docs


def test_uscc_make_helper_round_trips():
    assert uscc.validate(f.make_uscc(5001)) == f.make_uscc(5001)
