"""Signed checkpoints of the audit chain, kept outside the database.

A checkpoint (count, last id, last hash, last legacy id, time) is signed with the platform's SM2
key and written as its own file under ``AUDIT_ANCHOR_DIR`` (created once, never rewritten; put the
directory on write-once or another host's storage). ``verify_audit`` checks that the database still
holds every anchored entry with the anchored hash and at least the anchored number of entries, so a
truncated, replaced or re-chained log is reported even when the chain in the database is consistent.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from regulator.audit import _LOCK_KEY, PRUNE_EVENT, ChainProblem
from regulator.signing import sign_payload, verify_payload

PREFIX = "anchor-"
VERSION = 1


def _canonical(checkpoint: dict) -> bytes:
    return json.dumps(checkpoint, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Anchor:
    name: str
    count: int
    last_id: int
    last_hash: str
    legacy_through: int
    created_at: str


def anchor_dir(directory=None) -> Path:
    return Path(directory or settings.AUDIT_ANCHOR_DIR)


def chain_head() -> dict | None:
    """The newest entry and how many entries there are up to it, read under the append lock."""
    from django.db.models import Max

    from regulator.models import AuditEntry

    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        last = AuditEntry.objects.order_by("-id").values("id", "entry_hash", "chain_key_id").first()
        if last is None:
            return None
        legacy = AuditEntry.objects.filter(chain_key_id="").aggregate(m=Max("id"))["m"]
        return {
            "count": AuditEntry.objects.filter(id__lte=last["id"]).count(),
            "last_id": last["id"],
            "last_hash": last["entry_hash"],
            "last_key_id": last["chain_key_id"],
            "legacy_through": legacy or 0,
        }


def write_anchor(directory=None, *, force: bool = False) -> Path | None:
    """Write a signed checkpoint of the current head; None when the log is empty or (unless
    ``force``) has not moved since the newest checkpoint."""
    path = anchor_dir(directory)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    head = chain_head()
    if head is None:
        return None
    anchors, _problems = load_anchors(path)
    if anchors and not force:
        newest = max(anchors, key=lambda a: (a.last_id, a.name))
        if newest.last_id == head["last_id"] and newest.last_hash == head["last_hash"]:
            return None
    now = timezone.now().astimezone(UTC)
    checkpoint = {"v": VERSION, **head, "created_at": now.isoformat(timespec="microseconds")}
    document = {"checkpoint": checkpoint, "signature": sign_payload(_canonical(checkpoint))}
    target = path / f"{PREFIX}{head['last_id']:012d}-{now:%Y%m%dT%H%M%S%fZ}.json"
    # O_EXCL: a checkpoint file is created once and never overwritten.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o440)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, ensure_ascii=False, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    return target


def load_anchors(directory=None) -> tuple[list[Anchor], list[ChainProblem]]:
    """Every checkpoint under the directory whose SM2 signature verifies; the others as problems."""
    path = anchor_dir(directory)
    anchors: list[Anchor] = []
    problems: list[ChainProblem] = []
    if not path.is_dir():
        return anchors, problems
    for file in sorted(path.glob(f"{PREFIX}*.json")):
        try:
            document = json.loads(file.read_text(encoding="utf-8"))
            checkpoint, signature = document["checkpoint"], document["signature"]
            if not verify_payload(_canonical(checkpoint), signature):
                reason = f"anchor {file.name}: SM2 signature does not verify (forged or altered)"
                problems.append(ChainProblem(None, reason))
                continue
            anchors.append(
                Anchor(
                    name=file.name,
                    count=int(checkpoint["count"]),
                    last_id=int(checkpoint["last_id"]),
                    last_hash=str(checkpoint["last_hash"]),
                    legacy_through=int(checkpoint["legacy_through"]),
                    created_at=str(checkpoint["created_at"]),
                )
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(ChainProblem(None, f"anchor {file.name} is unreadable: {exc}"))
    return anchors, problems


def legacy_bound(anchors: list[Anchor]) -> int | None:
    """The last legacy (unkeyed) id any anchor saw: no unkeyed entry may appear after it."""
    return min((a.legacy_through for a in anchors), default=None)


@dataclass
class AnchorWatch:
    """Observer of one ``verify_chain`` pass: what the database holds at each anchored id."""

    anchors: list[Anchor]
    found: dict[str, tuple[int, str | None]] = field(default_factory=dict)  # name -> (entries up to id, hash)
    prunes: list[tuple[int, int, int]] = field(default_factory=list)  # (event id, through id, removed)

    def __post_init__(self):
        self._pending = sorted(self.anchors, key=lambda a: a.last_id)
        self._i = 0

    def see(self, entry, n: int) -> None:
        pending = self._pending
        while self._i < len(pending) and pending[self._i].last_id < entry.id:
            self.found[pending[self._i].name] = (n - 1, None)
            self._i += 1
        while self._i < len(pending) and pending[self._i].last_id == entry.id:
            self.found[pending[self._i].name] = (n, entry.entry_hash)
            self._i += 1
        if entry.event == PRUNE_EVENT and isinstance(entry.detail, dict):
            try:
                self.prunes.append((entry.id, int(entry.detail["through_id"]), int(entry.detail["removed"])))
            except (KeyError, TypeError, ValueError):
                pass

    def finish(self, n: int) -> None:
        for anchor in self._pending[self._i :]:
            self.found[anchor.name] = (n, None)
        self._i = len(self._pending)

    def problems(self) -> list[ChainProblem]:
        pruned_through = max((through for _id, through, _removed in self.prunes), default=0)
        out = []
        for anchor in self.anchors:
            held, entry_hash = self.found.get(anchor.name, (0, None))
            # Entries removed by an audited retention prune after the checkpoint are not missing.
            removed_since = sum(removed for event_id, _t, removed in self.prunes if event_id > anchor.last_id)
            if held < anchor.count - removed_since:
                out.append(
                    ChainProblem(
                        anchor.last_id,
                        f"anchor {anchor.name} counted {anchor.count} entries up to id {anchor.last_id}, "
                        f"the database holds {held}: entries were removed (truncated)",
                    )
                )
            if anchor.last_id <= pruned_through:
                continue
            if entry_hash is None:
                out.append(
                    ChainProblem(
                        anchor.last_id, f"anchored entry (anchor {anchor.name}) is missing: the log was truncated"
                    )
                )
            elif entry_hash != anchor.last_hash:
                out.append(
                    ChainProblem(
                        anchor.last_id,
                        f"anchored entry (anchor {anchor.name}) has another hash: the log was rewritten",
                    )
                )
        return out


def verify_log(directory=None) -> tuple[list[ChainProblem], list[Anchor]]:
    """The whole check, in one pass over the log: the keyed chain and every signed anchor."""
    from regulator.audit import verify_chain

    anchors, problems = load_anchors(directory)
    watch = AnchorWatch(anchors)
    problems += verify_chain(legacy_through=legacy_bound(anchors), observer=watch)
    problems += watch.problems()
    return problems, anchors
