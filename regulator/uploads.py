"""The one door for every uploaded file and every stored or generated file we send back.

Uploads: only raster photos are accepted. Each is opened with Pillow, its pixel count is checked
from the header before anything is decoded, it is decoded, stripped of metadata and re-encoded; the
stored name and extension come from the decoded format, never from the client. SVG, PDF, PSD, EPS,
HTML, scripts and polyglots are refused with a reason (``UploadRejected``, a 400 with the field).

Downloads: ``file_response`` (stored files) and ``harden_download`` (generated PDF/XLSX/CSV/JSON)
send ``attachment`` (an image inline only with the type we re-encoded it to), ``nosniff``, a sandbox
CSP and ``Cache-Control: private, no-store``, so nothing we hand out runs as a page on our origin or
stays in a shared cache.
"""

from __future__ import annotations

import io
import math
import uuid
import warnings
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import quote

from django.conf import settings
from django.core import checks
from django.http import FileResponse
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from regulator.errors import InvalidInput

# Decoded format -> (stored format, content type, extension). MPO is a JPEG with extra frames
# (some phone cameras); its first frame is kept, as a plain JPEG.
_FORMATS = {
    "JPEG": ("JPEG", "image/jpeg", "jpg"),
    "MPO": ("JPEG", "image/jpeg", "jpg"),
    "PNG": ("PNG", "image/png", "png"),
    "WEBP": ("WEBP", "image/webp", "webp"),
}
IMAGE_CONTENT_TYPES = {ext: ctype for _fmt, ctype, ext in _FORMATS.values()}
# Pillow tries only these plugins: a GIF, TIFF, PSD, EPS (Ghostscript!), ICO or SVG never reaches a decoder.
_OPENERS = ["JPEG", "PNG", "WEBP"]
# Pixel modes each encoder writes as is; anything else is converted first.
_MODES = {"JPEG": {"L", "RGB"}, "PNG": {"L", "LA", "RGB", "RGBA"}, "WEBP": {"RGB", "RGBA"}}

DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, no-store",
}


def configure_pillow() -> None:
    """Make Pillow's own bomb guard agree with ours (it raises at twice MAX_IMAGE_PIXELS).

    We refuse anything over UPLOAD_MAX_PIXELS ourselves, right after reading the header, so
    Pillow's warning between 1x and 2x says nothing we do not already act on. Called at start-up
    (RegulatorConfig.ready) and by each validation, so a changed setting applies at once."""
    Image.MAX_IMAGE_PIXELS = settings.UPLOAD_MAX_PIXELS
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class UploadRejected(InvalidInput):
    code = "upload_rejected"


@dataclass
class CleanImage:
    """A re-encoded upload: only pixels, in the format it decoded as."""

    data: bytes
    fmt: str  # JPEG, PNG or WEBP
    width: int
    height: int
    original_name: str
    image: Image.Image  # the decoded pixels, for thumbnails; not to be stored as is

    @property
    def content_type(self) -> str:
        return _FORMATS[self.fmt][1]

    @property
    def extension(self) -> str:
        return _FORMATS[self.fmt][2]

    def stored_name(self, folder: str = "") -> str:
        """A fresh random name with the extension of the decoded format."""
        name = f"{uuid.uuid4().hex}.{self.extension}"
        return f"{folder.strip('/')}/{name}" if folder else name


def clean_name(name: str | None, *, field: str | None = None) -> str:
    """The client's file name, only for display: no control characters, no path."""
    name = name or ""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise UploadRejected(_("文件名包含非法字符"), field=field)
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if name in (".", ".."):
        name = ""
    return name[:120]


def _read_bounded(upload, field: str | None) -> bytes:
    limit = settings.UPLOAD_MAX_BYTES
    too_big = _("文件过大：最大 %(mb)s MB") % {"mb": round(limit / (1024 * 1024), 1)}
    size = getattr(upload, "size", None)
    if size is not None and size > limit:
        raise UploadRejected(too_big, field=field)
    if hasattr(upload, "seek"):
        try:
            upload.seek(0)
        except (OSError, ValueError):
            pass
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise UploadRejected(too_big, field=field)
    if not data:
        raise UploadRejected(_("文件为空"), field=field)
    return data


def _refuse_format(field):
    return UploadRejected(
        _("只接受 JPEG、PNG 或 WebP 格式的图片（不接受 SVG、PDF、PSD、EPS、HTML、脚本等文件）"), field=field
    )


