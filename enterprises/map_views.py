"""The risk map (红橙黄蓝四色图): the page, its points/clusters endpoint and its boundaries endpoint.

Regulators and park managers only (enterprise users get 403: their own dossier shows their grade);
everything is scoped through enterprises.selectors / regulator.scoping.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from enterprises import geo_map
from enterprises.models import Industry
from enterprises.selectors import parks_for_filter
from regulator.models import Region

GRADE_CHOICES = [
    ("", _("全部")),
    ("red", _("重大风险（红）")),
    ("orange", _("较大风险（橙）")),
    ("yellow", _("一般风险（黄）")),
    ("blue", _("低风险（蓝）")),
    ("none", _("未评定")),
]
KEY_CHOICES = [("", _("全部")), ("1", _("仅重点企业")), ("0", _("非重点企业"))]


class RiskMapFilterForm(forms.Form):
    grade = forms.ChoiceField(label=_("风险等级"), choices=GRADE_CHOICES, required=False)
    section = forms.ChoiceField(label=_("行业门类"), required=False)
    park = forms.TypedChoiceField(label=_("园区"), required=False, coerce=int, empty_value=None)
    key = forms.ChoiceField(label=_("重点企业"), choices=KEY_CHOICES, required=False)
    region = forms.CharField(required=False, widget=forms.HiddenInput, max_length=12)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        sections = Industry.objects.filter(level=1).order_by("code").values_list("code", "name")
        self.fields["section"].choices = [("", _("全部")), *((code, f"{code} {name}") for code, name in sections)]
        parks = parks_for_filter(user).values_list("pk", "name")
        self.fields["park"].choices = [("", _("全部")), *parks]
        self.user = user

    def clean_region(self):
        code = self.cleaned_data.get("region") or None
        try:
            return geo_map.region_for(self.user, code)
        except Region.DoesNotExist:
            raise forms.ValidationError(_("区划不存在或不在您的辖区内")) from None

    def filters(self) -> geo_map.MapFilters:
        data = self.cleaned_data
        return geo_map.MapFilters(
            grade=data.get("grade") or "",
            section=data.get("section") or "",
            park_id=data.get("park"),
            is_key={"1": True, "0": False}.get(data.get("key") or ""),
            region=data.get("region") if self.data.get("region") else None,
        )


def _require_map_user(request) -> None:
    if not geo_map.can_view_map(request.user):
        raise PermissionDenied(_("风险地图仅对监管部门和园区管理人员开放"))


def _form(request) -> RiskMapFilterForm:
    return RiskMapFilterForm(request.GET, user=request.user)


def _bad_request(form) -> JsonResponse:
    errors = {field: [str(e) for e in errs] for field, errs in form.errors.items()}
    detail = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items())
    return JsonResponse({"detail": detail, "errors": errors}, status=400)


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """'min_lon,min_lat,max_lon,max_lat' in WGS-84 degrees, or ValueError with a reason."""
    parts = text.split(",")
    if len(parts) != 4:
        raise ValueError(_t("bbox 应为 最小经度,最小纬度,最大经度,最大纬度"))
    try:
        min_lon, min_lat, max_lon, max_lat = (float(p) for p in parts)
    except ValueError:
        raise ValueError(_t("bbox 中有非数字的值")) from None
    if not (-180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90):
        raise ValueError(_t("bbox 超出经纬度范围，或最小值不小于最大值"))
    return min_lon, min_lat, max_lon, max_lat


@login_required
@require_GET
def risk_map(request):
    _require_map_user(request)
    form = _form(request)
    region = None
    if form.is_valid():
        region = form.cleaned_data["region"]
    elif "region" in form.errors:
        raise Http404(form.errors["region"][0])
    crumbs = geo_map.breadcrumbs(request.user, region) if region else []
    legend = [(code, label) for code, label in GRADE_CHOICES if code]
    return render(
        request,
        "enterprises/risk_map.html",
        {"form": form, "region": region, "crumbs": crumbs, "legend": legend},
    )


@login_required
@require_GET
def risk_map_points(request):
    """Points or grid clusters inside ``bbox`` (default: the region's outline or the points' extent)."""
    _require_map_user(request)
    form = _form(request)
    if not form.is_valid():
        if "region" in form.errors:
            return JsonResponse({"detail": form.errors["region"][0]}, status=404)
        return _bad_request(form)
    qs = geo_map.map_enterprises(request.user, form.filters())
    if request.GET.get("bbox"):
        try:
            bbox = parse_bbox(request.GET["bbox"])
        except ValueError as exc:
            return JsonResponse({"detail": str(exc), "errors": {"bbox": [str(exc)]}}, status=400)
    else:
        region = form.cleaned_data["region"]
        boundary = getattr(region, "boundary", None) if region else None
        if boundary is not None:
            bbox = (boundary.min_lon, boundary.min_lat, boundary.max_lon, boundary.max_lat)
        else:
            bbox = geo_map.points_extent(qs) or (-180.0, -90.0, 180.0, 90.0)
            if bbox[0] == bbox[2] or bbox[1] == bbox[3]:
                bbox = (bbox[0] - 0.01, bbox[1] - 0.01, bbox[2] + 0.01, bbox[3] + 0.01)
    return JsonResponse(geo_map.map_points(qs, bbox), json_dumps_params={"ensure_ascii": False})


@login_required
@require_GET
def risk_map_boundaries(request):
    """The drilled-into region's outline and its children's, for ``echarts.registerMap``."""
    _require_map_user(request)
    try:
        region = geo_map.region_for(request.user, request.GET.get("region") or None)
    except Region.DoesNotExist:
        return JsonResponse({"detail": _t("区划不存在或不在您的辖区内")}, status=404)
    data = geo_map.boundaries_geojson(request.user, region)
    data["region"] = {"code": region.code, "name": region.name} if region else None
    data["crumbs"] = geo_map.breadcrumbs(request.user, region) if region else []
    return JsonResponse(data, json_dumps_params={"ensure_ascii": False})
