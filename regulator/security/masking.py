"""Masking (脱敏) of sensitive values in lists and exports, and audited reveals.

- ``mask_value(field, value)``: the masked form for a field whose level is sensitive or core
  (public and internal values pass through). Phones keep 3+4 digits, ID numbers 4+4, names the
  surname, e-mail the first letter and domain; core values are hidden entirely.
- ``mask_field(obj, name)``: the same rule read from an instance; a value whose ciphertext cannot
  be opened (tampered, swapped) shows ``UNAVAILABLE`` ("不可用") instead of failing the page,
  the API list or the export (the failure is audited once per row and request by the field).
- ``display_value(user, field, value, reveal=False)``: what a list or export shows the user;
  unmasked only when ``reveal`` is asked *and* the user holds ``regulator.reveal_sensitive``, and
  then the reveal is audited.
- ``reveal_field(request, obj, field_name)``: the one door to a plaintext value on demand (the
  reveal endpoint and the ``{% reveal_button %}`` tag use it). Other apps register how to scope
  their objects with ``register_revealable(Model, fields=[...], queryset=lambda user: ...)``.
"""

from __future__ import annotations

import re

from django.core.exceptions import PermissionDenied

from regulator.audit import record_event
from regulator.security.classification import Level, classify

REVEAL_PERMISSION = "regulator.reveal_sensitive"


class Unavailable(str):
    """The display of a value that could not be decrypted (never masked, never a real value)."""


UNAVAILABLE = Unavailable("不可用")

_PHONE = re.compile(r"^\+?\d[\d\- ]{6,}$")
_ID_NUMBER = re.compile(r"^\d{15}(\d{2}[\dXx])?$")


def _mask_middle(text: str, keep_start: int, keep_end: int) -> str:
    if len(text) <= keep_start + keep_end:
        return text[:1] + "*" * max(len(text) - 1, 1)
    return text[:keep_start] + "*" * (len(text) - keep_start - keep_end) + text[len(text) - keep_end :]


def mask_text(value: str, *, name_hint: str = "") -> str:
    """Mask one string by its shape (phone, ID number, e-mail, person name, anything else)."""
    text = str(value)
    if not text:
        return text
    compact = text.replace(" ", "").replace("-", "")
    if _ID_NUMBER.match(compact):
        return _mask_middle(compact, 4, 4)
    if _PHONE.match(text) and sum(c.isdigit() for c in text) >= 7:
        return _mask_middle(compact, 3, 4)
    if "@" in text:
        local, _, domain = text.partition("@")
        return f"{local[:1]}***@{domain}"
    if "name" in name_hint or (len(text) <= 4 and all("\u4e00" <= c <= "\u9fff" for c in text)):
        return text[:1] + "*" * (len(text) - 1)
    return _mask_middle(text, 1, 1) if len(text) > 2 else "*" * len(text)


def mask_value(field, value):
    """The value as a list or export may show it: masked when the field is sensitive or core."""
    if value in (None, "") or isinstance(value, Unavailable):
        return value
    classification = classify(field)
    if classification.level == Level.CORE:
        return "******"
    if classification.level == Level.SENSITIVE:
        name = field if isinstance(field, str) else field.name
        return mask_text(str(value), name_hint=name.rsplit(".", 1)[-1])
    return value


def read_field(obj, name: str):
    """``obj.name``, or ``UNAVAILABLE`` when its ciphertext cannot be opened (the field audits that)."""
    from regulator.fields import SealedValueError

    try:
        return getattr(obj, name)
    except SealedValueError:
        return UNAVAILABLE


def mask_field(obj, name: str):
    """The masked value of one field of an instance, by the field's classification."""
    return mask_value(obj._meta.get_field(name), read_field(obj, name))


def can_reveal(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.has_perm(REVEAL_PERMISSION))


def display_value(user, field, value, *, reveal: bool = False, obj=None, request=None):
    if reveal and can_reveal(user) and classify(field).needs_masking:
        record_event(
            event="data.revealed",
            user=user,
            obj=obj,
            request=request,
            detail={"field": field if isinstance(field, str) else f"{field.model._meta.label}.{field.name}"},
        )
        return value
    return mask_value(field, value)


