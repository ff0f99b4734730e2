"""Mark overdue hazards and escalate them (principal, park, county); safe to run repeatedly."""

from django.core.management.base import BaseCommand

from hazards.services import escalate_overdue


class Command(BaseCommand):
    help = "Mark overdue hazards and escalate them by days overdue; each step is notified once."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=2000)

    def handle(self, *args, batch_size, **options):
        summary = escalate_overdue(batch_size=batch_size)
        tiers = ", ".join(f"tier {tier}: {count}" for tier, count in summary["escalated"].items())
        self.stdout.write(
            f"marked overdue: {summary['marked']}, no longer overdue: {summary['unmarked']}, "
            f"escalated ({tiers}), notifications: {summary['notified']}"
        )
