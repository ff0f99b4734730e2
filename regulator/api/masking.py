"""The page's masking rule for API output: every sensitive or core model field a serializer shows.

``MaskingSerializerMixin`` goes before ``serializers.ModelSerializer``. Each readable field whose
source is a model field that ``classify`` marks sensitive or core leaves through ``mask_value``,
whatever serializer field type declared it. The plaintext leaves only for one object
(``GET .../<id>/?reveal=1``) to a user with ``regulator.reveal_sensitive``, and that read is
audited like the page's reveal (``data.revealed`` with the fields). ``reveal=1`` without the
permission answers 403 (and is audited as a refused reveal); lists are always masked.
A value whose ciphertext cannot be opened shows "不可用" and the rest of the response is served.
"""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist
from rest_framework import exceptions
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject

from regulator.audit import record_event
from regulator.security.classification import classify
from regulator.security.masking import Unavailable, can_reveal, mask_value, read_field

REVEAL_PARAM = "reveal"


def reveal_requested(request) -> bool:
    if request is None:
        return False
    return str(request.query_params.get(REVEAL_PARAM, "")).lower() in ("1", "true", "yes")


class MaskingSerializerMixin:
    def masked_fields(self) -> dict:
        """{output name: model field} of the readable fields the masking rule covers."""
        model = self.Meta.model
        found = {}
        for field in self._readable_fields:
            source = field.source or field.field_name
            if not source or "." in source or source == "*":
                continue
            try:
                model_field = model._meta.get_field(source)
            except FieldDoesNotExist:
                continue
            if getattr(model_field, "concrete", False) and classify(model_field).needs_masking:
                found[field.field_name] = model_field
        return found

    def _may_reveal(self) -> bool:
        request = self.context.get("request")
        if self.parent is not None or not reveal_requested(request):
            return False  # a list (or a nested object) is always masked
        if not can_reveal(request.user):
            record_event(event="data.reveal_refused", outcome="failure", request=request, detail={"via": "api"})
            raise exceptions.PermissionDenied("缺少“查看脱敏前的敏感数据”权限，不能使用 reveal 参数")
        return True

    def to_representation(self, instance):
        masked = self.masked_fields()
        reveal = self._may_reveal() if masked else False
        revealed = []
        ret = {}
        for field in self._readable_fields:
            model_field = masked.get(field.field_name)
            if model_field is not None:
                value = read_field(instance, model_field.attname)
                if reveal and not isinstance(value, Unavailable):
                    ret[field.field_name] = value
                    if value:
                        revealed.append(f"{model_field.model._meta.label}.{model_field.name}")
                else:
                    ret[field.field_name] = mask_value(model_field, value)
                continue
            # The rest exactly as rest_framework.serializers.Serializer.to_representation.
            try:
                attribute = field.get_attribute(instance)
            except SkipField:
                continue
            check_for_none = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
            ret[field.field_name] = None if check_for_none is None else field.to_representation(attribute)
        if revealed:
            record_event(
                event="data.revealed",
                obj=instance,
                request=self.context.get("request"),
                detail={"fields": revealed, "via": "api"},
            )
        return ret
