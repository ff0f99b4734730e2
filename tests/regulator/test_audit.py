"""The SM3-chained audit log: verify_audit finds edits, removals and reorders; retention; the
PostgreSQL trigger refuses UPDATE and DELETE."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from regulator.audit import record_event, verify_chain
from regulator.models import AuditEntry

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")


def chain(n=5):
    return [record_event(event=f"test.e{i}", detail={"i": i}) for i in range(n)]


def test_intact_chain_verifies(db, capsys):
    chain()
    assert verify_chain() == []
    call_command("verify_audit")
    assert "chain intact" in capsys.readouterr().out


def test_ipv6_source_is_normalised_before_hashing(db, rf):
    request = rf.get("/", REMOTE_ADDR="2001:0db8:0000:0000:0000:0000:0000:0001")
    entry = record_event(event="test.v6", request=request)
    assert entry.source_ip == "2001:db8::1"
    assert verify_chain() == []


def test_edited_entry_is_named(db, tamperable):
    entries = chain()
    AuditEntry.objects.filter(pk=entries[2].pk).update(detail={"i": 99})
    with pytest.raises(CommandError) as exc:
        call_command("verify_audit")
    assert exc.value.returncode == 1
    assert [p.entry_id for p in verify_chain()] == [entries[2].pk]


def test_removed_entry_is_found(db, tamperable):
    entries = chain()
    AuditEntry.objects.filter(pk=entries[1].pk).delete()
    problems = verify_chain()
    assert [p.entry_id for p in problems] == [entries[2].pk]
    assert "removed" in problems[0].reason


def test_reordered_entries_are_found(db, tamperable):
    entries = chain()
    a, b = entries[1], entries[3]
    fields = ["created_at", "event", "detail", "prev_hash", "entry_hash"]
    va = {k: getattr(a, k) for k in fields}
    vb = {k: getattr(b, k) for k in fields}
    AuditEntry.objects.filter(pk=a.pk).update(entry_hash="x" * 64)
    AuditEntry.objects.filter(pk=b.pk).update(**va)
    AuditEntry.objects.filter(pk=a.pk).update(**vb)
    assert {p.entry_id for p in verify_chain()} >= {a.pk, b.pk}


def test_prune_refuses_less_than_180_days(db):
    with pytest.raises(CommandError, match="at least 180"):
        call_command("prune_audit", "--days", "179")


def test_prune_removes_only_old_entries_and_the_chain_still_verifies(transactional_db, time_machine):
    time_machine.move_to(timezone.now() - timedelta(days=400))
    old = chain(3)
    time_machine.move_to(timezone.now() + timedelta(days=400))
    young = chain(2)
    call_command("prune_audit", "--days", "180")
    remaining = set(AuditEntry.objects.values_list("pk", flat=True))
    assert not remaining & {e.pk for e in old}
    assert {e.pk for e in young} <= remaining
    assert verify_chain() == []
    assert AuditEntry.objects.filter(event="audit.pruned", detail__removed=3).exists()


@pytest.mark.postgres
@postgres_only
def test_postgres_refuses_update_and_delete_of_audit_rows(transactional_db):
    """The trigger holds even for the owner (the runtime role has no UPDATE/DELETE privilege at all)."""
    from regulator.dbroles import as_owner

    with as_owner():
        _owner_cannot_update_or_delete()


def _owner_cannot_update_or_delete():
    entry = record_event(event="test.locked")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(outcome="failure")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL regulator.audit_prune = 'on'")
        AuditEntry.objects.filter(pk=entry.pk).delete()  # the prune switch does not cover young rows
    assert AuditEntry.objects.filter(pk=entry.pk, outcome="success").exists()


@pytest.mark.postgres
@postgres_only
def test_postgres_prune_path_deletes_old_rows(transactional_db, time_machine):
    time_machine.move_to(timezone.now() - timedelta(days=400))
    old = chain(2)
    time_machine.move_to(timezone.now() + timedelta(days=400))
    chain(1)
    call_command("prune_audit", "--days", "200")
    assert not AuditEntry.objects.filter(pk__in=[e.pk for e in old]).exists()
    assert verify_chain() == []


def test_checkpoint_catches_a_truncated_tail(db, tamperable, tmp_path):
    entries = chain(3)
    checkpoint = tmp_path / "audit-head.json"
    call_command("verify_audit", "--checkpoint", str(checkpoint))
    assert str(entries[-1].pk) in checkpoint.read_text()
    more = chain(2)
    call_command("verify_audit", "--checkpoint", str(checkpoint))  # moves forward
    assert str(more[-1].pk) in checkpoint.read_text()
    AuditEntry.objects.filter(pk__gte=more[0].pk).delete()  # drop the newest entries
    assert verify_chain() == []  # the chain alone cannot see it ...
    with pytest.raises(CommandError):  # ... the checkpoint does
        call_command("verify_audit", "--checkpoint", str(checkpoint))
