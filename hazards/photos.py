"""Hazard photo storage: each upload goes through the platform's one validator (regulator.uploads),
then is kept with a thumbnail under MEDIA_ROOT with generated names (never served by a public URL)."""

from __future__ import annotations

import io
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from PIL import Image

from regulator import uploads


@dataclass
class ProcessedPhoto:
    data: bytes
    thumb: bytes
    fmt: str
    width: int
    height: int
    original_name: str
    content_type: str
    extension: str


def process(upload, *, field: str = "photos") -> ProcessedPhoto:
    """Validate and re-encode one upload, and make its thumbnail; raises UploadRejected with the reason."""
    clean = uploads.validate_image(upload, field=field)
    image = clean.image
    edge = settings.HAZARD_PHOTO_THUMB_EDGE
    scale = min(1.0, edge / max(image.size))
    # resize() returns the small image directly (reduce() first), no full-size copy as thumbnail() would need.
    thumb_image = image.resize(
        (max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale))),
        Image.Resampling.LANCZOS,
        reducing_gap=3.0,
    )
    thumb = io.BytesIO()
    uploads.save(_flatten(thumb_image), thumb, "JPEG")
    return ProcessedPhoto(
        data=clean.data,
        thumb=thumb.getvalue(),
        fmt=clean.fmt,
        width=clean.width,
        height=clean.height,
        original_name=clean.original_name,
        content_type=clean.content_type,
        extension=clean.extension,
    )


def _flatten(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB") if image.mode != "RGB" else image


def media_root() -> Path:
    return Path(settings.MEDIA_ROOT)


def store(photo: ProcessedPhoto) -> tuple[str, str]:
    """Write the image and its thumbnail; returns their paths relative to MEDIA_ROOT."""
    now = timezone.now()
    folder = Path("hazards") / f"{now:%Y}" / f"{now:%m}"
    (media_root() / folder).mkdir(parents=True, exist_ok=True)
    stem = uuid.uuid4().hex
    rel = folder / f"{stem}.{photo.extension}"  # the decoded format's, from the validator
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
