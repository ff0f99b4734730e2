"""Registry pages: the enterprise list (search, filters, export), the dossier, and the edit forms."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from enterprises import exporting, selectors, services
from enterprises.dossier import build_all
from enterprises.filtersets import EnterpriseFilterSet
from enterprises.forms import EnterpriseForm, InstallationForm, LicenceForm, SubstanceFormSet
from enterprises.models import Enterprise, Licence, MajorHazardInstallation
from regulator.audit import record_event
from regulator.uploads import harden_download

logger = logging.getLogger(__name__)
PAGE_SIZE = 25
UI = "ui"


def _can_edit(user) -> bool:
    return user.is_superuser or user.is_regulator


def _require_editor(user) -> None:
    if not _can_edit(user):
        raise PermissionDenied(_("只有监管部门人员可以维护企业档案"))


def _visible_enterprise(request, pk) -> Enterprise:
    try:
        return selectors.enterprise_for_dossier(request.user, pk)
    except Enterprise.DoesNotExist as exc:
        raise Http404(_("企业不存在或不在您的权限范围内")) from exc


def _filtered(request):
    return EnterpriseFilterSet(request.GET or None, queryset=selectors.enterprise_list(request.user), request=request)


@login_required
def enterprise_list(request):
    filterset = _filtered(request)
    qs = filterset.qs if filterset.is_bound else filterset.queryset
    if not request.GET.get("ordering"):
        # Newest first: an index walk on the primary key. Sorting tens of thousands of Chinese
        # names per page view costs ~80 ms on PostgreSQL; name order stays one click away.
        qs = qs.order_by("-id")
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "enterprises/list.html",
        {
            "filterset": filterset,
            "page": page,
            "querystring": params.urlencode(),
            "can_edit": _can_edit(request.user),
        },
    )


@login_required
def enterprise_export(request, fmt: str):
    filterset = _filtered(request)
    qs = filterset.qs if filterset.is_bound else filterset.queryset
    if filterset.is_bound and not filterset.is_valid():
        raise Http404
    count = qs.count()
    record_event(
        event="enterprise.exported",
        user=request.user,
        detail={"format": fmt, "rows": count, "filters": {k: v for k, v in request.GET.items() if k != "page"}},
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    filename = f"enterprises-{stamp}.{fmt}"
    if fmt == "csv":
        response = StreamingHttpResponse(exporting.csv_stream(qs), content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse(
            exporting.xlsx_bytes(qs),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    return harden_download(response, filename=filename)


def _request_context(request) -> dict:
    """What the context processors give a template (user, csrf_token, request, navigation, ...),
    computed once: each ``render_to_string(..., request=request)`` runs every processor again,
    so a dossier of nine sections paid for nine navigation menus and unread-notification counts."""
    from django.template import engines

    context = {}
    for processor in engines["django"].engine.template_context_processors:
        context.update(processor(request))
    return context


@login_required
def enterprise_detail(request, pk: int):
    enterprise = _visible_enterprise(request, pk)
    can_edit = _can_edit(request.user)
    rendered = []
    shared = _request_context(request)
    for section, data in build_all(enterprise, request.user):
        html = ""
        if "error" not in data:
            try:
                html = render_to_string(
                    section.template,
                    {**shared, "section": section, "data": data, "enterprise": enterprise, "can_edit": can_edit},
                )
            except Exception:  # another app's broken section must not take the whole dossier down
                logger.exception("dossier section %s could not be rendered", section.key)
        rendered.append({"key": section.key, "title": section.title, "html": html})
    return HttpResponse(
        render_to_string(
            "enterprises/detail.html",
            {**shared, "enterprise": enterprise, "sections": rendered, "can_edit": can_edit},
        )
    )


def _save_enterprise(request, form, enterprise=None):
    try:
        if enterprise is None:
            return services.enterprise_create(user=request.user, data=form.service_data(), source=UI)
        return services.enterprise_update(enterprise=enterprise, user=request.user, data=form.service_data(), source=UI)
    except ValidationError as exc:
        form.apply_errors(exc)
        return None


@login_required
def enterprise_create(request):
    _require_editor(request.user)
    form = EnterpriseForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        enterprise = _save_enterprise(request, form)
        if enterprise is not None:
            messages.success(request, _("已建档：%(name)s") % {"name": enterprise.name})
            return redirect("enterprises:detail", pk=enterprise.pk)
    return render(request, "enterprises/form.html", {"form": form, "title": _("新建企业档案")})


@login_required
def enterprise_edit(request, pk: int):
    enterprise = _visible_enterprise(request, pk)
    _require_editor(request.user)
    form = EnterpriseForm(request.POST or None, instance=enterprise, user=request.user)
    if request.method == "POST" and form.is_valid():
        saved = _save_enterprise(request, form, enterprise)
        if saved is not None:
            messages.success(request, _("已保存"))
            return redirect("enterprises:detail", pk=saved.pk)
    return render(
        request,
        "enterprises/form.html",
        {"form": form, "enterprise": enterprise, "title": _("编辑企业档案：%(n)s") % {"n": enterprise.name}},
    )


@login_required
def licence_form(request, pk: int, licence_id: int | None = None):
    enterprise = _visible_enterprise(request, pk)
    _require_editor(request.user)
    licence = get_object_or_404(Licence, pk=licence_id, enterprise=enterprise) if licence_id else None
    form = LicenceForm(request.POST or None, instance=licence)
    if request.method == "POST" and form.is_valid():
        data = {k: form.cleaned_data[k] for k in LicenceForm.Meta.fields}
        try:
            if licence is None:
                services.licence_create(enterprise=enterprise, user=request.user, data=data, source=UI)
            else:
                services.licence_update(licence=licence, user=request.user, data=data, source=UI)
        except ValidationError as exc:
            form.apply_errors(exc)
        else:
            messages.success(request, _("许可证已保存"))
            return redirect("enterprises:detail", pk=enterprise.pk)
    title = _("编辑许可证") if licence else _("新增许可证")
    return render(request, "enterprises/form.html", {"form": form, "enterprise": enterprise, "title": title})


@login_required
@require_POST
def licence_delete(request, pk: int, licence_id: int):
    enterprise = _visible_enterprise(request, pk)
    _require_editor(request.user)
    licence = get_object_or_404(Licence, pk=licence_id, enterprise=enterprise)
    services.licence_delete(licence=licence, user=request.user, source=UI)
    messages.success(request, _("许可证已删除"))
    return redirect("enterprises:detail", pk=enterprise.pk)


@login_required
def installation_form(request, pk: int, installation_id: int | None = None):
    enterprise = _visible_enterprise(request, pk)
    _require_editor(request.user)
    installation = (
        get_object_or_404(MajorHazardInstallation, pk=installation_id, enterprise=enterprise)
        if installation_id
        else None
    )
    initial = (
        [
            {
                k: getattr(s, k)
                for k in ("name", "cas_number", "substance_class", "actual_quantity", "critical_quantity", "beta")
            }
            for s in installation.substances.order_by("id")
        ]
        if installation
        else []
    )
    form = InstallationForm(request.POST or None, instance=installation, user=request.user)
    formset = SubstanceFormSet(request.POST or None, initial=initial, prefix="substances")
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        data = form.service_data()
        substances = [
            {k: v for k, v in f.cleaned_data.items() if k != "DELETE"}
            for f in formset.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        try:
            if installation is None:
                services.installation_create(
                    enterprise=enterprise, user=request.user, data=data, substances=substances, source=UI
                )
            else:
                services.installation_update(
                    installation=installation, user=request.user, data=data, substances=substances, source=UI
                )
        except ValidationError as exc:
            form.apply_errors(exc)
        else:
            messages.success(request, _("重大危险源已保存，R值与等级已重新计算"))
            return redirect("enterprises:detail", pk=enterprise.pk)
    title = _("编辑重大危险源") if installation else _("新增重大危险源")
    return render(
        request,
        "enterprises/installation_form.html",
        {"form": form, "formset": formset, "enterprise": enterprise, "title": title},
    )


@login_required
@require_POST
def installation_delete(request, pk: int, installation_id: int):
    enterprise = _visible_enterprise(request, pk)
    _require_editor(request.user)
    installation = get_object_or_404(MajorHazardInstallation, pk=installation_id, enterprise=enterprise)
    services.installation_delete(installation=installation, user=request.user, source=UI)
    messages.success(request, _("重大危险源已删除"))
    return redirect("enterprises:detail", pk=enterprise.pk)
