"""Photo intake: type by content, limits, metadata stripped, private storage, nothing left behind."""

import io
import os
import struct
import zlib

import pytest
from PIL import Image

from hazards import photos, services
from hazards.models import HazardPhoto
from regulator.errors import InvalidInput
from tests.hazards.conftest import image_bytes, upload


def stored_files(root):
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def png_bomb(width=20000, height=20000) -> bytes:
    """A small PNG whose header claims width x height pixels (decompresses to ~400 MB)."""
    raw = zlib.compress(b"\x00" * (width // 8 + 1) * 64, 9)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


@pytest.fixture
def hazard(make_hazard):
    return make_hazard("reported")


@pytest.mark.parametrize("fmt,ctype", [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")])
def test_accepted_formats_are_reencoded_with_thumbnail(world, people, hazard, private_media, fmt, ctype):
    [photo] = services.hazard_add_photos(
        hazard=hazard, user=people["officer"], files=[upload(image_bytes(fmt), name=f"a.{fmt.lower()}")]
    )
    assert photo.content_type == ctype and (photo.width, photo.height) == (64, 48)
    full = photos.resolve(photo.path)
    thumb = photos.resolve(photo.thumb_path)
    assert full.exists() and thumb.exists() and str(full).startswith(str(private_media))
    assert Image.open(thumb).format == "JPEG"
    assert full.name != "a." + fmt.lower()  # generated name


def test_exif_and_gps_metadata_are_stripped(world, people, hazard):
    img = Image.new("RGB", (40, 30), (10, 200, 10))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 0.0)}  # GPS IFD
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    assert b"SecretCam" in buf.getvalue()
    [photo] = services.hazard_add_photos(hazard=hazard, user=people["officer"], files=[upload(buf.getvalue())])
    data = photos.resolve(photo.path).read_bytes()
    assert b"SecretCam" not in data and b"Exif" not in data
    assert not Image.open(io.BytesIO(data)).getexif()


def test_image_with_trailing_html_is_reencoded_without_it(world, people, hazard):
    polyglot = image_bytes("JPEG") + b"<html><script>alert(document.cookie)</script></html>"
    [photo] = services.hazard_add_photos(hazard=hazard, user=people["officer"], files=[upload(polyglot)])
    data = photos.resolve(photo.path).read_bytes()
    assert b"<script" not in data and b"<html" not in data


@pytest.mark.parametrize(
    "data,name,reason",
    [
        (b"<html><script>alert(1)</script></html>", "x.jpg", "JPEG"),
        (b"GIF89a" + b"\x00" * 100, "x.gif", "JPEG"),
        (b"%PDF-1.7\n", "x.png", "JPEG"),
        (b"\xff\xd8\xff\xe0" + b"garbage" * 20, "broken.jpg", "图片"),
        (b"", "empty.jpg", "空"),
        (None, "a\x00.jpg", "文件名"),
        (None, "bad\nname.jpg", "文件名"),
    ],
)
def test_rejected_uploads_explain_why_and_leave_nothing_behind(
    world, people, hazard, private_media, data, name, reason
):
    data = image_bytes() if data is None else data
    with pytest.raises(InvalidInput) as exc:
        services.hazard_add_photos(hazard=hazard, user=people["officer"], files=[upload(data, name=name)])
    assert reason in exc.value.message
    assert stored_files(private_media) == [] and not HazardPhoto.objects.exists()


def test_oversize_upload_is_refused_before_decoding(world, people, hazard, private_media, settings):
    settings.UPLOAD_MAX_BYTES = 1000
    with pytest.raises(InvalidInput) as exc:
        services.hazard_add_photos(
            hazard=hazard, user=people["officer"], files=[upload(image_bytes(size=(400, 400)) + b"\0" * 2000)]
        )
    assert "过大" in exc.value.message
    assert stored_files(private_media) == []


@pytest.mark.parametrize("edge", [8000, 20000])  # over our limit only; over Pillow's own guard too
def test_decompression_bomb_is_refused_by_pixel_count(world, people, hazard, private_media, edge):
    bomb = png_bomb(edge, edge)
    assert len(bomb) < 100_000
    with pytest.raises(InvalidInput) as exc:
        services.hazard_add_photos(hazard=hazard, user=people["officer"], files=[upload(bomb, name="bomb.png")])
    assert "像素" in exc.value.message
    assert stored_files(private_media) == []


def test_path_traversal_in_name_cannot_escape_media_root(world, people, hazard, private_media):
    [photo] = services.hazard_add_photos(
        hazard=hazard, user=people["officer"], files=[upload(image_bytes(), name="../../../../etc/passwd.jpg")]
    )
    assert photo.original_name == "passwd.jpg"
    assert all(str(p).startswith(str(private_media)) for p in stored_files(private_media))
    with pytest.raises(FileNotFoundError):
        photos.resolve("../../etc/passwd")


def test_one_bad_photo_rejects_the_whole_batch(world, people, hazard, private_media):
    with pytest.raises(InvalidInput):
        services.hazard_add_photos(
            hazard=hazard, user=people["officer"], files=[upload(image_bytes()), upload(b"not an image", name="b.jpg")]
        )
    assert stored_files(private_media) == [] and not HazardPhoto.objects.exists()


def test_failed_report_removes_written_photos(world, people, private_media, monkeypatch):
    from hazards.models import Hazard

    def boom(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "_notify_reported", boom)
    with pytest.raises(RuntimeError):
        services.hazard_report(
            enterprise=world.here,
            user=people["officer"],
            source="self_check",
            description="d",
            photos=[upload(image_bytes())],
        )
    assert stored_files(private_media) == [] and not Hazard.objects.exists()


def test_files_are_not_world_readable(world, people, hazard):
    [photo] = services.hazard_add_photos(hazard=hazard, user=people["officer"], files=[upload(image_bytes())])
    mode = os.stat(photos.resolve(photo.path)).st_mode & 0o777
    assert mode & 0o007 == 0
