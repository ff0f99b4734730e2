"""Recompute the keyed (HMAC-SM3) chain of the audit log and check it against the signed anchors
in AUDIT_ANCHOR_DIR; exit 1 naming every entry or anchor that does not fit.

The anchors catch a truncated, replaced or re-chained log: every anchored entry must still be
there with its anchored hash, with at least the anchored number of entries up to it.

``--checkpoint FILE`` also catches a truncated tail (the one thing a hash chain alone cannot
see): the file, kept outside the database (e.g. on write-once storage), holds the id and hash of
the last entry seen by the previous run; that entry must still be there, unchanged, and the file
is then moved forward to the current last entry.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from regulator.audit import ChainProblem
from regulator.audit_anchors import anchor_dir, verify_log


class Command(BaseCommand):
    help = "Verify the audit log's keyed hash chain and its signed anchors (edited, removed, truncated entries)."

    def add_arguments(self, parser):
        parser.add_argument("--checkpoint", help="file with the last verified entry (id and hash), updated on success")
        parser.add_argument("--anchors", help="directory of signed checkpoints (default: AUDIT_ANCHOR_DIR)")

    def handle(self, *args, checkpoint=None, anchors=None, **options):
        from regulator.models import AuditEntry

        directory = anchor_dir(anchors)
        problems, found = verify_log(directory)
        if found:
            self.stdout.write(f"{len(found)} signed anchor(s) in {directory} checked")
        else:
            self.stdout.write(f"no anchors in {directory}: a truncated log cannot be detected (run anchor_audit)")
        if checkpoint:
            problems += self._check_checkpoint(Path(checkpoint))
        if not problems:
            last = AuditEntry.objects.order_by("-id").values("id", "entry_hash").first()
            if checkpoint and last:
                Path(checkpoint).write_text(json.dumps({"id": last["id"], "hash": last["entry_hash"]}))
            self.stdout.write(self.style.SUCCESS(f"OK: {AuditEntry.objects.count()} entries, chain intact"))
            return
        for problem in problems:
            self.stderr.write(f"entry {problem.entry_id}: {problem.reason}")
        raise CommandError(f"audit chain BROKEN: {len(problems)} problem(s)", returncode=1)

    def _check_checkpoint(self, path: Path) -> list[ChainProblem]:
        from regulator.audit import PRUNE_EVENT, pruned_anchors
        from regulator.models import AuditEntry

        if not path.exists():
            return []
        try:
            saved = json.loads(path.read_text())
            entry_id, entry_hash = int(saved["id"]), str(saved["hash"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"checkpoint {path} is unreadable: {exc}") from exc
        current = AuditEntry.objects.filter(id=entry_id).values_list("entry_hash", flat=True).first()
        if current == entry_hash:
            return []
        if current is None and (
            entry_hash in pruned_anchors()
            or AuditEntry.objects.filter(event=PRUNE_EVENT, detail__through_id__gte=entry_id).exists()
        ):
            return []  # removed by an audited retention prune
        reason = "missing" if current is None else "changed"
        return [ChainProblem(entry_id, f"the checkpointed entry is {reason}: the log was truncated or rewritten")]
