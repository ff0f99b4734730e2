"""``flush`` (TRUNCATE of every table, as the test runner uses it) as the owner role when
DATABASE_OWNER_URL is set: the runtime role may not TRUNCATE."""

from django.core.management.commands.flush import Command as DjangoFlush

from regulator.dbroles import as_owner


class Command(DjangoFlush):
    def handle(self, **options):
        with as_owner(options["database"]):
            super().handle(**options)
