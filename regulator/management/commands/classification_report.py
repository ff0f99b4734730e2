"""Print every model field's data category and level; --strict fails on core fields in clear."""

import sys

from django.core.management.base import BaseCommand, CommandError

from regulator import exports
from regulator.security.classification import registry, unencrypted_core_fields


class Command(BaseCommand):
    help = "Data classification report: app.Model.field, category, level, encrypted, source."

    def add_arguments(self, parser):
        parser.add_argument("--csv", action="store_true", help="CSV on stdout")
        parser.add_argument("--level", help="only this level (public/internal/sensitive/core)")
        parser.add_argument("--strict", action="store_true", help="exit 1 if a core text field is not encrypted")

    def handle(self, *args, csv=False, level=None, strict=False, **options):
        rows = [r for r in registry() if not level or r["classification"].level == level]
        if csv:
            writer = _csv_writer(self.stdout)
            writer.writerow(["field", "category", "level", "encrypted", "source"])
        for r in rows:
            c = r["classification"]
            if csv:
                writer.writerow([r["path"], c.category, c.level, int(r["encrypted"]), c.source])
            else:
                enc = " SM4" if r["encrypted"] else ""
                self.stdout.write(f"{r['path']:<60} {c.category_label}\t{c.level_label}{enc}\t({c.source})")
        if not csv:
            counts = {}
            for r in rows:
                counts[r["classification"].level] = counts.get(r["classification"].level, 0) + 1
            self.stdout.write(f"\n{len(rows)} fields: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        problems = unencrypted_core_fields()
        for path in problems:
            self.stderr.write(f"CORE FIELD NOT ENCRYPTED: {path}")
        if strict and problems:
            raise CommandError(f"{len(problems)} core field(s) stored in clear", returncode=1)


def _csv_writer(stream):
    return exports.csv_writer(stream if hasattr(stream, "write") else sys.stdout)
