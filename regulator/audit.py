"""The one door to the audit log: ``record_event`` appends a keyed (HMAC-SM3) chained entry.

Appends are serialised (an advisory lock on PostgreSQL, the write lock on SQLite) so the chain
has no forks; ``verify_chain`` recomputes it and names the first entry that does not fit. The
chain key (``AUDIT_CHAIN_KEYS``) lives outside the database, so whoever can write the table cannot
recompute the chain after an edit; entries from before the key (no ``chain_key_id``) are plain SM3
and verify as the chain's legacy prefix. Signed checkpoints outside the database
(``regulator.audit_anchors``) catch what a chain alone cannot: a truncated or replaced log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC

from django.db import connection, transaction
from django.utils import timezone

from regulator.crypto import chain_keyring, hmac_sm3, sm3_hex
from regulator.requestlocal import current_request

GENESIS = "0" * 64
_LOCK_KEY = 0x5A_0A_D1_70  # arbitrary, constant advisory-lock id for the audit chain


def _canonical(entry) -> bytes:
    content = {
        "t": entry.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "u": entry.user_id,
        "n": entry.username,
        "ip": entry.source_ip,
        "e": entry.event,
        "ot": entry.object_type,
        "oi": entry.object_id,
        "or": entry.object_repr,
        "o": entry.outcome,
        "d": entry.detail,
    }
    return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()


class UnknownChainKey(Exception):
    """An entry names a chain key id that AUDIT_CHAIN_KEYS does not hold."""


def compute_hash(prev_hash: str, entry) -> str:
    """HMAC-SM3(key, prev_hash, key id, content) for a keyed entry; plain SM3 for a legacy one."""
    key_id = getattr(entry, "chain_key_id", "") or ""
    if not key_id:
        return sm3_hex(prev_hash.encode("ascii") + _canonical(entry))
    key = chain_keyring().keys.get(key_id)
    if key is None:
        raise UnknownChainKey(key_id)
    # The key id is inside the MAC: relabelling an entry with another key breaks it too.
    message = prev_hash.encode("ascii") + b"\x00" + key_id.encode("ascii") + b"\x00" + _canonical(entry)
    return hmac_sm3(key, message).hex()


def _client_ip(request) -> str | None:
    # The one client-IP function (trusted proxies honoured); normalised so the hashed value equals the stored one.
    from regulator.client_ip import client_ip

    return client_ip(request)


def record_event(
    *, event: str, user=None, obj=None, outcome: str = "success", detail: dict | None = None, request=None
):
    """Append one entry. Works inside or outside a transaction; never updates an old entry."""
    from regulator.models import AuditEntry

    request = request or current_request()
    if user is None and request is not None and getattr(request, "user", None) is not None:
        user = request.user if request.user.is_authenticated else None
    entry = AuditEntry(
        created_at=timezone.now(),
        user=user if user is not None and user.pk else None,
        username=getattr(user, "username", "") or (detail or {}).get("username", ""),
        source_ip=_client_ip(request),
        event=event,
        object_type=obj._meta.label if obj is not None else "",
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        outcome=outcome,
        detail=json.loads(json.dumps(detail or {}, default=str)),
    )
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        last = AuditEntry.objects.order_by("-id").values_list("entry_hash", flat=True).first()
        entry.prev_hash = last or GENESIS
        entry.chain_key_id = chain_keyring().current_id
        entry.entry_hash = compute_hash(entry.prev_hash, entry)
        entry.save(force_insert=True)
    return entry


@dataclass
class ChainProblem:
    entry_id: int | None
    reason: str


def verify_chain(batch_size: int = 5000, *, legacy_through: int | None = None, observer=None) -> list[ChainProblem]:
    """Recompute the chain; report edited, removed, inserted, reordered or downgraded entries.

    Legacy (unkeyed) entries may only open the chain: once a keyed entry has been seen, and past
    ``legacy_through`` (the last legacy id the signed anchors saw) when it is given, an unkeyed
    entry is an entry rewritten by someone without the key. ``observer.see(entry, n)`` is told
    of every entry (``n`` entries so far) so the anchors are checked in the same pass.
    """
    from regulator.models import AuditEntry

    problems: list[ChainProblem] = []
    prev = GENESIS
    first = True
    keyed_seen = False
    anchors = pruned_anchors()
    n = 0
    for entry in AuditEntry.objects.order_by("id").iterator(chunk_size=batch_size):
        n += 1
        if first and entry.prev_hash != prev and entry.prev_hash in anchors:
            prev = entry.prev_hash  # the entries before it were pruned after retention, and that was audited
        first = False
        if entry.prev_hash != prev:
            problems.append(
                ChainProblem(
                    entry.id, "previous hash does not match: an entry before it was removed, inserted or reordered"
                )
            )
        if entry.chain_key_id:
            keyed_seen = True
        elif keyed_seen:
            problems.append(
                ChainProblem(entry.id, "unkeyed entry after the chain was keyed: rewritten without the key")
            )
        elif legacy_through is not None and entry.id > legacy_through:
            problems.append(ChainProblem(entry.id, "unkeyed entry after the legacy point the anchors recorded"))
        try:
            if compute_hash(entry.prev_hash, entry) != entry.entry_hash:
                problems.append(ChainProblem(entry.id, "content does not match its hash: the entry was edited"))
        except UnknownChainKey as exc:
            problems.append(ChainProblem(entry.id, f"hashed with chain key {exc} that AUDIT_CHAIN_KEYS does not hold"))
        if observer is not None:
            observer.see(entry, n)
        prev = entry.entry_hash
    if observer is not None:
        observer.finish(n)
    return problems


PRUNE_EVENT = "audit.pruned"


def pruned_anchors() -> set[str]:
    """Hashes of the last entry removed by each audited prune: a legitimate start of the chain."""
    from regulator.models import AuditEntry

    anchors = set()
    for detail in AuditEntry.objects.filter(event=PRUNE_EVENT).values_list("detail", flat=True):
        if isinstance(detail, dict) and detail.get("last_pruned_hash"):
            anchors.add(detail["last_pruned_hash"])
    return anchors
