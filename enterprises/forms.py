"""HTML forms of the registry; they validate input, the services write."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from enterprises import selectors, uscc
from enterprises.choices import SubstanceClass
from enterprises.filtersets import IndustryChoiceField
from enterprises.models import Enterprise, Licence, MajorHazardInstallation
from enterprises.services import ENTERPRISE_FIELDS
from enterprises.widgets import FastSelect, PlainModelChoiceField
from regulator.security.masking import MaskedInputsMixin


class RegionChoiceField(PlainModelChoiceField):
    def label_from_instance(self, obj):
        return "\u3000" * (obj.level - 1) + f"{obj.name}（{obj.code}）"


PHONE_INPUTS = ("principal_phone", "safety_officer_phone", "safety_manager_phone")


class EnterpriseForm(MaskedInputsMixin, forms.ModelForm):
    masked_inputs = PHONE_INPUTS

    uscc = forms.CharField(
        label=_("统一社会信用代码"), max_length=40, help_text=_("18位，可含大写字母；空格、小写和全角字符会自动规范")
    )
    former_names = forms.CharField(label=_("曾用名"), required=False, help_text=_("多个曾用名用“；”分隔"))
    principal_phone = forms.CharField(label=_("主要负责人电话"), max_length=32, required=False)
    safety_officer_phone = forms.CharField(label=_("安全专员电话"), max_length=32, required=False)
    safety_manager_phone = forms.CharField(label=_("安全管理人员电话"), max_length=32, required=False)

    class Meta:
        model = Enterprise
        fields = [name for name in ENTERPRISE_FIELDS if name not in PHONE_INPUTS]  # see MaskedInputsMixin
        widgets = {"region": FastSelect, "park": FastSelect, "industry": FastSelect}
        field_classes = {"region": RegionChoiceField, "park": PlainModelChoiceField, "industry": IndustryChoiceField}
        help_texts = {"high_risk_sector": _("留空时按所选行业自动判定")}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].queryset = selectors.regions_writable_by(user)
        self.fields["park"].queryset = selectors.parks_for_filter(user)
        self.fields["industry"].queryset = selectors.industries()
        if self.instance.pk:
            self.initial["former_names"] = "；".join(self.instance.former_names or [])
        self.setup_masked_inputs(user)
        self.sector_given = bool(self.data.get(self.add_prefix("high_risk_sector"))) if self.is_bound else False

    def clean_uscc(self):
        return uscc.validate(self.cleaned_data["uscc"])

    def clean_former_names(self):
        text = self.cleaned_data.get("former_names") or ""
        parts = text.replace(";", "；").replace("，", "；").replace(",", "；").split("；")
        return [p.strip() for p in parts if p.strip()]

    def _post_clean(self):
        # Model validation (uniqueness, park inside region, coordinates) runs in the service.
        pass

    def service_data(self) -> dict:
        data = self.keep_unchanged(
            {name: self.cleaned_data[name] for name in ENTERPRISE_FIELDS if name in self.cleaned_data}
        )
        if not self.sector_given and not (self.instance.pk and self.instance.high_risk_sector):
            data.pop("high_risk_sector", None)  # let the service derive it from the industry
        return data

    def apply_errors(self, exc: ValidationError) -> None:
        if hasattr(exc, "error_dict"):
            for name, errors in exc.message_dict.items():
                self.add_error(name if name in self.fields else None, errors)
        else:
            self.add_error(None, exc.messages)


class LicenceForm(forms.ModelForm):
    class Meta:
        model = Licence
        fields = ["licence_type", "number", "scope", "issued_on", "expires_on"]
        widgets = {
            "issued_on": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "expires_on": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "scope": forms.Textarea(attrs={"rows": 2}),
        }

    def _post_clean(self):
        pass

    def apply_errors(self, exc):
        EnterpriseForm.apply_errors(self, exc)


class InstallationForm(MaskedInputsMixin, forms.ModelForm):
    masked_inputs = ("process_parameters",)
    service_fields = [
        "name",
        "code",
        "people_within_500m",
        "process_parameters",
        "custodian_main",
        "custodian_technical",
        "custodian_operational",
    ]
    process_parameters = forms.CharField(
        label=_("工艺参数"), required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text=_("SM4 加密存储")
    )

    class Meta:
        model = MajorHazardInstallation
        fields = [
            "name",
            "code",
            "people_within_500m",
            "custodian_main",
            "custodian_technical",
            "custodian_operational",
        ]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.setup_masked_inputs(user)

    def service_data(self) -> dict:
        return self.keep_unchanged({k: self.cleaned_data[k] for k in self.service_fields if k in self.cleaned_data})

    def _post_clean(self):
        pass

    def apply_errors(self, exc):
        EnterpriseForm.apply_errors(self, exc)


class SubstanceForm(forms.Form):
    name = forms.CharField(label=_("危险化学品名称"), max_length=64)
    cas_number = forms.CharField(label=_("CAS号"), max_length=16, required=False)
    substance_class = forms.ChoiceField(label=_("危险性类别"), choices=SubstanceClass.choices)
    actual_quantity = forms.DecimalField(
        label=_("实际存在量 q (t)"), min_value=Decimal("0"), max_digits=12, decimal_places=3
    )
    critical_quantity = forms.DecimalField(
        label=_("临界量 Q (t)"), min_value=Decimal("0.001"), max_digits=12, decimal_places=3
    )
    beta = forms.DecimalField(
        label=_("校正系数 β"),
        required=False,
        max_digits=5,
        decimal_places=2,
        help_text=_("留空按 GB 18218-2018 表取值"),
    )


SubstanceFormSet = forms.formset_factory(SubstanceForm, extra=2, can_delete=True)