class MaskedInputsMixin:
    """For a ModelForm: on an existing object, the inputs named in ``masked_inputs`` start empty
    with the masked value as placeholder for a user who may not reveal (or when the value cannot
    be decrypted); left empty they keep the stored value (``keep_unchanged``). A user who may
    reveal gets the plaintext, and that read is audited like the page's reveal. List the inputs
    as declared form fields, not in ``Meta.fields``: the ModelForm must not read them itself.
    """

    masked_inputs: tuple[str, ...] = ()

    def setup_masked_inputs(self, user) -> None:
        from django.utils.translation import gettext as _

        self.kept_inputs = set()
        instance = self.instance
        if instance.pk is None:
            return
        shown = []
        for name in self.masked_inputs:
            field = instance._meta.get_field(name)
            value = read_field(instance, name)
            if value and (isinstance(value, Unavailable) or not can_reveal(user)):
                self.initial[name] = ""
                self.fields[name].widget.attrs["placeholder"] = mask_value(field, value)
                self.fields[name].help_text = _("已脱敏；留空则保持原值，填写则替换")
                self.kept_inputs.add(name)
            else:
                self.initial[name] = value or ""
                if value:
                    shown.append(f"{instance._meta.label}.{name}")
        if shown and not self.is_bound:
            record_event(event="data.revealed", obj=instance, detail={"fields": shown, "via": "form"})

    def keep_unchanged(self, data: dict) -> dict:
        for name in getattr(self, "kept_inputs", ()):
            if not data.get(name):
                data.pop(name, None)
        return data


def audit_export(*, request=None, user=None, what: str, count: int, unmasked: bool = False, filters=None):
    """Call once per export (CSV, Excel, PDF): who exported what, how many rows, masked or not."""
    record_event(
        event="data.exported",
        user=user,
        request=request,
        detail={"what": what, "rows": count, "unmasked": unmasked, "filters": filters or {}},
    )


# --- reveal registry --------------------------------------------------------------------------

_REVEALABLE: dict[str, dict] = {}


def register_revealable(model, *, fields, queryset):
    """Allow ``fields`` of ``model`` to be revealed, within ``queryset(user)`` (the user's scope)."""
    _REVEALABLE[model._meta.label_lower] = {"model": model, "fields": set(fields), "queryset": queryset}


def _default_registrations():
    if _REVEALABLE.get("_defaults_done"):
        return
    from django.apps import apps

    from regulator.scoping import scope

    try:
        enterprise = apps.get_model("enterprises", "Enterprise")
        register_revealable(
            enterprise,
            fields=["principal_phone", "safety_officer_phone", "safety_manager_phone"],
            queryset=lambda user: scope(enterprise.objects.all(), user),
        )
        mhi = apps.get_model("enterprises", "MajorHazardInstallation")
        register_revealable(
            mhi,
            fields=["process_parameters"],
            queryset=lambda user: scope(mhi.objects.all(), user, prefix="enterprise__"),
        )
    except LookupError:
        pass
    _REVEALABLE["_defaults_done"] = True


def revealable(label_lower: str) -> dict | None:
    _default_registrations()
    entry = _REVEALABLE.get(label_lower)
    return entry if isinstance(entry, dict) else None


def reveal_field(request, obj, field_name: str):
    """Plaintext of one field for a user who may reveal it; audited. Raises PermissionDenied."""
    user = request.user
    if not can_reveal(user):
        record_event(
            event="data.reveal_refused",
            outcome="failure",
            obj=obj,
            request=request,
            detail={"field": field_name},
        )
        raise PermissionDenied("missing permission regulator.reveal_sensitive")
    value = read_field(obj, field_name)
    if isinstance(value, Unavailable):
        return value  # nothing is revealed; the failed decryption is audited by the field
    record_event(
        event="data.revealed",
        obj=obj,
        request=request,
        detail={"field": f"{obj._meta.label}.{field_name}"},
    )
    return value
