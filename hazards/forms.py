"""HTML forms of the hazard pages; they only parse input, the services decide."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from hazards.choices import CheckResult, HazardCategory, HazardGrade, HazardSource, MajorLevel

_DATE = forms.DateInput(attrs={"type": "date"})


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class PhotosField(forms.FileField):
    """Several photos in one input; each is validated by hazards.photos, not here."""

    widget = MultipleFileInput(attrs={"accept": "image/jpeg,image/png,image/webp", "capture": "environment"})

    def clean(self, data, initial=None):
        if not data:
            if self.required:
                raise forms.ValidationError(self.error_messages["required"])
            return []
        return list(data) if isinstance(data, list | tuple) else [data]


class PlanFields(forms.Form):
    measures = forms.CharField(label=_("整改措施"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    funds = forms.DecimalField(label=_("整改资金(元)"), required=False, min_value=0, max_digits=12, decimal_places=2)
    responsible_person = forms.CharField(label=_("整改责任人"), required=False, max_length=64)
    deadline = forms.DateField(label=_("整改期限"), required=False, widget=_DATE)
    emergency_plan = forms.CharField(
        label=_("应急预案/防范措施"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class ReportForm(PlanFields):
    enterprise = forms.ModelChoiceField(label=_("企业"), queryset=None)
    source = forms.ChoiceField(label=_("隐患来源"), choices=HazardSource.choices, initial=HazardSource.SELF_CHECK)
    description = forms.CharField(label=_("隐患描述"), widget=forms.Textarea(attrs={"rows": 3}))
    location = forms.CharField(label=_("隐患部位"), required=False, max_length=200)
    category = forms.ChoiceField(label=_("隐患类别"), choices=[("", "—"), *HazardCategory.choices], required=False)
    grade = forms.ChoiceField(label=_("隐患等级"), choices=HazardGrade.choices, initial=HazardGrade.ORDINARY)
    major_level = forms.TypedChoiceField(
        label=_("重大隐患级别"),
        choices=[("", "—"), *MajorLevel.choices],
        required=False,
        coerce=int,
        empty_value=None,
    )
    photos = PhotosField(label=_("现场照片"), required=False)

    def __init__(self, *args, enterprises, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["enterprise"].queryset = enterprises
        if enterprises.count() == 1:
            self.fields["enterprise"].initial = enterprises.first().pk
        # Plan fields are optional when reporting; they are fixed when rectification starts.
        for name in ("measures", "funds", "responsible_person", "emergency_plan"):
            self.fields.pop(name)


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("理由"), widget=forms.Textarea(attrs={"rows": 2}))


class CommentForm(forms.Form):
    comment = forms.CharField(label=_("意见"), required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ConfirmForm(CommentForm):
    grade = forms.ChoiceField(label=_("隐患等级"), choices=HazardGrade.choices)
    major_level = forms.TypedChoiceField(
        label=_("重大隐患级别"), choices=[("", "—"), *MajorLevel.choices], required=False, coerce=int, empty_value=None
    )


class StartRectificationForm(PlanFields):
    comment = forms.CharField(label=_("说明"), required=False)


class SubmitRectificationForm(forms.Form):
    note = forms.CharField(label=_("整改情况说明"), widget=forms.Textarea(attrs={"rows": 3}))
    cost_spent = forms.DecimalField(
        label=_("实际整改费用(元)"), required=False, min_value=0, max_digits=12, decimal_places=2
    )
    photos = PhotosField(label=_("整改后照片"), required=False)


class ExtensionRequestForm(forms.Form):
    new_deadline = forms.DateField(label=_("申请延期至"), widget=_DATE)
    reason = forms.CharField(label=_("延期理由"), widget=forms.Textarea(attrs={"rows": 2}))


class ExtensionDecisionForm(forms.Form):
    approve = forms.TypedChoiceField(
        label=_("审批结果"), choices=[("1", _("批准")), ("0", _("不批准"))], coerce=lambda v: v == "1"
    )
    comment = forms.CharField(label=_("审批意见"), required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ListSupervisionForm(forms.Form):
    supervisor = forms.ModelChoiceField(label=_("督办人员"), queryset=None, required=False)
    due = forms.DateField(label=_("督办期限"), widget=_DATE)
    comment = forms.CharField(label=_("督办要求"), required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, supervisors, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["supervisor"].queryset = supervisors


class PhotoUploadForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("照片类型"), choices=[("before", _("整改前")), ("after", _("整改后"))], initial="before"
    )
    photos = PhotosField(label=_("照片"))


class ChecklistAnswerForm(forms.Form):
    result = forms.ChoiceField(label=_("结果"), choices=CheckResult.choices, widget=forms.RadioSelect)
    note = forms.CharField(label=_("说明"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    grade = forms.ChoiceField(label=_("如不合格，隐患等级"), choices=HazardGrade.choices, initial="ordinary")
    photos = PhotosField(label=_("照片"), required=False)


class ChecklistTemplateForm(forms.Form):
    name = forms.CharField(label=_("检查表名称"), max_length=128)
    industry = forms.ModelChoiceField(label=_("适用行业"), queryset=None, required=False, empty_label=_("全部行业"))
    cycle_days = forms.IntegerField(label=_("检查周期(天)"), min_value=1, max_value=3660, initial=30)
    items = forms.CharField(
        label=_("检查项"),
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_("每行一项：检查内容 | 检查依据 | 类别代码(可选，如 equipment、fire)"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from enterprises.models import Industry

        self.fields["industry"].queryset = Industry.objects.filter(level__lte=2).order_by("code")

    def clean_items(self):
        items = []
        for n, line in enumerate(self.cleaned_data["items"].splitlines(), start=1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split("|")]
            category = parts[2] if len(parts) > 2 else ""
            if category and category not in HazardCategory.values:
                raise forms.ValidationError(_("第 %(n)s 行的类别代码不正确：%(c)s") % {"n": n, "c": category})
            items.append({"text": parts[0], "basis": parts[1] if len(parts) > 1 else "", "category": category})
        if not items:
            raise forms.ValidationError(_("请至少填写一项"))
        return items
