import io

import pytest
from PIL import Image

from regulator.choices import EnterpriseRole
from tests import factories as f


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def people(world):
    """Enterprise staff of `here` in every enterprise role, plus a user of another enterprise."""
    return {
        "officer": world.enterprise_user,
        "manager": f.enterprise_user("manager", world.here, EnterpriseRole.SAFETY_MANAGER),
        "principal": f.enterprise_user("principal", world.here, EnterpriseRole.PRINCIPAL),
        "there_user": f.enterprise_user("thereuser", world.there, EnterpriseRole.SAFETY_MANAGER),
    }


def image_bytes(fmt="JPEG", size=(64, 48), color=(200, 30, 30), **save_kwargs) -> bytes:
    mode = "RGBA" if fmt == "PNG" else "RGB"
    img = Image.new(mode, size, color)
    buf = io.BytesIO()
    img.save(buf, fmt, **save_kwargs)
    return buf.getvalue()


def upload(data: bytes, name="photo.jpg", content_type="image/jpeg"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type=content_type)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # The shared personas are created with create_user; hashing them with PBKDF2 dominates setup.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def advance(hazard, people, world, to: str):
    """Drive a hazard through the real services up to state ``to``."""
    from datetime import timedelta

    from django.utils import timezone

    from hazards import services

    major = hazard.grade == "major"
    verifier = world.inspector if major else people["manager"]
    steps = ["confirmed", "rectifying", "submitted", "closed"]
    if to == "reported":
        return hazard
    if to == "dismissed":
        return services.hazard_dismiss(hazard=hazard, user=world.inspector, reason="误报")
    for step in steps:
        if hazard.status == "reported" and step == "confirmed":
            hazard = services.hazard_confirm(hazard=hazard, user=people["manager"])
        elif step == "rectifying" and hazard.status == "confirmed":
            hazard = services.hazard_start_rectification(
                hazard=hazard,
                user=people["officer"],
                measures="更换报警器",
                funds="5000",
                responsible_person="张三",
                deadline=timezone.localdate() + timedelta(days=10),
                emergency_plan="加强巡检",
            )
        elif step == "submitted" and hazard.status == "rectifying":
            hazard = services.hazard_submit_rectification(
                hazard=hazard, user=people["officer"], note="已更换", photos=[upload(image_bytes())] if major else ()
            )
        elif step == "closed" and hazard.status == "submitted":
            hazard = services.hazard_verify(hazard=hazard, user=verifier)
        if hazard.status == to:
            return hazard
    raise AssertionError(f"could not reach {to}")


@pytest.fixture
def make_hazard(world, people):
    from hazards import services

    def make(to="reported", grade="ordinary", enterprise=None, **kwargs):
        hazard = services.hazard_report(
            enterprise=enterprise or world.here,
            user=people["officer"] if enterprise in (None, world.here) else None,
            source=kwargs.pop("source", "self_check"),
            description=kwargs.pop("description", "储罐区可燃气体报警器失效"),
            grade=grade,
            major_level=1 if grade == "major" else None,
            **kwargs,
        )
        return advance(hazard, people, world, to)

    return make


@pytest.fixture
def checklist(world):
    from hazards.models import ChecklistItem, ChecklistTemplate

    template = ChecklistTemplate.objects.create(
        name="危化品企业日常安全检查表", industry=world.here.industry.parent, cycle_days=30
    )
    ChecklistItem.objects.create(
        template=template, order=1, text="可燃气体报警器完好并定期检定", basis="GB/T 50493-2019", category="equipment"
    )
    ChecklistItem.objects.create(template=template, order=2, text="安全出口畅通", basis="GB 50016", category="fire")
    return template


@pytest.fixture(autouse=True)
def local_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "hazards"}}
    from django.core.cache import cache

    cache.clear()
