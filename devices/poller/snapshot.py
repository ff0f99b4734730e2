"""The last known configuration of a process, on local disk, so it can start while the database is down.

The poller (its shard's device specs) and the alert runtime (resolved rule configs, channel infos,
linkage targets, operating modes) write what they loaded here every time a load from the database
succeeds and changed something, and read it at start when the database is unreachable: a restart
during an outage (a crash, a reboot) must not leave the plant unwatched until the database returns.

One JSON file per process name and kind under ``CONFIG_SNAPSHOT_DIR``, written atomically (a
temporary file, fsync, rename, fsync of the directory): a crash leaves the old file or the new one,
never half of one. The format is versioned and checksummed; dataclasses become tagged dicts and are
rebuilt only as the classes the reader names. A file that is corrupt, of another version or kind, or
holds anything unexpected is logged and ignored, never a crash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import threading
from datetime import UTC, datetime, time
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

FORMAT = "regulator-config-snapshot"
VERSION = 1


class SnapshotError(ValueError):
    """The file is not a snapshot this code can use."""


def snapshot_path(name: str, kind: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name or "default")
    return Path(settings.CONFIG_SNAPSHOT_DIR) / f"{safe}.{kind}.json"


# --- encoding ------------------------------------------------------------------------------------------
def encode(obj):
    """Plain JSON values from dataclasses, tuples, frozensets, int-keyed dicts, datetimes and times."""
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: encode(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
        return {"__dc__": type(obj).__name__, "f": fields}
    if isinstance(obj, tuple):
        return {"__t__": [encode(x) for x in obj]}
    if isinstance(obj, frozenset | set):
        return {"__fs__": sorted((encode(x) for x in obj), key=repr)}
    if isinstance(obj, list):
        return [encode(x) for x in obj]
    if isinstance(obj, dict):
        return {"__d__": [[encode(k), encode(v)] for k, v in obj.items()]}
    if isinstance(obj, datetime):
        if obj.tzinfo is None:
            raise TypeError(f"naive datetime in a snapshot: {obj!r}")
        return {"__dt__": obj.isoformat()}
    if isinstance(obj, time):
        return {"__tm__": obj.isoformat()}
    raise TypeError(f"cannot snapshot {type(obj).__name__}")


def decode(value, types: dict[str, type]):
    """The inverse of ``encode``; a dataclass is rebuilt only if its name is in ``types``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [decode(x, types) for x in value]
    if not isinstance(value, dict) or len(value) not in (1, 2):
        raise SnapshotError(f"unexpected value {str(value)[:80]}")
    if "__dc__" in value:
        cls = types.get(value["__dc__"])
        fields = value.get("f")
        if cls is None or not isinstance(fields, dict):
            raise SnapshotError(f"unexpected class {value['__dc__']!r}")
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        if not set(fields) <= known:
            raise SnapshotError(f"{cls.__name__}: unknown fields {sorted(set(fields) - known)}")
        try:
            return cls(**{k: decode(v, types) for k, v in fields.items()})
        except TypeError as exc:  # a required field missing
            raise SnapshotError(f"{cls.__name__}: {exc}") from exc
    ((tag, inner),) = value.items()
    if tag == "__t__" and isinstance(inner, list):
        return tuple(decode(x, types) for x in inner)
    if tag == "__fs__" and isinstance(inner, list):
        return frozenset(decode(x, types) for x in inner)
    if tag == "__d__" and isinstance(inner, list):
        if not all(isinstance(pair, list) and len(pair) == 2 for pair in inner):
            raise SnapshotError("malformed mapping")
        return {decode(k, types): decode(v, types) for k, v in inner}
    if tag == "__dt__" and isinstance(inner, str):
        parsed = datetime.fromisoformat(inner)
        if parsed.tzinfo is None:
            raise SnapshotError("naive datetime")
        return parsed
    if tag == "__tm__" and isinstance(inner, str):
        return time.fromisoformat(inner)
    raise SnapshotError(f"unexpected tag {tag!r}")


def _checksum(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


# --- files ---------------------------------------------------------------------------------------------
class ConfigSnapshot:
    """One snapshot file: ``save`` after each successful load from the database (written only when the
    content changed), ``load`` at a start without the database."""

    def __init__(self, path: Path, kind: str):
        self.path = Path(path)
        self.kind = kind
        self._written: str | None = None  # checksum of what the file holds, once known

    def holds(self, data) -> bool:
        """Whether the file (as last written or read here) holds ``data``."""
        try:
            body = json.dumps(encode(data), sort_keys=True, separators=(",", ":"))
        except TypeError:
            return False
        return self._written is not None and _checksum(body) == self._written

    def save(self, data) -> bool:
        """Write ``data`` (atomically, durably) unless the file already holds it. True when written.
        Never raises: a full disk must not stop a poller that has its configuration in memory."""
        try:
            body = json.dumps(encode(data), sort_keys=True, separators=(",", ":"))
            checksum = _checksum(body)
            if self._written is None:
                self._written = self._file_checksum()
            if checksum == self._written:
                return False
            saved_at = datetime.now(UTC).isoformat()
            head = json.dumps(
                {"format": FORMAT, "version": VERSION, "kind": self.kind, "saved_at": saved_at, "checksum": checksum}
            )
            # The data is spliced in as the text that was checksummed, so the reader checks those bytes.
            text = head[:-1] + ',"data":' + body + "}\n"
            self._write_atomically(text)
            self._written = checksum
            logger.info("configuration snapshot %s written (%d bytes)", self.path, len(text))
            return True
        except Exception:
            logger.exception("could not write the configuration snapshot %s", self.path)
            return False

    def _write_atomically(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Per process and thread: two writers of one name (web workers) never share a temporary file.
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        finally:
            if tmp.exists():
                tmp.unlink()
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power cut
        finally:
            os.close(dir_fd)

    def _file_checksum(self) -> str:
        try:
            return self._read()[2]
        except (OSError, SnapshotError, ValueError):
            return ""

    def _read(self) -> tuple[object, datetime, str]:
        raw = self.path.read_text(encoding="utf-8")
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise SnapshotError("not a configuration snapshot")
        if doc.get("version") != VERSION:
            raise SnapshotError(f"version {doc.get('version')!r}, this code reads {VERSION}")
        if doc.get("kind") != self.kind:
            raise SnapshotError(f"a snapshot of {doc.get('kind')!r}, not {self.kind!r}")
        body = json.dumps(doc.get("data"), sort_keys=True, separators=(",", ":"))
        if _checksum(body) != doc.get("checksum"):
            raise SnapshotError("checksum mismatch")
        saved_at = datetime.fromisoformat(doc["saved_at"])
        if saved_at.tzinfo is None:
            raise SnapshotError("naive saved_at")
        return doc["data"], saved_at, doc["checksum"]

    def load(self, types) -> tuple[object, datetime] | None:
        """(data, when it was saved) or None when there is no usable snapshot (said in the log).
        ``types``: the dataclasses the data may hold."""
        registry = {cls.__name__: cls for cls in types}
        try:
            data, saved_at, checksum = self._read()
            value = decode(data, registry)
        except FileNotFoundError:
            logger.warning("no configuration snapshot at %s", self.path)
            return None
        except Exception as exc:  # corrupt, truncated, another version: ignored, never a crash
            logger.error("configuration snapshot %s is unusable and ignored: %s", self.path, exc)
            return None
        self._written = checksum
        return value, saved_at
