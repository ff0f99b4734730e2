"""The upload validator on its own: which pixel formats it keeps and how, and what it refuses."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from regulator.uploads import UploadRejected, validate_image


def encoded(img: Image.Image, fmt: str, **kwargs) -> SimpleUploadedFile:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return SimpleUploadedFile(f"x.{fmt.lower()}", buf.getvalue())


def decoded(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize(
    "mode,fmt,stored_mode",
    [
        ("CMYK", "JPEG", "RGB"),
        ("L", "JPEG", "L"),
        ("P", "PNG", "RGB"),
        ("1", "PNG", "RGB"),
        ("LA", "PNG", "LA"),
        ("RGBA", "WEBP", "RGBA"),
    ],
)
def test_every_pixel_mode_is_stored_in_a_mode_its_format_writes(mode, fmt, stored_mode):
    clean = validate_image(encoded(Image.new(mode, (20, 10)), fmt))
    out = decoded(clean.data)
    assert out.format == clean.fmt == fmt and out.mode == stored_mode and out.size == (20, 10)


def test_a_palette_png_keeps_its_transparency_as_alpha():
    img = Image.new("P", (8, 8), 0)
    clean = validate_image(encoded(img, "PNG", transparency=0))
    assert decoded(clean.data).mode == "RGBA"


def test_the_camera_orientation_is_applied_then_dropped():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    clean = validate_image(encoded(Image.new("RGB", (40, 20)), "JPEG", exif=exif.tobytes()))
    assert (clean.width, clean.height) == (20, 40) and not decoded(clean.data).getexif()


def test_a_large_jpeg_is_scaled_while_decoding_and_bounded_to_the_edge(settings):
    settings.UPLOAD_IMAGE_MAX_EDGE = 100
    clean = validate_image(encoded(Image.new("RGB", (800, 600), (9, 9, 9)), "JPEG"))
    assert max(clean.width, clean.height) == 100 and decoded(clean.data).size == (100, 75)


def test_animations_are_refused():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:])
    with pytest.raises(UploadRejected, match="动图"):
        validate_image(SimpleUploadedFile("a.png", buf.getvalue()))


def test_a_truncated_image_is_refused_not_a_500():
    buf = io.BytesIO()
    Image.effect_noise((200, 200), 50).convert("RGB").save(buf, "JPEG")
    with pytest.raises(UploadRejected, match="损坏"):
        validate_image(SimpleUploadedFile("t.jpg", buf.getvalue()[:600]))


def test_far_over_the_cap_pillow_guard_answers_with_our_message():
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)  # 900 Mpx: Pillow refuses inside open()
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    with pytest.raises(UploadRejected, match="像素过多") as exc:
        validate_image(SimpleUploadedFile("b.png", bomb), field="photos")
    assert exc.value.details == {"field": "photos"}


@pytest.mark.parametrize("name", ["a\x00.jpg", "bad\nname.jpg", "del\x7f.jpg"])
def test_control_characters_in_the_name_are_refused(name):
    with pytest.raises(UploadRejected, match="文件名"):
        validate_image(SimpleUploadedFile(name, b"\xff\xd8\xff"))


def test_the_client_name_is_kept_for_display_only_without_its_path():
    upload = encoded(Image.new("RGB", (4, 4)), "PNG")
    upload.name = "..\\..\\现场照片.html"
    clean = validate_image(upload)
    assert clean.original_name == "现场照片.html" and clean.stored_name("x").endswith(".png")


def test_a_multi_picture_jpeg_from_a_phone_is_kept_as_its_first_frame_in_plain_jpeg():
    frames = [Image.new("RGB", (16, 12), (250, 0, 0)), Image.new("RGB", (16, 12), (0, 0, 250))]
    buf = io.BytesIO()
    frames[0].save(buf, "MPO", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(buf.getvalue())).format == "MPO"
    clean = validate_image(SimpleUploadedFile("stereo.jpg", buf.getvalue()))
    out = decoded(clean.data)
    assert clean.fmt == out.format == "JPEG" and clean.extension == "jpg" and out.getpixel((8, 6))[0] > 200
