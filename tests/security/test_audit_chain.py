"""Issue 16, M4: whoever can write the audit table cannot rewrite history unnoticed.

The chain is keyed (HMAC-SM3, key outside the database), so an edited entry with a recomputed
plain SM3 chain is reported; signed checkpoints outside the database (anchors) report a truncated
or replaced log; on PostgreSQL the runtime role cannot TRUNCATE, DISABLE TRIGGER, UPDATE or DELETE
the audit table at all.
"""

import json

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client

from regulator.audit import GENESIS, _canonical, record_event, verify_chain
from regulator.audit_anchors import load_anchors, verify_log
from regulator.choices import Role
from regulator.crypto import sm3_hex
from regulator.models import AuditEntry
from tests import factories as f

KEY_A = "a1:" + "11" * 32
KEY_B = "b2:" + "22" * 32


def chain(n=5):
    return [record_event(event=f"test.e{i}", detail={"i": i}) for i in range(n)]


def rechain_plain(from_id, *, key_id=None):
    """The attacker without the key: recompute plain SM3 hashes from ``from_id`` to the end,
    optionally relabelling the entries (``key_id=""`` passes them off as legacy entries)."""
    prev = AuditEntry.objects.filter(id__lt=from_id).order_by("-id").values_list("entry_hash", flat=True).first()
    prev = prev or GENESIS
    for entry in AuditEntry.objects.filter(id__gte=from_id).order_by("id"):
        if key_id is not None:
            entry.chain_key_id = key_id
        entry_hash = sm3_hex(prev.encode("ascii") + _canonical(entry))
        AuditEntry.objects.filter(pk=entry.pk).update(
            prev_hash=prev, entry_hash=entry_hash, chain_key_id=entry.chain_key_id
        )
        prev = entry_hash


def verify_fails(capsys=None):
    with pytest.raises(CommandError) as exc:
        call_command("verify_audit")
    assert exc.value.returncode == 1
    return exc


def truncate_audit_table():
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE regulator_auditentry")
    else:
        AuditEntry.objects.all().delete()


def test_entries_record_the_key_id_that_signed_them(db, settings):
    settings.AUDIT_CHAIN_KEYS = KEY_A
    first = record_event(event="test.a")
    settings.AUDIT_CHAIN_KEYS = f"{KEY_B},{KEY_A}"  # rotated: b2 signs, a1 still verifies
    second = record_event(event="test.b")
    assert AuditEntry.objects.get(pk=first.pk).chain_key_id == "a1"
    assert AuditEntry.objects.get(pk=second.pk).chain_key_id == "b2"
    assert verify_chain() == []
    settings.AUDIT_CHAIN_KEYS = KEY_B  # a1 retired too early: its entries can no longer be checked
    problems = verify_chain()
    assert [p.entry_id for p in problems] == [first.pk] and "a1" in problems[0].reason


def test_the_hash_depends_on_the_key(db, settings):
    settings.AUDIT_CHAIN_KEYS = KEY_A
    entry = record_event(event="test.k")
    settings.AUDIT_CHAIN_KEYS = "a1:" + "33" * 32  # same id, another key: someone guessed the id only
    assert [p.entry_id for p in verify_chain()] == [entry.pk]


def test_the_default_key_outside_the_database_is_named_after_it(db, settings):
    settings.AUDIT_CHAIN_KEYS = ""  # the demo default: derived from SECRET_KEY, never stored
    entry = record_event(event="test.default_key")
    assert entry.chain_key_id.startswith("sk") and verify_chain() == []
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    problems = verify_chain()
    assert [p.entry_id for p in problems] == [entry.pk] and "does not hold" in problems[0].reason


def test_rewritten_entry_with_a_recomputed_plain_sm3_chain_is_reported(tamperable):
    entries = chain()
    AuditEntry.objects.filter(pk=entries[2].pk).update(detail={"i": 99}, username="nobody")
    rechain_plain(entries[2].pk)
    exc = verify_fails()
    assert "BROKEN" in str(exc.value)
    problems = verify_chain()
    assert {p.entry_id for p in problems} == {e.pk for e in entries[2:]}
    assert all("edited" in p.reason for p in problems)


