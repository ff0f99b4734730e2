"""manage.py import_enterprises FILE: upsert enterprises by USCC from a CSV or XLSX file."""

from __future__ import annotations

import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from enterprises.importing import EnterpriseImporter


class _DryRun(Exception):
    pass


class Command(BaseCommand):
    help = (
        "Upsert enterprises by USCC from CSV/XLSX (Chinese or English headers). Reports created / updated / "
        "unchanged / rejected with the row number and reason of each rejected row."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--user", help="username recorded as the author of the changes")
        parser.add_argument("--dry-run", action="store_true", help="validate and count, then roll everything back")
        parser.add_argument("--no-progress", action="store_true", help="never show the progress bar")

    def handle(self, *args, file, user=None, dry_run=False, no_progress=False, **options):
        from regulator.models import User

        author = None
        if user:
            author = User.objects.filter(username=user).first()
            if author is None:
                raise CommandError(f"no such user: {user}")
        importer = EnterpriseImporter(user=author, progress=False if no_progress else None, stream=self.stderr)
        started = time.monotonic()
        try:
            if dry_run:
                try:
                    with transaction.atomic():
                        importer.run(file)
                        raise _DryRun
                except _DryRun:
                    pass
            else:
                importer.run(file)
        except FileNotFoundError as exc:
            raise CommandError(f"file not found: {file}") from exc
        except ValidationError as exc:
            raise CommandError("；".join(exc.messages)) from exc
        report = importer.report
        elapsed = time.monotonic() - started
        if report.unknown_columns:
            self.stdout.write(f"忽略未识别的列 (ignored columns): {', '.join(report.unknown_columns)}")
        for number, code, reason in report.rejected:
            self.stdout.write(f"  第{number}行 (row {number}) {code or '-'}: {reason}")
        summary = (
            f"{'[dry run] ' if dry_run else ''}新增 created {report.created}, 更新 updated {report.updated}, "
            f"未变 unchanged {report.unchanged}, 拒绝 rejected {len(report.rejected)} ({elapsed:.1f} s)"
        )
        self.stdout.write(self.style.WARNING(summary) if report.rejected else self.style.SUCCESS(summary))
