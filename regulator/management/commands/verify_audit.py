"""Recompute the SM3 chain of the audit log; exit 1 naming every entry that does not fit."""

from django.core.management.base import BaseCommand, CommandError

from regulator.audit import verify_chain


class Command(BaseCommand):
    help = "Verify the audit log's SM3 hash chain (edited, removed, inserted or reordered entries)."

    def handle(self, *args, **options):
        from regulator.models import AuditEntry

        problems = verify_chain()
        if not problems:
            self.stdout.write(self.style.SUCCESS(f"OK: {AuditEntry.objects.count()} entries, chain intact"))
            return
        for problem in problems:
            self.stderr.write(f"entry {problem.entry_id}: {problem.reason}")
        raise CommandError(f"audit chain BROKEN: {len(problems)} problem(s)", returncode=1)
