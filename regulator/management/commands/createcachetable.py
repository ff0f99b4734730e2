"""``createcachetable`` as the owner role when DATABASE_OWNER_URL is set (the runtime role cannot
create tables), then the runtime role's grants on the new table."""

from django.core.management.commands.createcachetable import Command as DjangoCreateCacheTable

from regulator.dbroles import as_owner, grant_runtime_role, runtime_role_name


class Command(DjangoCreateCacheTable):
    def handle(self, *tablenames, **options):
        database = options["database"]
        role = runtime_role_name(database)
        with as_owner(database):
            super().handle(*tablenames, **options)
        if role:
            try:
                grant_runtime_role(role, database)
            except ValueError as exc:  # e.g. migrated back to zero: nothing to grant on
                self.stderr.write(f"runtime role not granted: {exc}")
