"""Write a signed checkpoint of the audit chain outside the database (beat: AUDIT_ANCHOR_MINUTES).

Nothing is written while the log has not moved since the newest checkpoint (``--force`` writes
one anyway).
"""

from django.core.management.base import BaseCommand

from regulator.audit_anchors import anchor_dir, write_anchor


class Command(BaseCommand):
    help = "Write an SM2-signed checkpoint (count, last id, last hash) of the audit chain to AUDIT_ANCHOR_DIR."

    def add_arguments(self, parser):
        parser.add_argument("--dir", help="anchor directory (default: AUDIT_ANCHOR_DIR)")
        parser.add_argument("--force", action="store_true", help="write even if the log has not moved")

    def handle(self, *args, dir=None, force=False, **options):
        path = write_anchor(dir, force=force)
        if path is None:
            self.stdout.write(f"no new checkpoint: the audit log has not moved ({anchor_dir(dir)})")
        else:
            self.stdout.write(self.style.SUCCESS(f"checkpoint written: {path}"))
