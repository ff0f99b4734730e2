"""Re-encrypt every EncryptedTextField of every model under the current (first) FIELD_KEYS key.

Idempotent (values already under the current key are left alone), batched by primary key, one
transaction per batch. A value that cannot be opened (tampered, swapped, unknown key) is reported
by model, row and field, audited, and makes the command exit 1; it is never silently skipped.
"""

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from regulator.audit import record_event
from regulator.crypto import CryptoError, keyring
from regulator.fields import EncryptedTextField, Sealed


def encrypted_fields():
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField) and f.model is model]
        if fields:
            yield model, fields


class Command(BaseCommand):
    help = "Re-encrypt all SM4 field values under the current key (the first in FIELD_KEYS)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--dry-run", action="store_true", help="count what would change, write nothing")

    def handle(self, *args, batch_size=500, dry_run=False, **options):
        ring = keyring()
        total_changed = 0
        failures = []
        for model, fields in encrypted_fields():
            changed, bad = self._rotate_model(model, fields, ring, batch_size, dry_run)
            total_changed += changed
            failures.extend(bad)
            self.stdout.write(f"{model._meta.label}: {changed} value(s) re-encrypted, {len(bad)} unreadable")
        if not dry_run:
            record_event(
                event="crypto.keys_rotated",
                outcome="failure" if failures else "success",
                detail={"key_id": ring.current_id, "changed": total_changed, "unreadable": len(failures)},
            )
        for label, pk, field, error in failures:
            self.stderr.write(f"UNREADABLE {label} pk={pk} field={field}: {error}")
        if failures:
            raise CommandError(f"{len(failures)} value(s) could not be decrypted; see above", returncode=1)
        self.stdout.write(self.style.SUCCESS(f"done: {total_changed} value(s) now under key {ring.current_id}"))

    def _rotate_model(self, model, fields, ring, batch_size, dry_run):
        names = [f.attname for f in fields]
        row_keys = sorted({f.row_key for f in fields})
        changed = 0
        bad = []
        last_pk = None
        prefix = f"{ring.current_id}$"
        manager = model._base_manager
        while True:
            qs = manager.order_by("pk").only("pk", *row_keys, *names)
            if last_pk is not None:
                qs = qs.filter(pk__gt=last_pk)
            batch = list(qs[:batch_size])
            if not batch:
                return changed, bad
            last_pk = batch[-1].pk
            with transaction.atomic():
                for obj in batch:
                    updates = {}
                    for field in fields:
                        token = obj.__dict__.get(field.attname)
                        if not isinstance(token, Sealed) or token.startswith(prefix):
                            continue
                        try:
                            plaintext = ring.open(token, field_aad(obj, field))
                        except CryptoError as exc:
                            bad.append((model._meta.label, obj.pk, field.name, str(exc)))
                            record_event(
                                event="crypto.decrypt_failed",
                                obj=obj,
                                outcome="failure",
                                detail={"field": field.name, "error": str(exc), "during": "rotate_keys"},
                            )
                            continue
                        updates[field.attname] = Sealed(ring.seal(plaintext, field_aad(obj, field)))
                    if updates and not dry_run:
                        # Compare-and-set on the old ciphertext: a concurrent edit wins, we do not clobber it.
                        guard = {name: obj.__dict__[name] for name in updates}
                        manager.filter(pk=obj.pk, **guard).update(**updates)
                    changed += len(updates)


def field_aad(obj, field):
    from regulator.fields import _aad

    return _aad(obj, field)
