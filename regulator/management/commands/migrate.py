"""``migrate`` as the owner role when DATABASE_OWNER_URL is set, then the runtime role's grants.

The runtime role of DATABASE_URL owns no table, so it cannot run DDL; the owner does, and the
grants (also set as default privileges) keep the runtime role's access to new tables.
"""

from django.core.management.commands.migrate import Command as DjangoMigrate

from regulator.dbroles import as_owner, grant_runtime_role, runtime_role_name


class Command(DjangoMigrate):
    def handle(self, *args, **options):
        database = options["database"]
        role = runtime_role_name(database)
        with as_owner(database):
            super().handle(*args, **options)
        if role:
            try:
                grant_runtime_role(role, database)
            except ValueError as exc:  # e.g. migrated back to zero: nothing to grant on
                self.stderr.write(f"runtime role not granted: {exc}")