def test_rewritten_entries_passed_off_as_legacy_are_reported(tamperable):
    entries = chain()
    AuditEntry.objects.filter(pk=entries[3].pk).update(outcome="failure")
    rechain_plain(entries[3].pk, key_id="")  # "legacy" entries hash with plain SM3 ...
    problems = verify_chain()
    assert {p.entry_id for p in problems} == {entries[3].pk, entries[4].pk}
    assert all("unkeyed entry after the chain was keyed" in p.reason for p in problems)  # ... not after keyed ones
    verify_fails()


def test_whole_log_passed_off_as_legacy_is_caught_by_the_anchor(tamperable):
    entries = chain(3)
    call_command("anchor_audit")
    AuditEntry.objects.filter(pk=entries[1].pk).update(username="someone-else")
    rechain_plain(entries[0].pk, key_id="")
    assert verify_chain() == []  # a consistent, all-legacy chain: the database alone cannot tell
    problems, anchors = verify_log()
    assert len(anchors) == 1
    reasons = " ".join(p.reason for p in problems)
    assert "rewritten" in reasons and "legacy point" in reasons
    verify_fails()


def test_legacy_prefix_verifies_and_the_keyed_chain_continues_it(db):
    """Entries written before the chain was keyed (plain SM3, no key id) stay valid."""
    prev = GENESIS
    from django.utils import timezone

    for i in range(3):
        entry = AuditEntry(created_at=timezone.now(), event=f"legacy.{i}", detail={"i": i}, prev_hash=prev)
        entry.entry_hash = sm3_hex(prev.encode("ascii") + _canonical(entry))
        entry.save(force_insert=True)
        prev = entry.entry_hash
    keyed = record_event(event="keyed.first")
    assert keyed.prev_hash == prev and keyed.chain_key_id
    call_command("verify_audit")
    call_command("anchor_audit")
    (anchor,), _ = load_anchors()
    assert anchor.legacy_through == keyed.pk - 1
    call_command("verify_audit")


def test_truncation_by_the_owner_is_reported_by_the_anchors(tamperable):
    chain(4)
    call_command("anchor_audit")
    chain(2)
    call_command("anchor_audit")
    truncate_audit_table()
    chain(2)  # the log starts again: a consistent chain from genesis
    assert verify_chain() == []
    exc = verify_fails()
    problems, anchors = verify_log()
    assert len(anchors) == 2
    reasons = [p.reason for p in problems]
    assert any("counted 6 entries" in r and "removed" in r for r in reasons)
    assert any("missing" in r for r in reasons)
    assert "BROKEN" in str(exc.value)


def test_a_truncated_tail_is_reported_by_the_anchors(tamperable):
    entries = chain(5)
    call_command("anchor_audit")
    AuditEntry.objects.filter(pk__gte=entries[3].pk).delete()
    assert verify_chain() == []  # the chain alone cannot see a missing tail
    problems, _ = verify_log()
    assert [p.entry_id for p in problems] == [entries[4].pk, entries[4].pk]
    verify_fails()


def test_forged_or_edited_anchor_is_refused(db):
    chain(3)
    call_command("anchor_audit")
    (path,) = list(django_settings.AUDIT_ANCHOR_DIR.glob("anchor-*.json"))
    document = json.loads(path.read_text())
    document["checkpoint"]["count"] = 2  # would hide a removed entry
    path.chmod(0o600)
    path.write_text(json.dumps(document))
    problems, anchors = verify_log()
    assert anchors == [] and "signature does not verify" in problems[0].reason
    verify_fails()


def test_anchor_command_writes_a_signed_checkpoint_only_when_the_log_moved(db, settings):
    entries = chain(3)
    call_command("anchor_audit")
    call_command("anchor_audit")  # nothing new: no second file
    files = list(settings.AUDIT_ANCHOR_DIR.glob("anchor-*.json"))
    assert len(files) == 1
    checkpoint = json.loads(files[0].read_text())["checkpoint"]
    assert checkpoint["count"] == 3 and checkpoint["last_id"] == entries[-1].pk
    assert checkpoint["last_hash"] == entries[-1].entry_hash and checkpoint["created_at"]
    record_event(event="test.more")
    call_command("anchor_audit")
    assert len(list(settings.AUDIT_ANCHOR_DIR.glob("anchor-*.json"))) == 2
    call_command("verify_audit")


