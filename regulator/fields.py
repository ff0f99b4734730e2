"""Model fields: SM4-GCM encrypted text bound to its table, row and field.

The row is identified by a UUID field (``row_key``, default ``uid``) that exists before the
first INSERT, so the binding also holds for new rows. Values are decrypted lazily on attribute
access: a ciphertext copied to another row, another field or tampered with raises
``SealedValueError``, never shows garbage. The failure is audited once per row and field within a
request (a list that touches the row twice, or a page of 50 rows that all fail, writes one entry
per row, not one per access); display code reads through ``masking.read_field``, which shows
"不可用" for that row instead of failing the whole list or export.
"""

from __future__ import annotations

import logging

from django.db import models
from django.db.models.query_utils import DeferredAttribute

from regulator.crypto import CryptoError, keyring

logger = logging.getLogger(__name__)


class SealedValueError(CryptoError):
    pass


class Sealed(str):
    """A ciphertext as loaded from the database, not yet opened."""


def _aad(instance: models.Model, field: EncryptedTextField) -> bytes:
    # The table that holds the column (not the instance's, which differs for a child model).
    row = getattr(instance, field.row_key)
    return f"{field.model._meta.db_table}|{row}|{field.column}".encode()


# Per instance: {attname: the token that failed}, so a second access neither retries nor re-audits.
_FAILED = "_sealed_failures"


class _EncryptedDescriptor(DeferredAttribute):
    """Opens the ciphertext on first access; a deferred field loads first (``.only()``/``.defer()``)."""

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = super().__get__(instance, owner)
        if isinstance(value, Sealed):
            failed = instance.__dict__.get(_FAILED, {})
            try:
                if failed.get(self.field.attname) == value:
                    raise CryptoError("already failed for this row")
                value = keyring().open(value, _aad(instance, self.field))
            except CryptoError as exc:
                if failed.get(self.field.attname) != value:
                    instance.__dict__.setdefault(_FAILED, {})[self.field.attname] = value
                    self._report(instance, exc)
                raise SealedValueError(
                    f"{instance._meta.label}.{self.field.name} of row {instance.pk} cannot be decrypted: {exc}"
                ) from exc
            instance.__dict__[self.field.attname] = value
        return value

    def __set__(self, instance, value):
        instance.__dict__[self.field.attname] = value

    def _report(self, instance, exc):
        from regulator.requestlocal import current_request

        request = current_request()
        if request is not None:
            # Another instance of the same row within this request was already reported.
            seen = request.__dict__.setdefault("_decrypt_failures_reported", set())
            key = (instance._meta.label, instance.pk, self.field.name)
            if key in seen:
                return
            seen.add(key)
        logger.error("decryption failed for %s.%s pk=%s: %s", instance._meta.label, self.field.name, instance.pk, exc)
        try:
            from regulator.audit import record_event

            record_event(
                event="crypto.decrypt_failed",
                obj=instance,
                outcome="failure",
                detail={"field": self.field.name, "error": str(exc)},
            )
        except Exception:  # auditing must never hide the original error
            logger.exception("could not audit a decryption failure")


class EncryptedTextField(models.TextField):
    """Text stored as SM4-GCM ciphertext; empty strings stay empty (nothing to protect)."""

    description = "SM4-GCM encrypted text"

    def __init__(self, *args, row_key: str = "uid", **kwargs):
        self.row_key = row_key
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.row_key != "uid":
            kwargs["row_key"] = self.row_key
        return name, path, args, kwargs

    def contribute_to_class(self, cls, name, *args, **kwargs):
        super().contribute_to_class(cls, name, *args, **kwargs)
        setattr(cls, self.attname, _EncryptedDescriptor(self))

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        return Sealed(value)

    def pre_save(self, model_instance, add):
        raw = model_instance.__dict__.get(self.attname)
        if raw in (None, "") or isinstance(raw, Sealed):
            return raw  # unchanged ciphertext is written back as it is
        return Sealed(keyring().seal(str(raw), _aad(model_instance, self)))

    def get_prep_value(self, value):
        # Only ciphertext (from pre_save or rotate_keys), empty values and expressions reach the
        # database. A plain string here comes from a lookup, ``update()`` or ``bulk_update()``,
        # which would either never match or store plaintext: refuse it loudly.
        if value in (None, "") or isinstance(value, Sealed) or hasattr(value, "resolve_expression"):
            return value
        raise ValueError(
            f"{self.model._meta.label}.{self.name} is encrypted: it cannot be filtered on or written with "
            "update()/bulk_update(); assign it on the instance and save()"
        )

    def value_to_string(self, obj):
        return getattr(obj, self.attname)


def unreadable_fields(instance: models.Model) -> list[str]:
    """Encrypted fields of ``instance`` whose ciphertext cannot be opened (for ``full_clean(exclude=)``:
    a row with one tampered value stays editable, that value is written back untouched)."""
    names = []
    for field in instance._meta.concrete_fields:
        if isinstance(field, EncryptedTextField):
            try:
                getattr(instance, field.attname)
            except SealedValueError:
                names.append(field.name)
    return names


def reseal(instance: models.Model, field: EncryptedTextField) -> bool:
    """Re-encrypt one value under the current key. Returns True when it changed."""
    token = instance.__dict__.get(field.attname)
    if not isinstance(token, Sealed) or keyring().key_id_of(token) == keyring().current_id:
        return False
    plaintext = getattr(instance, field.attname)  # opens and verifies
    instance.__dict__[field.attname] = plaintext
    return True
