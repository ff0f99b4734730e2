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
