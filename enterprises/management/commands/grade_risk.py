"""(Re)grade every enterprise with the active risk model, or the rules when there is none."""

from __future__ import annotations

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Grade every enterprise's risk (red/orange/yellow/blue) and record the assessment history."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", help="grade as if now were this date (default: now)")

    def handle(self, *args, as_of=None, **options):
        from enterprises.management.commands.train_risk_model import parse_moment
        from enterprises.risk.grading import grade_enterprises

        summary = grade_enterprises(as_of=parse_moment(as_of) if as_of else None)
        self.stdout.write(self.style.SUCCESS(str(summary)))
