"""Delete raw readings and 1-minute aggregates past their retention."""

from django.core.management.base import BaseCommand

from devices.services import prune_readings


class Command(BaseCommand):
    help = "Delete raw readings and aggregates past DEVICES_RAW_RETENTION_DAYS / DEVICES_AGGREGATE_RETENTION_DAYS."

    def add_arguments(self, parser):
        parser.add_argument("--raw-days", type=int, default=None)
        parser.add_argument("--aggregate-days", type=int, default=None)

    def handle(self, *args, raw_days, aggregate_days, **options):
        counts = prune_readings(raw_days=raw_days, aggregate_days=aggregate_days)
        self.stdout.write(f"deleted {counts['readings']} readings and {counts['aggregates']} aggregates")
