"""Demo only: print a user's current TOTP code (for trying admin logins without a phone).

Refused when PRODUCTION=1: there, the code must come from the user's own authenticator.
"""

import pyotp
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from regulator.audit import record_event


class Command(BaseCommand):
    help = "Demo only: print the current TOTP code of USERNAME's (possibly unconfirmed) device."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        if getattr(settings, "PRODUCTION", False):
            raise CommandError("refused: totp_code is a demo helper and is disabled when PRODUCTION=1")
        from regulator.models import TOTPDevice

        device = TOTPDevice.objects.filter(user__username=username).order_by("-created_at").first()
        if device is None:
            raise CommandError(f"{username} has no TOTP device yet: log in with the password first (enrolment page)")
        record_event(event="mfa.demo_code_printed", obj=device.user, detail={"confirmed": bool(device.confirmed_at)})
        self.stdout.write(pyotp.TOTP(device.secret).now())
