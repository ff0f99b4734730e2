"""Hazard photo intake: sniff the type by content, bound size and pixels, re-encode without metadata,
make a thumbnail, and store under MEDIA_ROOT with generated names (never served by a public URL)."""

from __future__ import annotations

import io
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from regulator.errors import InvalidInput

# Magic numbers of the accepted formats; anything else is refused before Pillow sees it.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
)
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


class PhotoRejected(InvalidInput):
    code = "photo_rejected"


@dataclass
class ProcessedPhoto:
    data: bytes
    thumb: bytes
    fmt: str
    width: int
    height: int
    original_name: str

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.fmt]


def sniff(head: bytes) -> str | None:
    for signature, fmt in _SIGNATURES:
        if head.startswith(signature):
            return fmt
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def clean_name(name: str | None) -> str:
    """The client's file name, only for display; refuses control characters, drops any path."""
    name = name or ""
    if any(ord(ch) < 32 for ch in name):
        raise PhotoRejected(_("文件名包含非法字符"))
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if name in (".", ".."):
        name = ""
    return name[:120]


def _read_bounded(upload) -> bytes:
    limit = settings.HAZARD_PHOTO_MAX_BYTES
    size = getattr(upload, "size", None)
    if size is not None and size > limit:
        raise PhotoRejected(_("图片过大：最大 %(mb)s MB") % {"mb": limit // (1024 * 1024)})
    if hasattr(upload, "seek"):
        try:
            upload.seek(0)
        except (OSError, ValueError):
            pass
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise PhotoRejected(_("图片过大：最大 %(mb)s MB") % {"mb": limit // (1024 * 1024)})
    if not data:
        raise PhotoRejected(_("文件为空"))
    return data


def process(upload) -> ProcessedPhoto:
    """Validate and re-encode one upload; raises PhotoRejected with the reason."""
    original_name = clean_name(getattr(upload, "name", ""))
    data = _read_bounded(upload)
    fmt = sniff(data[:16])
    if fmt is None:
        raise PhotoRejected(_("只接受 JPEG、PNG 或 WebP 格式的图片"))
    try:
        image = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:  # Pillow's own guard fired first (far over our limit)
        raise PhotoRejected(_("图片像素过多，最多 %(max)s 像素") % {"max": settings.HAZARD_PHOTO_MAX_PIXELS}) from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise PhotoRejected(_("无法识别的图片文件")) from exc
    width, height = image.size
    if width < 1 or height < 1 or width * height > settings.HAZARD_PHOTO_MAX_PIXELS:
        # Checked before decoding, so a small file that inflates to gigabytes is never decoded.
        raise PhotoRejected(
            _("图片像素过多（%(w)s×%(h)s），最多 %(max)s 像素")
            % {"w": width, "h": height, "max": settings.HAZARD_PHOTO_MAX_PIXELS}
        )
    if getattr(image, "n_frames", 1) > 1:
        raise PhotoRejected(_("不接受动图"))
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise PhotoRejected(_("图片文件已损坏")) from exc

    image = _strip(image, fmt)
    edge = settings.HAZARD_PHOTO_MAX_EDGE
    if max(image.size) > edge:
        image.thumbnail((edge, edge), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    _save(image, out, fmt)
    thumb_image = image.copy()
    thumb_edge = settings.HAZARD_PHOTO_THUMB_EDGE
    thumb_image.thumbnail((thumb_edge, thumb_edge), Image.Resampling.LANCZOS)
    thumb = io.BytesIO()
    _save(_flatten(thumb_image), thumb, "JPEG")
    return ProcessedPhoto(
        data=out.getvalue(),
        thumb=thumb.getvalue(),
        fmt=fmt,
        width=image.size[0],
        height=image.size[1],
        original_name=original_name,
    )


def _flatten(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB") if image.mode != "RGB" else image


def _strip(image: Image.Image, fmt: str) -> Image.Image:
    """A fresh image holding only the pixels: no EXIF (GPS), ICC, text chunks or comments."""
    if fmt == "JPEG":
        image = image.convert("RGB") if image.mode not in ("RGB", "L") else image
    elif image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA")
    clean = Image.new(image.mode, image.size)
    clean.paste(image)
    clean.info = {}
    return clean


def _save(image: Image.Image, fp, fmt: str) -> None:
    if fmt == "JPEG":
        image.save(fp, "JPEG", quality=85, optimize=True)
    elif fmt == "PNG":
        image.save(fp, "PNG", optimize=True)
    else:
        image.save(fp, "WEBP", quality=85)


def media_root() -> Path:
    return Path(settings.MEDIA_ROOT)


def store(photo: ProcessedPhoto) -> tuple[str, str]:
    """Write the image and its thumbnail; returns their paths relative to MEDIA_ROOT."""
    now = timezone.now()
    folder = Path("hazards") / f"{now:%Y}" / f"{now:%m}"
    (media_root() / folder).mkdir(parents=True, exist_ok=True)
    stem = uuid.uuid4().hex
    rel = folder / f"{stem}.{EXTENSIONS[photo.fmt]}"
    rel_thumb = folder / f"{stem}_t.jpg"
    written: list[Path] = []
    try:
        for target, payload in ((rel, photo.data), (rel_thumb, photo.thumb)):
            full = media_root() / target
            fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            written.append(full)
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
    except OSError:
        remove_files([str(p.relative_to(media_root())) for p in written])
        raise
    return str(rel), str(rel_thumb)


def resolve(rel: str) -> Path:
    """The absolute path of a stored file, refusing anything outside MEDIA_ROOT."""
    root = media_root().resolve()
    full = (root / rel).resolve()
    if root not in full.parents:
        raise FileNotFoundError(rel)
    return full


def remove_files(paths) -> None:
    for rel in paths:
        try:
            resolve(rel).unlink(missing_ok=True)
        except (OSError, FileNotFoundError):
            pass
