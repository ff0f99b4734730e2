"""manage.py monthly_report --month YYYY-MM --region CODE: write a jurisdiction's monthly report files."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from enterprises.reports.archive import archive_report
from enterprises.reports.data import ReportInputError, build_monthly_report, parse_month
from enterprises.reports.files import FORMATS, write_files


class Command(BaseCommand):
    help = (
        "Write the monthly supervision report (XLSX and/or PDF) of a region's subtree for a past or the "
        "current month. Runs as the system: no user scoping beyond the region. Prints the files written."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", required=True, help="the month, YYYY-MM (not in the future)")
        parser.add_argument("--region", required=True, help="region code (GB/T 2260), e.g. 320581")
        parser.add_argument("--format", choices=[*FORMATS, "both"], default="both", dest="fmt")
        parser.add_argument("--output", default=".", help="directory to write into (created if missing)")
        parser.add_argument(
            "--archive",
            action="store_true",
            help="store both formats in the archive the report page lists (what the monthly beat task does "
            "for every county) instead of --output",
        )
        parser.add_argument(
            "--language",
            default=settings.LANGUAGE_CODE,
            choices=[code for code, _name in settings.LANGUAGES],
            help="language of the report (default: %(default)s)",
        )

    def handle(self, *args, month, region, fmt, output, language, archive=False, **options):
        from regulator.models import Region

        with translation.override(language):
            try:
                first = parse_month(month)
            except ReportInputError as exc:
                raise CommandError(str(exc)) from exc
            node = Region.objects.filter(code=region.strip()).first()
            if node is None:
                raise CommandError(f"unknown region code: {region}")
            formats = FORMATS if fmt == "both" else (fmt,)
            try:
                if archive:
                    paths = archive_report(node, first)
                else:
                    paths = write_files(build_monthly_report(node, first, user=None), formats, Path(output))
            except OSError as exc:
                raise CommandError(f"cannot write the report: {exc}") from exc
        for path in paths:
            self.stdout.write(str(path.resolve()))
