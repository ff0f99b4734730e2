"""FilterSets shared by the HTML list, the export and the API, so all three filter alike."""

from __future__ import annotations

import django_filters
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext_lazy as _

from enterprises import selectors, uscc
from enterprises.choices import HighRiskSector, LicenceType, OperatingStatus, RiskGrade
from enterprises.models import Enterprise, Industry, Licence, MajorHazardInstallation, licences_expiring_q
from enterprises.widgets import FastNullBooleanSelect, FastSelect, PlainModelChoiceIterator
from regulator.models import Park, Region
from regulator.search import text_q


def _regions(request):
    return selectors.regions_for_filter(request.user) if request else Region.objects.none()


def _parks(request):
    return selectors.parks_for_filter(request.user) if request else Park.objects.none()


class ScopedChoiceField(django_filters.fields.ModelChoiceField):
    iterator = PlainModelChoiceIterator
    widget = FastSelect


class ScopedChoiceFilter(django_filters.ModelChoiceFilter):
    field_class = ScopedChoiceField


class IndustryChoiceField(ScopedChoiceField):
    label_fields = ("code", "name", "level")

    def label_from_instance(self, obj):
        return self.label_from_values(obj.code, obj.name, obj.level)

    def label_from_values(self, code, name, level):
        return "\u3000" * (level - 1) + f"{code} {name}"


class IndustryFilter(django_filters.ModelChoiceFilter):
    field_class = IndustryChoiceField


def industry_subtree_q(industry: Industry, prefix: str = "industry__") -> Q:
    """An industry and everything below it: a section by its letter, a division/group by code prefix."""
    if industry.level == 1:
        return Q(**{f"{prefix}section": industry.code})
    return Q(**{f"{prefix}code__startswith": industry.code})


class EnterpriseFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(label=_("搜索"), method="filter_q", help_text=_("企业名称、曾用名或统一社会信用代码"))
    region = ScopedChoiceFilter(label=_("区划"), queryset=_regions, method="filter_region", help_text=_("含下级区划"))
    park = ScopedChoiceFilter(label=_("园区"), queryset=_parks)
    industry = IndustryFilter(
        label=_("行业"), queryset=Industry.objects.order_by("section", "code"), method="filter_industry"
    )
    is_key = django_filters.BooleanFilter(label=_("重点企业"), widget=FastNullBooleanSelect)
    high_risk_sector = django_filters.ChoiceFilter(
        label=_("高危行业"),
        choices=[c for c in HighRiskSector.choices if c[0]],
        empty_label=_("全部"),
        widget=FastSelect,
    )
    risk_grade = django_filters.ChoiceFilter(
        label=_("风险等级"), choices=RiskGrade.choices, empty_label=_("全部"), widget=FastSelect
    )
    operating_status = django_filters.ChoiceFilter(
        label=_("经营状态"), choices=OperatingStatus.choices, empty_label=_("全部"), widget=FastSelect
    )
    licence_expiring = django_filters.BooleanFilter(
        label=_("许可证即将到期"),
        method="filter_licence_expiring",
        help_text=_("90天内到期"),
        widget=FastNullBooleanSelect,
    )
    has_major_hazard = django_filters.BooleanFilter(
        label=_("有重大危险源"), method="filter_has_major_hazard", widget=FastNullBooleanSelect
    )
    ordering = django_filters.OrderingFilter(
        label=_("排序"),
        fields=(
            ("id", "created"),
            ("name", "name"),
            ("uscc", "uscc"),
            ("employees", "employees"),
            ("updated_at", "updated_at"),
        ),
        field_labels={
            "id": _("建档时间"),
            "name": _("名称"),
            "uscc": _("信用代码"),
            "employees": _("从业人数"),
            "updated_at": _("更新时间"),
        },
    )

    class Meta:
        model = Enterprise
        fields = ["q", "region", "park", "industry", "is_key", "high_risk_sector", "risk_grade", "operating_status"]

    def filter_q(self, queryset, name, value):
        value = (value or "").strip()
        if not value:
            return queryset
        condition = text_q(value, "name", "former_names_text")
        code = uscc.normalize(value)
        if code and len(code) >= 4 and code.isalnum():
            condition |= Q(uscc__startswith=code) if len(code) < 18 else Q(uscc=code)
        return queryset.filter(condition)

    def filter_region(self, queryset, name, value):
        return queryset.filter(region__path__startswith=value.path) if value else queryset

    def filter_industry(self, queryset, name, value):
        return queryset.filter(industry_subtree_q(value)) if value else queryset

    def filter_licence_expiring(self, queryset, name, value):
        if value is None:
            return queryset
        expiring = Exists(Licence.objects.filter(licences_expiring_q(), enterprise=OuterRef("pk")))
        return queryset.filter(expiring) if value else queryset.exclude(expiring)

    def filter_has_major_hazard(self, queryset, name, value):
        if value is None:
            return queryset
        has = Exists(MajorHazardInstallation.objects.filter(enterprise=OuterRef("pk")))
        return queryset.filter(has) if value else queryset.exclude(has)


class LicenceFilterSet(django_filters.FilterSet):
    licence_type = django_filters.ChoiceFilter(choices=LicenceType.choices)
    expiring = django_filters.BooleanFilter(method="filter_expiring", label=_("90天内到期"))
    expired = django_filters.BooleanFilter(method="filter_expired", label=_("已过期"))

    class Meta:
        model = Licence
        fields = ["enterprise", "licence_type"]

    def filter_expiring(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.filter(licences_expiring_q()) if value else queryset.exclude(licences_expiring_q())

    def filter_expired(self, queryset, name, value):
        from django.utils import timezone

        if value is None:
            return queryset
        today = timezone.localdate()
        return queryset.filter(expires_on__lt=today) if value else queryset.filter(expires_on__gte=today)


class InstallationFilterSet(django_filters.FilterSet):
    class Meta:
        model = MajorHazardInstallation
        fields = ["enterprise", "grade"]
