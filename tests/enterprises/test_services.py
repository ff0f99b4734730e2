import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from enterprises import services
from enterprises.models import Enterprise, EnterpriseChange
from regulator.models import AuditEntry
from tests import factories as f


def _data(world, **extra):
    data = {
        "uscc": f.make_uscc(777),
        "name": "常熟丁化工有限公司",
        "region": world.regions["township"],
        "park": world.park,
        "industry": f.industry(),
        "principal_phone": "138 0000 0001",
    }
    data.update(extra)
    return data


def test_create_normalises_uscc_records_timeline_and_audit(world):
    code = f.make_uscc(777)
    ent = services.enterprise_create(user=world.inspector, data=_data(world, uscc=" " + code.lower() + " "))
    assert ent.uscc == code
    assert ent.high_risk_sector == "chemicals"  # derived from the industry
    assert ent.principal_phone == "13800000001"
    change = EnterpriseChange.objects.get(enterprise=ent)
    assert (change.action, change.source, change.user) == ("created", "ui", world.inspector)
    assert AuditEntry.objects.filter(event="enterprise.created", object_id=str(ent.pk)).exists()


def test_create_rejects_bad_uscc_with_the_reason(world):
    bad = f.make_uscc(778)[:-1] + ("0" if f.make_uscc(778)[-1] != "0" else "1")
    with pytest.raises(ValidationError) as exc:
        services.enterprise_create(user=world.inspector, data=_data(world, uscc=bad))
    assert "校验位" in exc.value.message_dict["uscc"][0]
    assert not Enterprise.objects.filter(name="常熟丁化工有限公司").exists()


def test_uscc_is_unique(world):
    with pytest.raises(ValidationError) as exc:
        services.enterprise_create(user=world.inspector, data=_data(world, uscc=world.here.uscc))
    assert "uscc" in exc.value.message_dict


def test_inspector_cannot_create_outside_jurisdiction(world):
    with pytest.raises(ValidationError) as exc:
        services.enterprise_create(
            user=world.inspector, data=_data(world, region=world.regions["other_county"], park=None)
        )
    assert "辖区" in exc.value.message_dict["region"][0]


def test_park_must_lie_in_the_region(world):
    with pytest.raises(ValidationError) as exc:
        services.enterprise_create(user=world.city_admin, data=_data(world, region=world.regions["other_county"]))
    assert "park" in exc.value.message_dict


@pytest.mark.parametrize("persona", ["park_manager", "enterprise_user", "auditor"])
def test_only_regulator_staff_write(world, persona):
    with pytest.raises(PermissionDenied):
        services.enterprise_create(user=getattr(world, persona), data=_data(world))
    with pytest.raises(PermissionDenied):
        services.enterprise_update(enterprise=world.here, user=getattr(world, persona), data={"employees": 5})


def test_inspector_cannot_update_enterprise_of_other_county(world):
    with pytest.raises(PermissionDenied):
        services.enterprise_update(enterprise=world.there, user=world.inspector, data={"employees": 5})


def test_update_records_field_diff_and_keeps_old_name(world):
    world.here.principal_phone = "13800000001"
    world.here.save()
    old_name = world.here.name
    ent = services.enterprise_update(
        enterprise=world.here,
        user=world.inspector,
        data={"name": "常熟甲新材料有限公司", "employees": 120, "principal_phone": "13900000002"},
        source="api",
    )
    assert ent.former_names == [old_name]
    change = EnterpriseChange.objects.filter(enterprise=ent, action="updated").get()
    assert change.source == "api"
    assert change.changes["name"] == {"label": "企业名称", "old": old_name, "new": "常熟甲新材料有限公司"}
    assert change.changes["employees"]["new"] == 120
    # phones appear masked in the timeline, never in clear
    assert change.changes["principal_phone"] == {"label": "主要负责人电话", "old": "138****0001", "new": "139****0002"}
    # the former name stays searchable
    assert Enterprise.objects.filter(former_names_text__contains=old_name).get() == ent


def test_update_without_change_writes_nothing(world):
    services.enterprise_update(enterprise=world.here, user=world.inspector, data={"name": world.here.name})
    assert not EnterpriseChange.objects.filter(enterprise=world.here).exists()


def test_changing_industry_rederives_high_risk_sector(world):
    from enterprises.models import Industry

    machinery = Industry.objects.get(code="34")
    ent = services.enterprise_update(enterprise=world.here, user=world.inspector, data={"industry": machinery})
    assert ent.high_risk_sector == ""


def test_licence_services_log_to_timeline(world):
    import datetime

    lic = services.licence_create(
        enterprise=world.here,
        user=world.inspector,
        data={
            "licence_type": "safety_production",
            "number": "(苏)WH安许证字[E001]",
            "issued_on": datetime.date(2024, 1, 1),
            "expires_on": datetime.date(2027, 1, 1),
        },
    )
    services.licence_update(licence=lic, user=world.inspector, data={"expires_on": datetime.date(2028, 1, 1)})
    with pytest.raises(ValidationError):
        services.licence_update(licence=lic, user=world.inspector, data={"expires_on": datetime.date(2020, 1, 1)})
    services.licence_delete(licence=lic, user=world.inspector)
    actions = list(EnterpriseChange.objects.filter(enterprise=world.here).values_list("action", flat=True))
    assert sorted(actions) == ["licence_added", "licence_deleted", "licence_updated"]
