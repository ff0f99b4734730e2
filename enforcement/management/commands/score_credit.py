"""Recompute every enterprise's safety credit score (the nightly job; also run by Celery beat)."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from enforcement import services


class Command(BaseCommand):
    help = "Recompute safety credit scores and grades for all enterprises (vectorised with pandas)."

    def add_arguments(self, parser):
        parser.add_argument("--date", default="", help="score as of this date (YYYY-MM-DD), default today")

    def handle(self, *args, date: str, **options):
        today = None
        if date:
            try:
                today = _parse(date)
            except ValueError:
                raise CommandError("--date must look like 2026-01-31")
        summary = services.credit_recompute(today=today)
        self.stdout.write(self.style.SUCCESS("credit recomputed: " + ", ".join(f"{k}={v}" for k, v in summary.items())))


def _parse(value: str):
    return date.fromisoformat(value)
