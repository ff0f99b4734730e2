"""Shared test data: a small region tree with two counties, parks, enterprises and personas.

Personas (see CONVENTIONS.md): an inspector of this county, one of the next county, a park
manager, an enterprise user, an auditor, and anonymous.
"""

from __future__ import annotations

import itertools

from guardian.shortcuts import assign_perm

from enterprises import uscc
from enterprises.models import Enterprise, Industry
from regulator.choices import EnterpriseRole, RegionLevel, Role
from regulator.models import Park, Region, User

PASSWORD = "Demo-Passw0rd!"
_counter = itertools.count(1)


def region(code: str, name: str, level: int, parent: Region | None = None) -> Region:
    obj, _ = Region.objects.get_or_create(code=code, defaults={"name": name, "level": level, "parent": parent})
    return obj


def region_tree() -> dict[str, Region]:
    province = region("320000", "江苏省", RegionLevel.PROVINCE)
    city = region("320500", "苏州市", RegionLevel.CITY, province)
    county = region("320581", "常熟市", RegionLevel.COUNTY, city)
    township = region("320581001", "虞山街道", RegionLevel.TOWNSHIP, county)
    other_county = region("320582", "张家港市", RegionLevel.COUNTY, city)
    return {"province": province, "city": city, "county": county, "township": township, "other_county": other_county}


def industry(code: str = "2614", name: str = "有机化学原料制造") -> Industry:
    section, _ = Industry.objects.get_or_create(code="C", defaults={"name": "制造业", "level": 1})
    division, _ = Industry.objects.get_or_create(
        code=code[:2], defaults={"name": "化学原料和化学制品制造业", "level": 2, "parent": section}
    )
    group, _ = Industry.objects.get_or_create(
        code=code[:3], defaults={"name": "基础化学原料制造", "level": 3, "parent": division}
    )
    obj, _ = Industry.objects.get_or_create(
        code=code, defaults={"name": name, "level": 4, "parent": group, "high_risk_sector": "chemicals"}
    )
    return obj


def park(region: Region, code: str = "P-0001", name: str = "常熟新材料产业园") -> Park:
    obj, _ = Park.objects.get_or_create(code=code, defaults={"name": name, "region": region})
    return obj


def make_uscc(n: int | None = None) -> str:
    n = next(_counter) if n is None else n
    return uscc.make(f"91320581{n:09d}")


def enterprise(region: Region, *, park: Park | None = None, name: str | None = None, **extra) -> Enterprise:
    n = next(_counter)
    fields = {
        "uscc": make_uscc(n),
        "name": name or f"测试化工有限公司{n}",
        "region": region,
        "park": park,
        "industry": extra.pop("industry", None) or industry(),
    }
    fields.update(extra)
    return Enterprise.objects.create(**fields)


def user(username: str, role: str, **extra) -> User:
    obj = User.objects.create_user(username=username, password=PASSWORD, role=role, **extra)
    return obj


def enterprise_user(username: str, ent: Enterprise, enterprise_role: str = EnterpriseRole.SAFETY_OFFICER) -> User:
    obj = user(username, Role.ENTERPRISE_USER, enterprise_role=enterprise_role)
    assign_perm("enterprises.view_enterprise", obj, ent)
    return obj
