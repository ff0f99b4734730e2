"""One FilterSet for hazards, shared by the regulator list page and the API."""

from __future__ import annotations

import django_filters
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from hazards.choices import OPEN_STATES, OVERDUE_STATES, HazardCategory, HazardGrade, HazardSource, HazardStatus
from hazards.models import Hazard
from regulator.models import Region
from regulator.search import text_q

_BOOL_CHOICES = (("1", _("是")), ("0", _("否")))


class HazardFilterSet(django_filters.FilterSet):
    region = django_filters.CharFilter(label=_("区划代码"), method="filter_region")
    enterprise = django_filters.NumberFilter(field_name="enterprise_id", label=_("企业"))
    status = django_filters.MultipleChoiceFilter(choices=HazardStatus.choices, label=_("状态"), distinct=False)
    open = django_filters.ChoiceFilter(choices=_BOOL_CHOICES, label=_("未销号"), method="filter_open")
    grade = django_filters.ChoiceFilter(choices=HazardGrade.choices, label=_("等级"))
    source = django_filters.ChoiceFilter(choices=HazardSource.choices, label=_("来源"))
    category = django_filters.ChoiceFilter(choices=HazardCategory.choices, label=_("类别"))
    overdue = django_filters.ChoiceFilter(choices=_BOOL_CHOICES, label=_("逾期"), method="filter_overdue")
    listed = django_filters.ChoiceFilter(choices=_BOOL_CHOICES, label=_("挂牌督办"), method="filter_listed")
    q = django_filters.CharFilter(label=_("关键字"), method="filter_text")
    reported_from = django_filters.DateFilter(field_name="reported_at", lookup_expr="date__gte", label=_("上报起"))
    reported_to = django_filters.DateFilter(field_name="reported_at", lookup_expr="date__lte", label=_("上报止"))

    class Meta:
        model = Hazard
        fields: list[str] = []

    def filter_region(self, queryset, name, value):
        region = Region.objects.filter(code=value.strip()).first()
        if region is None:
            return queryset.none()
        return queryset.filter(enterprise__region_id__in=region.subtree().values("pk"))

    def filter_open(self, queryset, name, value):
        return queryset.filter(status__in=OPEN_STATES) if value == "1" else queryset.exclude(status__in=OPEN_STATES)

    def filter_overdue(self, queryset, name, value):
        q = Q(status__in=OVERDUE_STATES, due_date__lt=timezone.localdate())
        return queryset.filter(q) if value == "1" else queryset.exclude(q)

    def filter_listed(self, queryset, name, value):
        return queryset.filter(listed=value == "1")

    def filter_text(self, queryset, name, value):
        value = value.strip()[:100]
        if not value:
            return queryset
        return queryset.filter(text_q(value, "description", "location", "enterprise__name"))
