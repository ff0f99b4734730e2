"""HTML forms; they only parse input, the services decide."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from enforcement.choices import CreditEventKind, CreditGrade, DocumentType, FindingGrade, Outcome, RiskKey
from regulator.errors import InvalidInput
from regulator.models import Region


class PlanForm(forms.Form):
    name = forms.CharField(label=_("计划名称"), max_length=200)
    jurisdiction = forms.ModelChoiceField(label=_("辖区"), queryset=Region.objects.none())
    period_start = forms.DateField(label=_("开始日期"), widget=forms.DateInput(attrs={"type": "date"}))
    period_end = forms.DateField(label=_("结束日期"), widget=forms.DateInput(attrs={"type": "date"}))
    items = forms.CharField(
        label=_("检查事项（每行：依据 | 内容 | 方式）"),
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        initial=(
            "《中华人民共和国安全生产法》第四十一条 | 安全风险分级管控和隐患排查治理双重预防机制 | 现场检查、查阅资料"
        ),
    )
    industry_prefixes = forms.CharField(label=_("行业范围（代码，逗号分隔，空为全部）"), required=False)
    risk_filter = forms.MultipleChoiceField(
        label=_("风险等级范围"), choices=RiskKey.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    credit_filter = forms.MultipleChoiceField(
        label=_("信用等级范围"), choices=CreditGrade.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    strata = forms.CharField(
        label=_("抽查分层（每行：名称 | 信用等级 | 风险等级 | 行业代码 | 比例或#数量，* 表示不限）"),
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        initial="高风险 | * | red,orange | * | 0.3\n一般及低风险 | * | yellow,blue,unrated | * | 0.05",
    )
    default_ratio = forms.DecimalField(label=_("默认抽查比例"), min_value=0, max_value=1, initial="0.05")
    team_size = forms.IntegerField(label=_("每组人数"), min_value=2, max_value=6, initial=2)
    require_specialty = forms.BooleanField(label=_("要求组内至少一人专业匹配"), required=False, initial=True)

    def __init__(self, *args, regions=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["jurisdiction"].queryset = regions if regions is not None else Region.objects.all()

    def clean_items(self):
        items = []
        for line in self.cleaned_data["items"].splitlines():
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split("|")]
            basis, content, method = (parts + ["", "", ""])[:3]
            if not content:
                raise forms.ValidationError(_("每个检查事项都需要填写内容"))
            items.append({"basis": basis, "content": content, "method": method})
        return items

    def clean_industry_prefixes(self):
        return [p.strip() for p in self.cleaned_data["industry_prefixes"].replace("，", ",").split(",") if p.strip()]

    def clean_strata(self):
        strata = []
        for line in self.cleaned_data["strata"].splitlines():
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split("|")]
            if len(parts) != 5:
                raise forms.ValidationError(_("分层每行需要5列：名称 | 信用等级 | 风险等级 | 行业代码 | 比例或#数量"))
            label, credit, risk, industry, amount = parts

            def split(value):
                return (
                    [] if value in ("", "*") else [v.strip() for v in value.replace("，", ",").split(",") if v.strip()]
                )

            item = {
                "label": label,
                "credit": split(credit),
                "risk": split(risk),
                "industry": "" if industry == "*" else industry,
            }
            if amount.startswith("#"):
                item["count"] = amount[1:]
            else:
                item["ratio"] = amount
            strata.append(item)
        return strata

    def clean(self):
        data = super().clean()
        if data.get("period_start") and data.get("period_end") and data["period_end"] < data["period_start"]:
            self.add_error("period_end", _("结束日期不能早于开始日期"))
        return data


class RedrawForm(forms.Form):
    reason = forms.CharField(label=_("重新抽取原因"), max_length=300)


class CompleteForm(forms.Form):
    inspected_on = forms.DateField(label=_("检查日期"), widget=forms.DateInput(attrs={"type": "date"}))
    outcome = forms.ChoiceField(label=_("检查结论"), choices=Outcome.choices)
    findings = forms.CharField(
        label=_("发现的问题（每行一条：描述 | 部位 | 一般/重大）"),
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
    )
    rectification_deadline = forms.DateField(
        label=_("整改期限"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    penalty_amount = forms.DecimalField(label=_("罚款金额（元）"), required=False, min_value=0, decimal_places=2)
    legal_basis = forms.CharField(label=_("法律依据"), required=False, max_length=300)
    public_summary = forms.CharField(label=_("公示结果（将公开）"), required=False, max_length=300)
    internal_notes = forms.CharField(
        label=_("内部备注（不公开）"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, items=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.items = list(items)
        for index, item in enumerate(self.items):
            self.fields[f"check_{index}"] = forms.ChoiceField(
                label=item.get("content", ""),
                choices=[("pass", _("符合")), ("fail", _("不符合")), ("na", _("不适用"))],
                initial="pass",
            )
            self.fields[f"note_{index}"] = forms.CharField(label=_("说明"), required=False, max_length=500)

    def checklist_fields(self):
        return [(self[f"check_{i}"], self[f"note_{i}"]) for i in range(len(self.items))]

    def checklist(self):
        return [
            {
                "item": item.get("content", ""),
                "result": self.cleaned_data[f"check_{i}"],
                "note": self.cleaned_data.get(f"note_{i}", ""),
            }
            for i, item in enumerate(self.items)
        ]

    def parsed_findings(self):
        grades = {"重大": FindingGrade.MAJOR, "major": FindingGrade.MAJOR}
        result = []
        for line in self.cleaned_data.get("findings", "").splitlines():
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split("|")]
            description, location, grade = (parts + ["", "", ""])[:3]
            result.append({"description": description, "location": location, "grade": grades.get(grade, "ordinary")})
        return result


class PhotoForm(forms.Form):
    # Checked by regulator.uploads in the service; `accept` only narrows the picker.
    image = forms.FileField(
        label=_("现场照片"),
        allow_empty_file=True,
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    caption = forms.CharField(label=_("说明"), required=False, max_length=200)


class DocumentForm(forms.Form):
    doc_type = forms.ChoiceField(label=_("文书类型"), choices=DocumentType.choices)
    opinion = forms.CharField(
        label=_("复查意见（整改复查意见书）"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    place = forms.CharField(label=_("检查场所（现场检查记录）"), required=False, max_length=200)


class CreditEventForm(forms.Form):
    enterprise_id = forms.IntegerField(widget=forms.HiddenInput)
    kind = forms.ChoiceField(label=_("事件类型"), choices=CreditEventKind.choices)
    occurred_on = forms.DateField(label=_("发生日期"), widget=forms.DateInput(attrs={"type": "date"}))
    description = forms.CharField(label=_("说明"), max_length=300)


class ListingForm(forms.Form):
    enterprise_id = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(label=_("列入事由"), max_length=300)


class RepairApplyForm(forms.Form):
    statement = forms.CharField(label=_("修复申请说明（整改情况、承诺）"), widget=forms.Textarea(attrs={"rows": 3}))


class RepairDecideForm(forms.Form):
    approve = forms.TypedChoiceField(
        label=_("决定"), choices=[("1", _("批准修复")), ("0", _("驳回"))], coerce=lambda v: v == "1"
    )
    note = forms.CharField(label=_("审核意见"), max_length=300)


class ConflictForm(forms.Form):
    enterprise_id = forms.IntegerField(label=_("企业ID"))
    reason = forms.CharField(label=_("回避事由（亲属任职、曾任职等）"), max_length=200)


def invalid_to_form(form, exc: InvalidInput) -> None:
    form.add_error(None, exc.message)
