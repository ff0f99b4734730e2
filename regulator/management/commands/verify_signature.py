"""Verify an SM2-SM3 signature (the JSON that sign_payload returned) over a file."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from regulator.signing import verify_payload


class Command(BaseCommand):
    help = "Verify FILE against SIGFILE (JSON from sign_payload); exit 1 when the signature does not hold."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("sigfile")
        parser.add_argument(
            "--public-key",
            help="verify against this public key (04||x||y hex) instead of the platform's trusted keys",
        )

    def handle(self, *args, file, sigfile, public_key=None, **options):
        try:
            data = Path(file).read_bytes()
            signature = json.loads(Path(sigfile).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read input: {exc}") from exc
        if isinstance(signature, dict) and isinstance(signature.get("signature"), dict):
            signature = signature["signature"]  # accept a document envelope {"signature": {...}}
        if verify_payload(data, signature, public_key=public_key):
            self.stdout.write(self.style.SUCCESS(f"OK: valid SM2-SM3 signature by key {signature.get('key_id')}"))
            return
        raise CommandError("INVALID: the signature does not match this file or is not from a trusted key", returncode=1)
