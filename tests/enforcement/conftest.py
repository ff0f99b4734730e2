from datetime import date
from types import SimpleNamespace

import pytest

from enforcement.choices import CertificationLevel
from enforcement.models import Inspection, InspectorProfile
from regulator.choices import Role
from tests import factories as f


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The project hasher is deliberately slow; these tests create many users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def make_inspector(username, region, level=CertificationLevel.JUNIOR, specialties=(), role=Role.INSPECTOR):
    user = f.user(username, role, jurisdiction=region, full_name=f"执法{username}")
    profile = InspectorProfile.objects.create(
        user=user, certification_level=level, certificate_number=f"32058{username[-3:]}"
    )
    profile.specialties.set(specialties)
    return profile


@pytest.fixture
def county(world):
    """The county of the world fixture with a section head, six inspectors and twelve enterprises."""
    chem = f.industry()  # 2614 (C > 26 > 261 > 2614)
    mech = f.industry("3411", "锅炉及辅助设备制造")
    county_region = world.regions["county"]
    head = f.user("head", Role.SECTION_HEAD, jurisdiction=county_region, full_name="科长")
    world.inspector.full_name = "张检查"
    world.inspector.phone = "13900001111"
    world.inspector.save()
    InspectorProfile.objects.create(
        user=world.inspector, certification_level=CertificationLevel.SENIOR, certificate_number="32058100"
    ).specialties.set([chem.parent.parent])  # division 26
    profiles = [InspectorProfile.objects.get(user=world.inspector)]
    levels = [
        CertificationLevel.JUNIOR,
        CertificationLevel.INTERMEDIATE,
        CertificationLevel.JUNIOR,
        CertificationLevel.SENIOR,
        CertificationLevel.JUNIOR,
    ]
    for i, level in enumerate(levels):
        profiles.append(make_inspector(f"insp{i:03d}", county_region, level, [chem if i % 2 else mech]))
    # Inspections elsewhere first, so inspection ids never coincide with enterprise ids in tests.
    for day in (1, 2, 3):
        Inspection.objects.create(enterprise=world.there, date=date(2025, 6, day), status="completed")
    enterprises = [world.here, world.here_no_park]
    for i in range(10):
        enterprises.append(
            f.enterprise(
                world.regions["township"],
                industry=chem if i % 3 else mech,
                risk_grade=["red", "yellow", "blue", ""][i % 4],
            )
        )
    return SimpleNamespace(
        world=world, head=head, profiles=profiles, enterprises=enterprises, chem=chem, mech=mech, region=county_region
    )


@pytest.fixture
def plan(county):
    from enforcement import services

    return services.plan_create(
        user=county.head,
        name="2026年第一季度双随机抽查",
        jurisdiction=county.region,
        period_start=date(2026, 1, 1),
        period_end=date(2026, 3, 31),
        items=[{"basis": "《安全生产法》第四十一条", "content": "安全风险分级管控", "method": "现场检查"}],
        strata=[{"label": "全部", "ratio": "0.5"}],
        team_size=2,
        require_specialty=False,
    )