def test_anchoring_is_scheduled(db, settings):
    from regulator.celery import app
    from regulator.tasks import anchor_audit

    entry = settings.CELERY_BEAT_SCHEDULE["anchor-audit-chain"]
    assert entry["task"] == "regulator.tasks.anchor_audit" and entry["task"] in app.tasks
    chain(1)
    assert anchor_audit.delay().get()
    assert len(load_anchors()[0]) == 1


def test_retention_prune_after_an_anchor_is_not_a_truncation(transactional_db, time_machine):
    from datetime import timedelta

    from django.utils import timezone

    time_machine.move_to(timezone.now() - timedelta(days=400))
    chain(3)
    call_command("anchor_audit")
    time_machine.move_to(timezone.now() + timedelta(days=400))
    chain(2)
    call_command("anchor_audit")
    call_command("prune_audit", "--days", "180")
    problems, anchors = verify_log()
    assert len(anchors) == 2 and problems == []
    call_command("verify_audit")


@pytest.fixture
def http_server(transactional_db):
    """The WSGI app on a free loopback port, in a thread (committed data only: transactional)."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from django.core.wsgi import get_wsgi_application

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_auditor_page_reports_a_truncation_over_real_http(tamperable, http_server):
    """The auditor's 校验 button runs the same check (chain and anchors) as verify_audit."""
    from urllib.request import Request, urlopen

    auditor = f.user("auditor_http", Role.AUDITOR)
    chain(3)
    call_command("anchor_audit")
    entries = list(AuditEntry.objects.order_by("id"))
    AuditEntry.objects.filter(pk=entries[-1].pk).delete()
    client = Client()
    client.force_login(auditor)
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"
    request = Request(f"{http_server}/accounts/security/audit/?verify=1", headers={"Cookie": cookie})
    with urlopen(request, timeout=30) as response:
        assert response.status == 200
        body = response.read().decode()
    assert "哈希链校验失败" in body and "truncated" in body


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")
def test_runtime_role_cannot_truncate_disable_trigger_update_or_delete_the_audit_log(db):
    if not django_settings.DATABASE_OWNER:
        pytest.skip("the suite runs as the owner: set DATABASE_OWNER_URL (CI does) to run as the runtime role")
    entry = record_event(event="test.locked")  # the runtime role may append ...
    assert AuditEntry.objects.filter(pk=entry.pk).exists()  # ... and read
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.rolsuper, t.tableowner = current_user FROM pg_roles r, pg_tables t "
            "WHERE r.rolname = current_user AND t.tablename = 'regulator_auditentry'"
        )
        assert cursor.fetchone() == (False, False)
    attacks = [
        "TRUNCATE regulator_auditentry",
        "ALTER TABLE regulator_auditentry DISABLE TRIGGER regulator_auditentry_append_only",
        "ALTER TABLE regulator_auditentry DISABLE TRIGGER ALL",
        f"UPDATE regulator_auditentry SET outcome = 'failure' WHERE id = {entry.pk}",
        f"DELETE FROM regulator_auditentry WHERE id = {entry.pk}",
        "DROP TABLE regulator_auditentry",
        "DROP TRIGGER regulator_auditentry_append_only ON regulator_auditentry",
        "CREATE OR REPLACE FUNCTION regulator_audit_append_only() RETURNS trigger AS "
        "'BEGIN RETURN NEW; END' LANGUAGE plpgsql",  # defuse the trigger by rewriting its function
    ]
    for sql in attacks:
        refused = pytest.raises(DatabaseError, match="permission denied|must be owner")
        with refused, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditEntry.objects.filter(pk=entry.pk, outcome="success").exists()


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")
def test_grant_runtime_role_is_idempotent_and_refuses_the_owner(transactional_db):
    if not django_settings.DATABASE_OWNER:
        pytest.skip("needs DATABASE_OWNER_URL")
    runtime = connection.settings_dict["USER"]
    call_command("grant_runtime_role", runtime)
    call_command("grant_runtime_role", runtime)
    record_event(event="test.after_grant")
    with pytest.raises(CommandError, match="owner"):
        call_command("grant_runtime_role", django_settings.DATABASE_OWNER["USER"])
