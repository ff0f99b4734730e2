"""Draw (or re-draw, with --reason) an inspection plan from the command line."""

from django.core.management.base import BaseCommand, CommandError

from enforcement import services
from enforcement.drawing import UNASSIGNED_REASONS
from enforcement.models import InspectionPlan
from regulator.errors import DomainError


class Command(BaseCommand):
    help = "Run the dual-random draw of an inspection plan (id). A re-draw needs --reason; the earlier draw is kept."

    def add_arguments(self, parser):
        parser.add_argument("plan", type=int, help="inspection plan id")
        parser.add_argument("--reason", default="", help="why the plan is drawn again (required for a re-draw)")
        parser.add_argument("--user", default="", help="username of the section head drawing (default: system)")

    def handle(self, *args, plan, reason, user, **options):
        from regulator.models import User

        try:
            plan_obj = InspectionPlan.objects.get(pk=plan)
        except InspectionPlan.DoesNotExist:
            raise CommandError(f"inspection plan {plan} does not exist")
        actor = None
        if user:
            actor = User.objects.filter(username=user).first()
            if actor is None:
                raise CommandError(f"user {user!r} does not exist")
        try:
            draw = services.draw_plan(plan=plan_obj, user=actor, reason=reason)
        except DomainError as exc:
            raise CommandError(exc.message)
        import json

        result = json.loads(draw.result)
        self.stdout.write(
            self.style.SUCCESS(f"draw {draw.pk} (#{draw.sequence}) of plan {plan_obj.pk} “{plan_obj.name}”")
        )
        self.stdout.write(f"  seed           {draw.seed}")
        self.stdout.write(f"  snapshot SM3   {draw.snapshot_hash}")
        self.stdout.write(f"  result SM3     {draw.result_hash}")
        self.stdout.write(f"  signed         {'yes' if draw.signature else 'no (regulator.signing unavailable)'}")
        self.stdout.write(
            f"  selected       {len(result['assignments'])} (due {len(result['due'])}, capped {len(result['capped'])})"
        )
        for stratum in result["strata"]:
            self.stdout.write(
                f"  stratum {stratum['label']}: {stratum['selected']}/{stratum['size']} (quota {stratum['quota']})"
            )
        for eid, why in result["unassigned"]:
            self.stdout.write(
                self.style.WARNING(f"  enterprise {eid} not assigned: {UNASSIGNED_REASONS.get(why, why)}")
            )
