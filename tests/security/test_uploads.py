"""Stored XSS through uploads (issue 16, High 1) and what every served file carries.

Every upload endpoint (hazard photos and inspection photos, API and HTML form) refuses anything
that is not a decodable JPEG/PNG/WebP, with the reason on the field; what is kept is re-encoded,
named from its decoded format and stripped of metadata; a decompression bomb is refused from its
header, before a pixel is decoded. Every stored or generated file is served as an attachment (an
image inline only with our type), with nosniff, a sandbox CSP and ``private, no-store``; one test
does it all over real HTTP against a live server.
"""

from __future__ import annotations

import io
import json
import secrets
import struct
import uuid
import zlib
from datetime import date
from http.cookiejar import CookieJar
from urllib import error, request

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from enforcement import services as enforcement_services
from enforcement.models import Document, Inspection, InspectionPhoto, InspectionTeamMember
from hazards import photos as hazard_photos
from hazards import services as hazard_services
from hazards.models import HazardPhoto
from regulator.errors import InvalidInput
from tests.alerts import e2e_support

pytestmark = pytest.mark.django_db
processes = e2e_support.processes  # the real-process fixture (skips without PostgreSQL and Redis)

SCRIPT = b"<html><body><script>alert(document.cookie)</script></body></html>"
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, no-store",
}


def image_bytes(fmt="PNG", size=(32, 24), **save_kwargs) -> bytes:
    img = Image.new("RGB", size, (200, 30, 30))
    buf = io.BytesIO()
    img.save(buf, fmt, **save_kwargs)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's shape)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# name, declared type, content: none of these may be stored.
