"""Recompute a draw from its stored seed and snapshot and compare hashes; exit 1 when anything differs."""

from django.core.management.base import BaseCommand, CommandError

from enforcement import services
from enforcement.models import Draw


class Command(BaseCommand):
    help = "Verify a draw: recompute it from seed + snapshot and check the SM3 hashes and the SM2 signature."

    def add_arguments(self, parser):
        parser.add_argument("draw", type=int, help="draw id")

    def handle(self, *args, draw, **options):
        try:
            obj = Draw.objects.select_related("plan").get(pk=draw)
        except Draw.DoesNotExist:
            raise CommandError(f"draw {draw} does not exist")
        problems = services.verify_draw(obj)
        self.stdout.write(f"draw {obj.pk} of plan {obj.plan_id} “{obj.plan.name}”, seed {obj.seed}")
        self.stdout.write(f"  snapshot SM3 {obj.snapshot_hash}")
        self.stdout.write(f"  result SM3   {obj.result_hash}")
        if problems:
            for problem in problems:
                self.stderr.write(self.style.ERROR(f"  MISMATCH: {problem}"))
            raise CommandError(f"draw {obj.pk} does NOT verify ({len(problems)} problem(s))")
        self.stdout.write(
            self.style.SUCCESS("  OK: recomputed result and hashes match" + ("" if obj.signature else "; unsigned"))
        )
