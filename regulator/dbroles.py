"""Two PostgreSQL roles: the owner (schema, migrations, flush, the audit prune) and the runtime role.

The runtime role of ``DATABASE_URL`` owns nothing: it may SELECT/INSERT/UPDATE/DELETE the app's
tables and only INSERT and SELECT the audit log, so it can neither TRUNCATE the log nor disable its
append-only trigger. ``as_owner()`` runs a block on a connection with ``DATABASE_OWNER`` credentials
(a no-op when none are configured, and on SQLite); ``grant_runtime_role`` applies the grants.
"""

from __future__ import annotations

from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

AUDIT_TABLE = "regulator_auditentry"


def owner_configured(using: str = DEFAULT_DB_ALIAS) -> bool:
    """An owner is configured for the server this connection talks to (a test's private server,
    reached through a DATABASE_URL of its own, keeps its own credentials)."""
    owner = getattr(settings, "DATABASE_OWNER", None)
    conn = connections[using]
    if not owner or conn.vendor != "postgresql":
        return False
    return all(str(owner.get(k) or "") == str(conn.settings_dict.get(k) or "") for k in ("HOST", "PORT"))


@contextmanager
def as_owner(using: str = DEFAULT_DB_ALIAS):
    """Route ``using`` to a fresh owner connection for the block (this thread only).

    A separate session: it does not see the caller's uncommitted writes, and what it writes is
    committed on its own.
    """
    current = connections[using]
    if not owner_configured(using):
        yield current
        return
    owner = current.__class__({**current.settings_dict, **settings.DATABASE_OWNER}, using)
    connections[using] = owner
    try:
        yield owner
    finally:
        owner.close()
        connections[using] = current


def runtime_grant_sql(role: str, quote) -> list[str]:
    """The runtime role's privileges on every table of the current schema, now and in future."""
    r = quote(role)
    audit = quote(AUDIT_TABLE)
    return [
        f"GRANT USAGE ON SCHEMA public TO {r}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}",
        # The audit log: append and read only (no UPDATE/DELETE/TRUNCATE; not the owner, so no
        # ALTER TABLE ... DISABLE TRIGGER either).
        f"REVOKE UPDATE, DELETE ON {audit} FROM {r}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}",
        # Tables and sequences the owner creates later (migrations) get the same grants.
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {r}",
    ]


def grant_runtime_role(role: str, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Apply the runtime grants (idempotent) as the owner; refuse a role that could undo them."""
    # One transaction: the REVOKE-then-GRANT never leaves a running app without its privileges.
    with as_owner(using) as conn, transaction.atomic(using=using), conn.cursor() as cursor:
        cursor.execute(
            "SELECT r.rolsuper, pg_has_role(r.oid, t.tableowner, 'USAGE') "
            "FROM pg_roles r, pg_tables t WHERE r.rolname = %s AND t.tablename = %s",
            [role, AUDIT_TABLE],
        )
        row = cursor.fetchone()
        if row is None:
            raise ValueError(f"role {role!r} does not exist (or the audit table is not migrated yet)")
        if row[0] or row[1]:
            raise ValueError(f"role {role!r} is a superuser or acts as the owner: it cannot be the runtime role")
        statements = runtime_grant_sql(role, conn.ops.quote_name)
        for statement in statements:
            cursor.execute(statement)
    return statements


def runtime_role_name(using: str = DEFAULT_DB_ALIAS) -> str | None:
    """The runtime role of DATABASE_URL when an owner is configured and it is a different role."""
    if not owner_configured(using):
        return None
    runtime = connections[using].settings_dict.get("USER")
    return runtime if runtime and runtime != settings.DATABASE_OWNER.get("USER") else None
