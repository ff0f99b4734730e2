"""The report page's form: a month (not in the future) and a region of the user's jurisdiction."""

from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from enterprises.reports.data import ReportInputError, last_month, parse_month
from regulator.models import Region


def report_regions(user):
    """Regions ``user`` may make a report for: their jurisdiction subtree, a park manager's park region."""
    if user.is_superuser:
        return Region.objects.order_by("path")
    if user.is_regulator and user.jurisdiction_id:
        return Region.objects.filter(path__startswith=user.jurisdiction.path).order_by("path")
    if user.is_park_manager and user.park_id:
        return Region.objects.filter(pk=user.park.region_id)
    return Region.objects.none()


def may_make_reports(user) -> bool:
    return bool(user.is_superuser or user.is_regulator or (user.is_park_manager and user.park_id))


class MonthlyReportForm(forms.Form):
    month = forms.CharField(
        label=_("报告月份"),
        max_length=7,
        widget=forms.TextInput(attrs={"type": "month", "pattern": r"\d{4}-\d{2}", "placeholder": "YYYY-MM"}),
    )
    region = forms.ChoiceField(label=_("辖区"))

    def __init__(self, *args, regions, **kwargs):
        super().__init__(*args, **kwargs)
        self.regions = list(regions)
        top_level = min((r.level for r in self.regions), default=0)
        self.fields["region"].choices = [
            (r.code, "\u3000" * (r.level - top_level) + f"{r.name}（{r.code}）") for r in self.regions
        ]
        self.fields["month"].widget.attrs["max"] = f"{timezone.localdate():%Y-%m}"
        if not self.is_bound:
            self.initial.setdefault("month", f"{last_month(timezone.localdate()):%Y-%m}")
            if self.regions:
                self.initial.setdefault("region", self.regions[0].code)

    def clean_month(self):
        try:
            return parse_month(self.cleaned_data["month"])
        except ReportInputError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean_region(self):
        code = self.cleaned_data["region"]
        return next(r for r in self.regions if r.code == code)
