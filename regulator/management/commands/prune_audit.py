"""Remove audit entries past retention (never younger than 180 days), as an audited event.

The prune records the hash of the last entry it removed, so ``verify_audit`` accepts the new
start of the chain; on PostgreSQL it is the only path the append-only trigger lets through, and it
runs as the owner role (DATABASE_OWNER_URL): the runtime role may not DELETE from the audit log.
"""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from regulator.audit import PRUNE_EVENT, record_event
from regulator.dbroles import as_owner

MIN_RETENTION_DAYS = 180


class Command(BaseCommand):
    help = "Delete audit entries older than the retention period (at least 180 days)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None, help="retention in days (>= 180)")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, days=None, dry_run=False, **options):
        with as_owner():
            self._prune(days, dry_run)

    def _prune(self, days, dry_run):
        from regulator.models import AuditEntry

        days = days if days is not None else getattr(settings, "AUDIT_RETENTION_DAYS", 365)
        if days < MIN_RETENTION_DAYS:
            raise CommandError(f"refused: audit retention must be at least {MIN_RETENTION_DAYS} days (got {days})")
        cutoff = timezone.now() - timedelta(days=days)
        # Only a prefix of the chain may go: everything up to the last entry older than the cutoff
        # that is not followed by a younger one (ids and times grow together).
        first_young = AuditEntry.objects.filter(created_at__gte=cutoff).order_by("id").values_list("id", flat=True)
        limit_id = first_young.first()
        doomed = AuditEntry.objects.filter(created_at__lt=cutoff)
        if limit_id is not None:
            doomed = doomed.filter(id__lt=limit_id)
        last = doomed.order_by("-id").values("id", "entry_hash").first()
        count = doomed.count()
        if dry_run or not count:
            self.stdout.write(f"{count} entries older than {cutoff:%Y-%m-%d} would be removed")
            return
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL regulator.audit_prune = 'on'")
            record_event(
                event=PRUNE_EVENT,
                detail={
                    "removed": count,
                    "through_id": last["id"],
                    "last_pruned_hash": last["entry_hash"],
                    "cutoff": cutoff.isoformat(),
                    "retention_days": days,
                },
            )
            AuditEntry.objects.filter(id__lte=last["id"]).delete()
        self.stdout.write(self.style.SUCCESS(f"removed {count} audit entries older than {cutoff:%Y-%m-%d}"))