HOSTILE = {
    "js": ("evil.js", "application/javascript", b"alert(document.cookie);"),
    "html": ("evil.html", "text/html", SCRIPT),
    "html_named_jpg": ("photo.jpg", "image/jpeg", SCRIPT),
    "svg": (
        "logo.svg",
        "image/svg+xml",
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.domain)"><rect width="1"/></svg>',
    ),
    "pdf": ("report.pdf", "application/pdf", b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<<>>\n%%EOF\n"),
    "psd": ("layers.psd", "image/vnd.adobe.photoshop", b"8BPS\x00\x01" + b"\x00" * 20),
    "eps": ("drawing.eps", "application/postscript", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 1 1\n"),
    "gif_polyglot": ("anim.gif", "image/gif", image_bytes("GIF") + SCRIPT),
    "jpeg_header_polyglot": ("site.jpg", "image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + SCRIPT),
}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings.MEDIA_ROOT


def stored_files(root):
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def hazard(world):
    return hazard_services.hazard_report(
        enterprise=world.here, user=world.enterprise_user, source="self_check", description="储罐区报警器失效"
    )


@pytest.fixture
def inspection(world):
    inspection = Inspection.objects.create(enterprise=world.here, date=date(2026, 6, 1))
    InspectionTeamMember.objects.create(inspection=inspection, user=world.inspector)
    return inspection


def _post(world, hazard, inspection, endpoint: str, upload):
    """Upload one file through one of the four doors; returns the response."""
    client = Client()
    if endpoint.startswith("hazard"):
        client.force_login(world.enterprise_user)
        url = f"/api/v1/hazards/{hazard.pk}/photos/" if endpoint == "hazard_api" else f"/hazards/{hazard.pk}/photos/"
        return client.post(url, {"photos": [upload], "kind": "before"})
    client.force_login(world.inspector)
    if endpoint == "inspection_api":
        return client.post(f"/api/v1/enforcement/inspections/{inspection.pk}/photos/", {"image": upload})
    return client.post(f"/enforcement/inspections/{inspection.pk}/photos/", {"image": upload, "caption": "现场"})


ENDPOINTS = ["hazard_api", "hazard_form", "inspection_api", "inspection_form"]
FIELD = {"hazard_api": "photos", "hazard_form": "photos", "inspection_api": "image", "inspection_form": "image"}


def _assert_refused_on_field(response, endpoint):
    assert response.status_code == 400, response.status_code
    if endpoint.endswith("_api"):
        body = response.json()
        assert body["field"] == FIELD[endpoint] and body["code"] == "upload_rejected"
        assert "JPEG" in body["detail"] or "损坏" in body["detail"]
    else:
        errors = response.context["upload_form" if endpoint == "hazard_form" else "photo_form"].errors
        assert FIELD[endpoint] in errors, errors
        message = " ".join(errors[FIELD[endpoint]])
        assert "JPEG" in message or "损坏" in message


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("kind", list(HOSTILE))
def test_scripts_markup_documents_and_polyglots_are_refused_at_every_upload_door(
    world, hazard, inspection, media, endpoint, kind
):
    name, ctype, data = HOSTILE[kind]
    response = _post(world, hazard, inspection, endpoint, SimpleUploadedFile(name, data, content_type=ctype))
    _assert_refused_on_field(response, endpoint)
    assert not HazardPhoto.objects.exists() and not InspectionPhoto.objects.exists()
    assert stored_files(media) == []


def test_the_stored_name_and_extension_come_from_the_decoded_format(world, hazard, inspection, media):
    # A PNG that calls itself an HTML page, a JPEG that calls itself a PNG: the decoder decides.
    for endpoint in ENDPOINTS:
        for data, client_name, ext in ((image_bytes("PNG"), "x.html", ".png"), (image_bytes("JPEG"), "y.png", ".jpg")):
            response = _post(world, hazard, inspection, endpoint, SimpleUploadedFile(client_name, data, "text/html"))
            assert response.status_code in (201, 302), (endpoint, response.status_code)
    inspection_names = [p.image.name for p in InspectionPhoto.objects.order_by("pk")]
    hazard_names = [p.path for p in HazardPhoto.objects.order_by("pk")]
    for names in (inspection_names, hazard_names):
        assert [n[-4:] for n in names] == [".png", ".jpg", ".png", ".jpg"], names
        assert not any("x.html" in n or "y.png" in n for n in names)
        assert len({n.rsplit("/", 1)[-1] for n in names}) == 4  # generated, unique
    assert all(p.suffix in (".png", ".jpg") for p in stored_files(media))


def test_trailing_markup_of_a_valid_image_is_not_stored(world, inspection, media):
    polyglot = image_bytes("PNG") + SCRIPT
    photo = enforcement_services.inspection_add_photo(
        inspection=inspection, user=world.inspector, upload=SimpleUploadedFile("p.png", polyglot)
    )
    with photo.image.open("rb") as fh:
        data = fh.read()
    assert b"<script" not in data and Image.open(io.BytesIO(data)).format == "PNG"


def test_exif_gps_and_comments_are_stripped(world, hazard, inspection):
    img = Image.new("RGB", (40, 30), (10, 200, 10))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {1: "N", 2: (31.0, 39.0, 0.0)}  # GPS IFD
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes(), comment=b"inspector home address")
    original = buf.getvalue()
    assert b"SecretCam" in original and b"home address" in original
    photo = enforcement_services.inspection_add_photo(
        inspection=inspection, user=world.inspector, upload=SimpleUploadedFile("gps.jpg", original)
    )
    [hphoto] = hazard_services.hazard_add_photos(
        hazard=hazard, user=world.enterprise_user, files=[SimpleUploadedFile("gps.jpg", original)]
    )
    with photo.image.open("rb") as fh:
        stored = [fh.read(), hazard_photos.resolve(hphoto.path).read_bytes()]
    for data in stored:
        assert b"SecretCam" not in data and b"home address" not in data and b"Exif" not in data
        assert not Image.open(io.BytesIO(data)).getexif()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_decompression_bomb_is_refused_from_its_header_before_decoding(
    world, hazard, inspection, media, monkeypatch, endpoint
):
    bomb = png_header_only(6000, 5000)  # 30 Mpx claimed in a file of a few hundred bytes
    assert len(bomb) < 1000

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", no_decoding)
    response = _post(world, hazard, inspection, endpoint, SimpleUploadedFile("bomb.png", bomb, "image/png"))
    assert response.status_code == 400
    text = response.json()["detail"] if endpoint.endswith("_api") else response.content.decode()
    assert "像素过多" in text and "2400" in text
    assert stored_files(media) == []


def test_the_pixel_cap_is_lower_than_before_and_pillow_agrees(settings):
    assert settings.UPLOAD_MAX_PIXELS <= 24_000_000
    assert Image.MAX_IMAGE_PIXELS == settings.UPLOAD_MAX_PIXELS
    from regulator import uploads

    with pytest.raises(InvalidInput) as exc:
        uploads.validate_image(SimpleUploadedFile("big.jpg", png_header_only(5000, 5000)), field="image")
    assert exc.value.details["field"] == "image"


def _assert_download_headers(response, *, disposition="attachment"):
    for name, value in HEADERS.items():
        assert response[name] == value, (name, response.get(name))
    assert response["Content-Disposition"].startswith(disposition + ";"), response["Content-Disposition"]


def test_served_photos_carry_our_type_and_the_download_headers(world, hazard, inspection):
    enforcement_services.inspection_add_photo(
        inspection=inspection, user=world.inspector, upload=SimpleUploadedFile("a.html", image_bytes("PNG"))
    )
    photo = InspectionPhoto.objects.get()
    [hphoto] = hazard_services.hazard_add_photos(
        hazard=hazard, user=world.enterprise_user, files=[SimpleUploadedFile("b.html", image_bytes("JPEG"))]
    )
    inspector, officer = Client(), Client()
    inspector.force_login(world.inspector)
    officer.force_login(world.enterprise_user)
    for client, url, ctype in (
        (inspector, f"/enforcement/inspections/{inspection.pk}/photos/{photo.pk}/", "image/png"),
        (inspector, f"/api/v1/enforcement/inspections/{inspection.pk}/photos/{photo.pk}/", "image/png"),
        (officer, f"/hazards/photos/{hphoto.uid}/", "image/jpeg"),
        (officer, f"/hazards/photos/{hphoto.uid}/thumb/", "image/jpeg"),
        (officer, f"/api/v1/hazards/{hazard.pk}/photos/{hphoto.uid}/", "image/jpeg"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Type"] == ctype, url
        _assert_download_headers(response, disposition="inline")


def test_a_file_stored_before_the_validator_is_only_ever_a_download(world, inspection, media):
    """An .html 'photo' kept by the old magic-byte check: served as an opaque attachment."""
    rel = f"enforcement/photos/{inspection.pk}/{uuid.uuid4().hex}.html"
    (media / rel).parent.mkdir(parents=True)
    (media / rel).write_bytes(b"\x89PNG\r\n\x1a\n" + SCRIPT)
    photo = InspectionPhoto.objects.create(inspection=inspection, image=rel, uploaded_by=world.inspector)
    client = Client()
    client.force_login(world.inspector)
    response = client.get(f"/enforcement/inspections/{inspection.pk}/photos/{photo.pk}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    _assert_download_headers(response)


def test_documents_reports_and_exports_are_private_no_store_downloads(world, inspection):
    doc = Document(
        inspection=inspection,
        doc_type="onsite_record",
        bureau=world.regions["county"],
        year=2026,
        seq=1,
        number="常应急现记〔2026〕1号",
        sha3="0" * 64,
    )
    doc.pdf.save("d.pdf", ContentFile(b"%PDF-1.4\n%%EOF\n"), save=False)
    doc.save()
    client = Client()
    client.force_login(world.inspector)
    for url, ctype in (
        (f"/enforcement/documents/{doc.pk}/pdf/", "application/pdf"),
        (f"/api/v1/enforcement/documents/{doc.pk}/pdf/", "application/pdf"),
        ("/enterprises/export.csv", "text/csv; charset=utf-8"),
        ("/enterprises/export.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Type"] == ctype, url
        _assert_download_headers(response)


def test_media_is_never_reachable_by_url(settings, world, inspection):
    from django.core import checks

    from regulator import uploads

    assert settings.MEDIA_URL is None
    client = Client()
    client.force_login(world.inspector)
    photo = enforcement_services.inspection_add_photo(
        inspection=inspection, user=world.inspector, upload=SimpleUploadedFile("p.png", image_bytes("PNG"))
    )
    for probe in ("/media/", "/private-media/", "/static/", "/static/../private-media/", "/static/%2e%2e/"):
        assert client.get(probe + photo.image.name).status_code == 404, probe
    assert not [e for e in checks.run_checks(tags=[checks.Tags.security]) if e.id.startswith("regulator.E10")]
    settings.MEDIA_URL = "/media/"
    assert "regulator.E101" in [e.id for e in uploads.check_private_media()]
    settings.MEDIA_URL = None
    settings.MEDIA_ROOT = settings.STATIC_ROOT / "uploads"
    assert "regulator.E102" in [e.id for e in uploads.check_private_media()]


# --- over real HTTP ------------------------------------------------------------------------------


@pytest.fixture
def server(live_server):
    """The live server with MEDIA_URL = None: Django's test media handler must not see a bytes URL."""
    from urllib.parse import urlparse

    media = getattr(live_server.thread.httpd.get_app(), "application", None)
    if media is not None and isinstance(getattr(media, "base_url", None), tuple) and media.base_url.path == b"":
        media.base_url = urlparse("/__no_media__/")
    return live_server


class Browser:
    """urllib with a session cookie and a CSRF token, as a logged-in browser would send them."""

    def __init__(self, base: str, user, session: str | None = None):
        self.base = self.origin = base
        self.extra: dict[str, str] = {}
        if session is None:
            client = Client()
            client.force_login(user)
            session = client.cookies["sessionid"].value
        self.csrf = secrets.token_hex(16)  # a 32-character secret is a valid unmasked token
        self.cookie = f"sessionid={session}; csrftoken={self.csrf}"
        self.opener = request.build_opener(request.HTTPCookieProcessor(CookieJar()))

    def send(self, method, path, body=None, headers=None):
        req = request.Request(self.base + path, data=body, method=method)
        req.add_header("Cookie", self.cookie)
        req.add_header("X-CSRFToken", self.csrf)
        req.add_header("Referer", self.origin + "/")
        for k, v in {**self.extra, **(headers or {})}.items():
            req.add_header(k, v)
        try:
            with self.opener.open(req, timeout=30) as resp:
                return resp.status, resp.headers, resp.read()
        except error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def upload(self, path, field, name, ctype, data, extra=None):
        boundary = uuid.uuid4().hex
        parts = []
        for key, value in (extra or {}).items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode())
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            f"Content-Type: {ctype}\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.send("POST", path, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_over_http_an_html_photo_is_refused_and_what_is_served_cannot_run(world, server):
    inspection = Inspection.objects.create(enterprise=world.here, date=date(2026, 6, 1))
    InspectionTeamMember.objects.create(inspection=inspection, user=world.inspector)
    browser = Browser(server.url, world.inspector)
    api = f"/api/v1/enforcement/inspections/{inspection.pk}/photos/"

    status, _headers, body = browser.upload(api, "image", "xss.html", "text/html", SCRIPT)
    assert status == 400 and json.loads(body)["field"] == "image"
    status, _headers, body = browser.upload(
        f"/enforcement/inspections/{inspection.pk}/photos/", "image", "xss.js", "application/javascript", SCRIPT
    )
    assert status == 400 and "JPEG" in body.decode()
    assert not InspectionPhoto.objects.exists()

    # A real image with a script tail, named .html: kept as a re-encoded PNG, served as one.
    status, _headers, body = browser.upload(api, "image", "xss.html", "text/html", image_bytes("PNG") + SCRIPT)
    assert status == 201, body
    url = json.loads(body)["url"]
    assert url.endswith("/") and ".html" not in InspectionPhoto.objects.get().image.name
    status, headers, served = browser.send("GET", url)
    assert status == 200
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Disposition"].startswith("inline;") and ".png" in headers["Content-Disposition"]
    for name, value in HEADERS.items():
        assert headers[name] == value, name
    assert b"<script" not in served and Image.open(io.BytesIO(served)).format == "PNG"
    # And no URL outside the permission-checking view reaches the stored file (what a static
    # handler makes of "/static/../" is checked through the app's own stack in the test above).
    stored = InspectionPhoto.objects.get().image.name
    for probe in (f"/media/{stored}", f"/private-media/{stored}", f"/static/{stored}"):
        assert browser.send("GET", probe)[0] == 404, probe


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_production_daphne_refuses_an_html_photo_and_serves_ours_with_the_download_headers(world, processes):
    """PRODUCTION=1 Daphne (no DEBUG, WhiteNoise with the manifest storage), as behind the proxy."""
    import sys
    from pathlib import Path

    from regulator.crypto import _demo_key_spec
    from tests.alerts.e2e_support import _port_open, free_port, session_key, wait_for

    start, _logdir = processes
    port = free_port()
    start(
        "daphne",
        "env",
        "PRODUCTION=1",
        f"FIELD_KEYS={_demo_key_spec()}",  # the keys this test process encrypted the personas with
        f"SM2_PRIVATE_KEY=0{secrets.token_hex(32)[1:]}",
        str(Path(sys.executable).parent / "daphne"),
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        "regulator.asgi:application",
    )
    wait_for(lambda: _port_open("127.0.0.1", port), 60, "Daphne to listen")
    inspection = Inspection.objects.create(enterprise=world.here, date=date(2026, 6, 1))
    InspectionTeamMember.objects.create(inspection=inspection, user=world.inspector)
    browser = Browser(f"http://127.0.0.1:{port}", world.inspector, session=session_key(world.inspector))
    browser.extra = {"X-Forwarded-Proto": "https"}  # the proxy terminated TLS
    browser.origin = f"https://127.0.0.1:{port}"
    api = f"/api/v1/enforcement/inspections/{inspection.pk}/photos/"

    for name, ctype in (("xss.html", "text/html"), ("xss.js", "application/javascript"), ("x.svg", "image/svg+xml")):
        status, _headers, body = browser.upload(api, "image", name, ctype, SCRIPT)
        assert status == 400 and json.loads(body)["field"] == "image", (name, status, body[:300])
    assert not InspectionPhoto.objects.exists()
    status, _headers, body = browser.upload(api, "image", "xss.html", "text/html", image_bytes("JPEG") + SCRIPT)
    assert status == 201, body[:300]
    status, headers, served = browser.send("GET", json.loads(body)["url"])
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert "max-age" in headers["Strict-Transport-Security"]  # it is the production configuration
    for name, value in HEADERS.items():
        assert headers[name] == value, name
    assert b"<script" not in served
