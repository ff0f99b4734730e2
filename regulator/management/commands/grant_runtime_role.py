"""Grant the runtime database role what it needs and nothing more (idempotent; run as the owner).

SELECT/INSERT/UPDATE/DELETE on the app's tables, INSERT and SELECT only on the audit log, sequence
use, and the same by default on tables later migrations create. ``migrate`` runs it for the role of
DATABASE_URL when DATABASE_OWNER_URL is set.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from regulator.dbroles import grant_runtime_role


class Command(BaseCommand):
    help = "Grant a (non-owner) PostgreSQL role the runtime privileges: no TRUNCATE, audit log append-only."

    def add_arguments(self, parser):
        parser.add_argument("role")
        parser.add_argument("--database", default="default")

    def handle(self, *args, role, database="default", **options):
        if connections[database].vendor != "postgresql":
            raise CommandError("grant_runtime_role is for PostgreSQL")
        try:
            statements = grant_runtime_role(role, database)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        for statement in statements:
            self.stdout.write(statement)
        self.stdout.write(self.style.SUCCESS(f"runtime privileges granted to {role}"))