def validate_image(upload, *, field: str | None = None, max_edge: int | None = None) -> CleanImage:
    """Validate, decode and re-encode one uploaded image; raises UploadRejected with the reason.

    ``field`` names the form/API field in the error; ``max_edge`` (default UPLOAD_IMAGE_MAX_EDGE)
    bounds the stored image's longer side."""
    original_name = clean_name(getattr(upload, "name", ""), field=field)
    data = _read_bounded(upload, field)
    max_pixels = settings.UPLOAD_MAX_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    too_many = _("图片像素过多（%(w)s×%(h)s），最多 %(max)s 万像素")
    try:
        # Reads the header only: the size is known before a single pixel is decoded.
        image = Image.open(io.BytesIO(data), formats=_OPENERS)
    except Image.DecompressionBombError as exc:  # Pillow's guard (2x our limit) fired inside open()
        raise UploadRejected(
            _("图片像素过多，最多 %(max)s 万像素") % {"max": max_pixels // 10_000}, field=field
        ) from exc
    except UnidentifiedImageError as exc:
        raise _refuse_format(field) from exc
    except Exception as exc:  # a truncated or hostile header: Pillow raises many kinds
        raise UploadRejected(_("图片文件已损坏或无法识别"), field=field) from exc
    if image.format not in _FORMATS:
        raise _refuse_format(field)
    width, height = image.size
    if width < 1 or height < 1 or width * height > max_pixels:
        raise UploadRejected(too_many % {"w": width, "h": height, "max": max_pixels // 10_000}, field=field)
    if image.format != "MPO" and getattr(image, "n_frames", 1) > 1:
        raise UploadRejected(_("不接受动图"), field=field)
    fmt = _FORMATS[image.format][0]
    edge = max_edge or settings.UPLOAD_IMAGE_MAX_EDGE
    try:
        if fmt == "JPEG" and max(width, height) >= 2 * edge:
            # The JPEG decoder can scale by 1/2, 1/4, 1/8 while decoding: far less memory.
            scale = max(width, height) / edge
            image.draft(None, (math.ceil(width / scale), math.ceil(height / scale)))
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        image = _to_storable_mode(image, fmt)
        # Only pixels are kept: EXIF (GPS, camera), ICC, XMP, text chunks, comments and anything
        # appended after the image (an HTML or script tail of a polyglot) are not written back.
        image.info = {}
        if max(image.size) > edge:
            image.thumbnail((edge, edge), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        save(image, out, fmt)
    except Exception as exc:  # truncated data, bad chunks, unsupported modes: never a 500
        raise UploadRejected(_("图片文件已损坏或无法识别"), field=field) from exc
    return CleanImage(
        data=out.getvalue(),
        fmt=fmt,
        width=image.size[0],
        height=image.size[1],
        original_name=original_name,
        image=image,
    )


def _to_storable_mode(image: Image.Image, fmt: str) -> Image.Image:
    if image.mode in _MODES[fmt]:
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    # CMYK/YCbCr JPEGs, palette and 1-bit PNGs; a mode Pillow cannot convert is refused by the caller.
    return image.convert("RGBA" if has_alpha and fmt != "JPEG" else "RGB")


def save(image: Image.Image, fp, fmt: str) -> None:
    """Encode pixels only (no metadata is passed to the encoder)."""
    if fmt == "JPEG":
        image.save(fp, "JPEG", quality=85)
    elif fmt == "PNG":
        image.save(fp, "PNG", optimize=True)
    else:
        image.save(fp, "WEBP", quality=85)


# --- serving ------------------------------------------------------------------------------------


def harden_download(response, *, filename: str | None = None, ascii_fallback: str | None = None):
    """The headers every file we send carries; ``filename`` also sets an attachment disposition."""
    if filename is not None:
        response["Content-Disposition"] = attachment(filename, ascii_fallback)
    for name, value in DOWNLOAD_HEADERS.items():
        response[name] = value
    return response


def attachment(filename: str, ascii_fallback: str | None = None, *, disposition: str = "attachment") -> str:
    """``attachment`` with an ASCII fallback and the real (Chinese) name per RFC 6266 / RFC 5987."""
    fallback = ascii_fallback or "".join(ch if 32 < ord(ch) < 127 and ch not in '"\\;' else "_" for ch in filename)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def file_response(fh, *, filename: str, content_type: str | None = None):
    """Stream a stored file. An image is shown inline only when its name carries one of our
    re-encoded extensions (so its type is the one we wrote); anything else is a download of
    ``application/octet-stream`` whatever it claims to be (files stored before the validator)."""
    ext = PurePosixPath(filename).suffix.lower().lstrip(".")
    image_type = IMAGE_CONTENT_TYPES.get(ext)
    if image_type is not None and content_type in (None, image_type):
        response = FileResponse(fh, content_type=image_type)
        response["Content-Disposition"] = attachment(filename, disposition="inline")
    else:
        safe_type = content_type if content_type in _DOWNLOAD_TYPES else "application/octet-stream"
        response = FileResponse(fh, content_type=safe_type)
        response["Content-Disposition"] = attachment(filename)
    return harden_download(response)


# Types of the files we generate ourselves (documents, reports, exports); never an HTML or SVG.
_DOWNLOAD_TYPES = {
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "text/csv; charset=utf-8",
    "application/json; charset=utf-8",
}


# --- deployment check ---------------------------------------------------------------------------


@checks.register(checks.Tags.security)
def check_private_media(app_configs=None, **kwargs):
    """Uploads live under MEDIA_ROOT and are served only by views: no URL, no static root over them."""
    from pathlib import Path

    problems = []
    for name in ("UPLOAD_MAX_BYTES", "UPLOAD_MAX_PIXELS", "UPLOAD_IMAGE_MAX_EDGE"):
        if getattr(settings, name) < 1:
            problems.append(checks.Error(f"{name} must be a positive integer.", id="regulator.E103"))
    if settings.MEDIA_URL:
        problems.append(
            checks.Error(
                "MEDIA_URL must be None: uploads are served only by permission-checking views.", id="regulator.E101"
            )
        )
    media = Path(settings.MEDIA_ROOT).resolve()
    dirs = [d[1] if isinstance(d, tuple | list) else d for d in settings.STATICFILES_DIRS]
    static_dirs = [settings.STATIC_ROOT, *dirs]
    for static in static_dirs:
        if static is None:
            continue
        static = Path(static).resolve()
        if media == static or static in media.parents or media in static.parents:
            problems.append(
                checks.Error(
                    f"MEDIA_ROOT ({media}) overlaps a static directory ({static}) that is served without checks.",
                    id="regulator.E102",
                )
            )
    return problems
