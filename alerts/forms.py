"""Browser forms of the alerts pages: turning an alert into a hazard (转为隐患)."""

from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from hazards.choices import HazardCategory, HazardGrade


def alert_hazard_location(alert) -> str:
    """Where the hazard is: the channel's (or device's) installation place and the tag."""
    channel, device = alert.channel, alert.device
    place = (channel.location if channel else "") or (device.location if device else "")
    if channel is not None:
        return f"{place}（{channel.tag}）" if place else channel.tag
    return place or (device.name if device else "")


def alert_hazard_description(alert) -> str:
    """A first draft from the alert; the person converting it completes it."""
    facts = {
        "id": alert.pk,
        "kind": alert.get_kind_display(),
        "at": timezone.localtime(alert.raised_at).strftime("%Y-%m-%d %H:%M:%S"),
    }
    if alert.value is None:
        line = gettext("报警 #%(id)s，%(kind)s，%(at)s") % facts
    else:
        facts["value"] = f"{alert.value:g}{alert.unit}"
        facts["limit"] = f"{alert.limit:g}{alert.unit}" if alert.limit is not None else "-"
        line = gettext("报警 #%(id)s，%(kind)s，%(at)s，触发值 %(value)s，限值 %(limit)s") % facts
    return f"{alert.message}\n{line}"


class AlertToHazardForm(forms.Form):
    description = forms.CharField(
        label=_("隐患描述"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": _("请填写隐患描述")},
    )
    location = forms.CharField(label=_("隐患部位"), max_length=200, required=False)
    category = forms.ChoiceField(
        label=_("类别"), choices=[("", _("未分类"))] + list(HazardCategory.choices), required=False
    )
    grade = forms.ChoiceField(label=_("等级"), choices=HazardGrade.choices, initial=HazardGrade.ORDINARY)

    @classmethod
    def for_alert(cls, alert):
        return cls(
            initial={
                "description": alert_hazard_description(alert),
                "location": alert_hazard_location(alert),
                "grade": HazardGrade.ORDINARY,
            }
        )
