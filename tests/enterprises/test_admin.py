"""Admin writes go through the services: the timeline records them and R follows the substances."""

from decimal import Decimal

from enterprises.models import EnterpriseChange, Industry

from .conftest import add_installation

EMPTY_INLINES = {
    f"{prefix}-{key}": value
    for prefix in ("licences", "major_hazards", "changes")
    for key, value in (("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"), ("MIN_NUM_FORMS", "0"), ("MAX_NUM_FORMS", "1000"))
}


def _enterprise_form(ent, **extra):
    data = {
        "uscc": ent.uscc,
        "name": ent.name,
        "former_names": "[]",
        "region": ent.region_id,
        "park": ent.park_id or "",
        "industry": ent.industry_id,
        "scale": ent.scale,
        "employees": ent.employees,
        "operating_status": ent.operating_status,
        **EMPTY_INLINES,
    }
    data.update(extra)
    return data


def test_admin_edit_goes_through_the_service(world, browser, staff_inspector):
    client = browser(staff_inspector)
    response = client.post(
        f"/admin/enterprises/enterprise/{world.here.pk}/change/", _enterprise_form(world.here, employees="777")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    world.here.refresh_from_db()
    assert world.here.employees == 777
    change = EnterpriseChange.objects.get(enterprise=world.here)
    assert (change.source, change.user, change.changes["employees"]["new"]) == ("admin", staff_inspector, 777)


def test_admin_add_derives_sector_and_logs(world, browser, staff_inspector):
    from tests import factories as f

    client = browser(staff_inspector)
    data = _enterprise_form(world.here, uscc=f.make_uscc(8801), name="常熟后台新增化工有限公司")
    data["industry"] = Industry.objects.get(code="2614").pk
    response = client.post("/admin/enterprises/enterprise/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    change = EnterpriseChange.objects.get(enterprise__name="常熟后台新增化工有限公司")
    assert change.source == "admin" and change.action == "created"


def test_admin_substance_change_recomputes_r(world, browser, staff_inspector):
    inst = add_installation(world.here, people=10)  # chlorine 10 t: R = 8, 四级
    substance = inst.substances.get()
    response = browser(staff_inspector).post(
        f"/admin/enterprises/hazardoussubstance/{substance.pk}/change/",
        {
            "installation": inst.pk,
            "name": "氯",
            "cas_number": "7782-50-5",
            "substance_class": "specific",
            "actual_quantity": "130",
            "critical_quantity": "5",
            "beta": "4",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    inst.refresh_from_db()
    assert (inst.r_value, inst.grade) == (Decimal("104.000"), 1)


def test_admin_licence_inline_goes_through_the_service(world, browser, staff_inspector):
    data = _enterprise_form(world.here)
    data.update(
        {
            "licences-TOTAL_FORMS": "1",
            "licences-0-licence_type": "safety_production",
            "licences-0-number": "(苏)WH安许证字[ADMIN1]",
            "licences-0-scope": "",
            "licences-0-issued_on": "2025-01-01",
            "licences-0-expires_on": "2028-01-01",
        }
    )
    response = browser(staff_inspector).post(f"/admin/enterprises/enterprise/{world.here.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert world.here.licences.get().number == "(苏)WH安许证字[ADMIN1]"
    change = EnterpriseChange.objects.get(enterprise=world.here, action="licence_added")
    assert change.source == "admin"
