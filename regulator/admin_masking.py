"""The page's masking rule in the Django admin.

``MaskedAdminMixin`` goes before ``admin.ModelAdmin``. On a change page, a user without
``regulator.reveal_sensitive`` sees every sensitive or core field masked and read-only (it cannot
be read back through the form either); a user with it gets the editable plaintext, and that read
is audited like the page's reveal (``data.revealed`` with the fields). A value whose ciphertext
cannot be opened is shown read-only as "不可用" and written back untouched.
"""

from __future__ import annotations

from regulator.audit import record_event
from regulator.fields import SealedValueError
from regulator.security.classification import classify
from regulator.security.masking import can_reveal, mask_field


def _masked_display(field):
    def display(obj):
        return mask_field(obj, field.name) if obj is not None and obj.pk else ""

    display.short_description = field.verbose_name
    display.__name__ = f"masked_{field.name}"
    return display


class MaskedAdminMixin:
    def sensitive_fields(self) -> list:
        return [
            f
            for f in self.model._meta.concrete_fields
            if f.editable and not f.primary_key and classify(f).needs_masking
        ]

    def _unreadable(self, obj, field) -> bool:
        try:
            getattr(obj, field.attname)
        except SealedValueError:
            return True
        return False

    def _masked_in_form(self, request, obj) -> list:
        if obj is None or obj.pk is None:
            return []  # a new object: the user types the values, nothing is read back
        if not can_reveal(request.user):
            return self.sensitive_fields()
        return [f for f in self.sensitive_fields() if self._unreadable(obj, f)]

    def get_exclude(self, request, obj=None):
        excluded = list(super().get_exclude(request, obj) or [])
        return excluded + [f.name for f in self._masked_in_form(request, obj)]

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        return readonly + [f"masked_{f.name}" for f in self._masked_in_form(request, obj)]

    def __getattr__(self, name):
        # ``masked_<field>``: the read-only display the admin looks up on the ModelAdmin by name.
        if name.startswith("masked_"):
            wanted = name.removeprefix("masked_")
            for field in self.sensitive_fields():
                if field.name == wanted:
                    return _masked_display(field)
        raise AttributeError(name)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if change and obj is not None and request.method == "GET" and can_reveal(request.user):
            masked = {f.name for f in self._masked_in_form(request, obj)}
            shown = [
                f"{self.model._meta.label}.{f.name}"
                for f in self.sensitive_fields()
                if f.name not in masked and getattr(obj, f.attname)
            ]
            if shown:
                record_event(event="data.revealed", obj=obj, request=request, detail={"fields": shown, "via": "admin"})
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)
