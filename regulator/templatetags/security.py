"""``{% load security %}``: ``{{ obj|masked:"field" }}`` and ``{% reveal_button obj "field" %}``."""

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _

from regulator.security.masking import can_reveal, mask_value

register = template.Library()


@register.filter
def masked(obj, field_name):
    """The masked value of ``obj.field_name`` (by the field's classification)."""
    field = obj._meta.get_field(field_name)
    return mask_value(field, getattr(obj, field_name))


@register.simple_tag(takes_context=True)
def reveal_button(context, obj, field_name):
    """A "显示" button that fetches the plaintext (audited) for users with the reveal permission.

    Needs ``<script src="{% static 'security/reveal.js' %}"></script>`` on the page.
    """
    request = context.get("request")
    if request is None or not can_reveal(request.user):
        return ""
    url = reverse(
        "security:reveal",
        kwargs={"app_label": obj._meta.app_label, "model": obj._meta.model_name, "pk": obj.pk, "field": field_name},
    )
    return format_html(
        '<button type="button" class="link js-reveal" data-url="{}" data-target="reveal-{}-{}-{}">{}</button>',
        url,
        obj._meta.model_name,
        obj.pk,
        field_name,
        _("显示"),
    )


@register.simple_tag
def masked_span(obj, field_name):
    """The masked value in a span the reveal button can fill in."""
    field = obj._meta.get_field(field_name)
    return format_html(
        '<span id="reveal-{}-{}-{}">{}</span>',
        obj._meta.model_name,
        obj.pk,
        field_name,
        mask_value(field, getattr(obj, field_name)),
    )
