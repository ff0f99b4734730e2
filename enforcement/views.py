"""HTML pages: plans and draws for section heads, inspections and documents for inspectors,
credit and the dishonesty list, and the public (no login) publication of draws and results."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from enforcement import selectors, services
from enforcement import signing as sm2
from enforcement.choices import CreditGrade, DrawStatus, InspectionStatus, ListingStatus, RepairStatus, RiskKey
from enforcement.drawing import UNASSIGNED_REASONS
from enforcement.forms import (
    CompleteForm,
    ConflictForm,
    CreditEventForm,
    DocumentForm,
    ListingForm,
    PhotoForm,
    PlanForm,
    RedrawForm,
    RepairApplyForm,
    RepairDecideForm,
)
from enforcement.models import InspectorProfile, RepairApplication
from regulator import scoping, uploads
from regulator.errors import DomainError
from regulator.models import Region, User
from regulator.search import text_q


def _regulator_required(request):
    if not (request.user.is_superuser or request.user.is_regulator):
        raise PermissionDenied


def _error(request, exc: DomainError):
    messages.error(request, exc.message)


def _team_names(user_ids) -> dict[int, str]:
    return {u.pk: u.display_name for u in User.objects.filter(pk__in=user_ids)}


@login_required
def plans(request):
    _regulator_required(request)
    qs = (
        selectors.plans_visible_to(request.user)
        .order_by("-period_start", "-id")
        .annotate(
            n_draws=Count("draws", distinct=True),
            n_done=Count("inspections", filter=Q(inspections__status=InspectionStatus.COMPLETED), distinct=True),
            n_planned=Count("inspections", filter=Q(inspections__status=InspectionStatus.PLANNED), distinct=True),
        )
    )
    status = request.GET.get("status", "")
    if status:
        qs = qs.filter(status=status)
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    mine = (
        selectors.inspections_visible_to(request.user)
        .filter(team=request.user, status=InspectionStatus.PLANNED)
        .order_by("date")[:20]
    )
    return render(
        request,
        "enforcement/plans.html",
        {"page": page, "status": status, "can_manage": selectors.can_manage_plans(request.user), "mine": mine},
    )


def _regions_for(user):
    if user.is_superuser:
        return Region.objects.all()
    return Region.objects.filter(pk__in=scoping.jurisdiction_region_ids(user), level__lte=3)


@login_required
def plan_create(request):
    if not selectors.can_manage_plans(request.user):
        raise PermissionDenied
    regions = _regions_for(request.user)
    form = PlanForm(request.POST or None, regions=regions, initial={"jurisdiction": request.user.jurisdiction_id})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            plan = services.plan_create(user=request.user, **data)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("检查计划已创建"))
            return redirect("enforcement:plan_detail", pk=plan.pk)
    table = services.frequency_table()
    frequency = [(grade, [table[(grade, risk)] for risk in RiskKey.values]) for grade in CreditGrade.values]
    return render(
        request,
        "enforcement/plan_form.html",
        {"form": form, "frequency": frequency, "risks": RiskKey.choices},
    )


@login_required
def plan_detail(request, pk):
    _regulator_required(request)
    plan = get_object_or_404(selectors.plans_visible_to(request.user), pk=pk)
    draws = list(plan.draws.select_related("drawn_by").order_by("-sequence"))
    current = next((d for d in draws if d.status == DrawStatus.CURRENT), None)
    inspections = []
    unassigned = []
    if current is not None:
        inspections = list(
            current.inspections.select_related("enterprise", "leader").prefetch_related("team").order_by("date", "id")
        )
        result = json.loads(current.result)
        names = {}
        from enterprises.models import Enterprise

        names = dict(Enterprise.objects.filter(pk__in=[e for e, _r in result["unassigned"]]).values_list("id", "name"))
        unassigned = [(names.get(e, e), UNASSIGNED_REASONS.get(r, r)) for e, r in result["unassigned"]]
        strata = result["strata"]
        capped = len(result["capped"])
        due = len(result["due"])
    else:
        strata, capped, due = [], 0, 0
    return render(
        request,
        "enforcement/plan_detail.html",
        {
            "plan": plan,
            "draws": draws,
            "current": current,
            "inspections": inspections,
            "unassigned": unassigned,
            "strata": strata,
            "capped": capped,
            "due": due,
            "can_manage": selectors.can_manage_plans(request.user),
            "redraw_form": RedrawForm(),
        },
    )


@login_required
@require_POST
def plan_draw(request, pk):
    plan = get_object_or_404(selectors.plans_visible_to(request.user), pk=pk)
    reason = request.POST.get("reason", "")
    try:
        draw = services.draw_plan(plan=plan, user=request.user, reason=reason)
    except DomainError as exc:
        _error(request, exc)
    else:
        messages.success(
            request, _("抽取完成：抽中%(n)s家企业，随机种子 %(seed)s") % {"n": draw.selected_count, "seed": draw.seed}
        )
    return redirect("enforcement:plan_detail", pk=plan.pk)


@login_required
@require_POST
def plan_close(request, pk):
    plan = get_object_or_404(selectors.plans_visible_to(request.user), pk=pk)
    try:
        services.plan_close(plan=plan, user=request.user)
    except DomainError as exc:
        _error(request, exc)
    return redirect("enforcement:plan_detail", pk=plan.pk)


@login_required
@require_POST
def draw_verify(request, pk):
    draw = get_object_or_404(selectors.draws_visible_to(request.user), pk=pk)
    problems = services.verify_draw(draw)
    if problems:
        messages.error(request, _("核验失败：") + "；".join(problems))
    else:
        messages.success(request, _("核验通过：按种子和快照重新计算的结果与记录一致，哈希和签名有效"))
    return redirect("enforcement:plan_detail", pk=draw.plan_id)


@login_required
def inspections(request):
    qs = selectors.inspections_visible_to(request.user).prefetch_related("team")
    status = request.GET.get("status", "")
    if status:
        qs = qs.filter(status=status)
    if request.GET.get("mine") and request.user.is_regulator:
        qs = qs.filter(team=request.user)
    page = Paginator(qs.order_by("-date", "-id"), 30).get_page(request.GET.get("page"))
    return render(
        request, "enforcement/inspections.html", {"page": page, "status": status, "statuses": InspectionStatus.choices}
    )


@login_required
def inspection_detail(request, pk):
    inspection = get_object_or_404(
        selectors.inspections_visible_to(request.user).prefetch_related("team", "findings", "photos"), pk=pk
    )
    can_act = request.user.is_regulator or request.user.is_superuser
    can_act = can_act and selectors.can_issue_for(request.user, inspection)
    items = inspection.plan.items if inspection.plan else []
    complete_form = CompleteForm(items=items, initial={"inspected_on": timezone.localdate()})
    if request.method == "POST" and can_act and inspection.status == InspectionStatus.PLANNED:
        complete_form = CompleteForm(request.POST, items=items)
        if complete_form.is_valid():
            data = complete_form.cleaned_data
            try:
                services.inspection_complete(
                    inspection=inspection,
                    user=request.user,
                    outcome=data["outcome"],
                    checklist=complete_form.checklist(),
                    findings=complete_form.parsed_findings(),
                    public_summary=data["public_summary"],
                    internal_notes=data["internal_notes"],
                    inspected_on=data["inspected_on"],
                    rectification_deadline=data["rectification_deadline"],
                    penalty_amount=data["penalty_amount"],
                    legal_basis=data["legal_basis"],
                )
            except DomainError as exc:
                complete_form.add_error(None, exc.message)
            else:
                messages.success(request, _("检查结果已录入"))
                return redirect("enforcement:inspection_detail", pk=inspection.pk)
    return _render_inspection(request, inspection, complete_form=complete_form)


def _render_inspection(request, inspection, *, complete_form=None, photo_form=None, status=200):
    can_act = request.user.is_regulator or request.user.is_superuser
    can_act = can_act and selectors.can_issue_for(request.user, inspection)
    if complete_form is None:
        items = inspection.plan.items if inspection.plan else []
        complete_form = CompleteForm(items=items, initial={"inspected_on": timezone.localdate()})
    documents = [{"doc": d, **services.document_verify(d)} for d in inspection.documents.order_by("issued_at")]
    return render(
        request,
        "enforcement/inspection_detail.html",
        {
            "inspection": inspection,
            "can_act": can_act,
            "is_regulator": request.user.is_regulator or request.user.is_superuser,
            "can_manage": selectors.can_manage_plans(request.user),
            "complete_form": complete_form,
            "photo_form": photo_form or PhotoForm(),
            "document_form": DocumentForm(),
            "documents": documents,
        },
        status=status,
    )


@login_required
@require_POST
def inspection_cancel(request, pk):
    inspection = get_object_or_404(selectors.inspections_visible_to(request.user), pk=pk)
    try:
        services.inspection_cancel(inspection=inspection, user=request.user, reason=request.POST.get("reason", ""))
    except DomainError as exc:
        _error(request, exc)
    else:
        messages.success(request, _("检查任务已取消"))
    return redirect("enforcement:inspection_detail", pk=inspection.pk)


@login_required
@require_POST
def inspection_photo(request, pk):
    inspection = get_object_or_404(selectors.inspections_visible_to(request.user), pk=pk)
    form = PhotoForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            services.inspection_add_photo(
                inspection=inspection,
                user=request.user,
                upload=form.cleaned_data["image"],
                caption=form.cleaned_data["caption"],
            )
        except DomainError as exc:
            if exc.status_code != 400:  # not allowed to add photos: no form to correct
                _error(request, exc)
                return redirect("enforcement:inspection_detail", pk=inspection.pk)
            form.add_error("image" if exc.details.get("field") == "image" else None, exc.message)
        else:
            messages.success(request, _("照片已上传"))
            return redirect("enforcement:inspection_detail", pk=inspection.pk)
    # A refused file: the page again, with the reason next to the field (400, not a redirect).
    inspection = (
        selectors.inspections_visible_to(request.user)
        .prefetch_related("team", "findings", "photos")
        .get(pk=inspection.pk)
    )
    return _render_inspection(request, inspection, photo_form=form, status=400)


@login_required
def photo_file(request, pk, photo_id):
    inspection = get_object_or_404(selectors.inspections_visible_to(request.user), pk=pk)
    photo = get_object_or_404(inspection.photos, pk=photo_id)
    return stream_photo(photo)


def stream_photo(photo):
    try:
        handle = photo.image.open("rb")
    except (FileNotFoundError, OSError):
        raise Http404
    return uploads.file_response(handle, filename=photo.image.name.rsplit("/", 1)[-1])


@login_required
@require_POST
def document_create(request, pk):
    inspection = get_object_or_404(selectors.inspections_visible_to(request.user), pk=pk)
    form = DocumentForm(request.POST)
    if form.is_valid():
        content = {k: v for k, v in form.cleaned_data.items() if k != "doc_type" and v}
        try:
            doc = services.document_issue(
                inspection=inspection, doc_type=form.cleaned_data["doc_type"], user=request.user, content=content
            )
        except DomainError as exc:
            _error(request, exc)
        else:
            messages.success(request, _("文书已生成：%(n)s") % {"n": doc.number})
    return redirect("enforcement:inspection_detail", pk=inspection.pk)


@login_required
def document_pdf(request, pk):
    doc = get_object_or_404(selectors.documents_visible_to(request.user), pk=pk)
    if not doc.pdf:
        raise Http404
    response = document_pdf_response(doc)
    response["X-Content-SM3"] = doc.sha3
    return response


def document_pdf_response(doc):
    """The issued PDF as a download (the one door for the page and the API)."""
    try:
        handle = doc.pdf.open("rb")
    except (FileNotFoundError, OSError):
        raise Http404
    return uploads.file_response(handle, filename=f"{doc.number}.pdf", content_type="application/pdf")


@login_required
def credit(request):
    qs = selectors.credit_scores_visible_to(request.user).order_by("score", "enterprise__name")
    grade = request.GET.get("grade", "")
    if grade:
        qs = qs.filter(grade=grade)
    q = request.GET.get("q", "").strip()
    if q:
        qs = qs.filter(text_q(q, "enterprise__name"))
    page = Paginator(qs, 30).get_page(request.GET.get("page"))
    listings = selectors.listings_visible_to(request.user).prefetch_related("repairs")
    pending = RepairApplication.objects.filter(listing__in=listings, status=RepairStatus.PENDING).select_related(
        "listing__enterprise"
    )
    counts = dict(
        selectors.credit_scores_visible_to(request.user)
        .values("grade")
        .annotate(n=Count("id"))
        .values_list("grade", "n")
    )
    return render(
        request,
        "enforcement/credit.html",
        {
            "page": page,
            "grade": grade,
            "q": q,
            "grades": CreditGrade.choices,
            "counts": [(g, label, counts.get(g, 0)) for g, label in CreditGrade.choices],
            "listings": listings.filter(status=ListingStatus.LISTED),
            "pending": pending,
            "can_manage": selectors.can_manage_plans(request.user),
            "decide_form": RepairDecideForm(),
            "repair_form": RepairApplyForm(),
        },
    )


@login_required
def credit_enterprise(request, enterprise_id):
    from enforcement.dossier import credit_summary
    from enterprises.models import Enterprise

    enterprise = get_object_or_404(scoping.scope(Enterprise.objects.all(), request.user), pk=enterprise_id)
    can_record = request.user.is_regulator or request.user.is_superuser
    event_form = CreditEventForm(request.POST or None, initial={"enterprise_id": enterprise.pk})
    if request.method == "POST" and can_record and event_form.is_valid():
        try:
            services.credit_record_event(
                enterprise=enterprise,
                kind=event_form.cleaned_data["kind"],
                occurred_on=event_form.cleaned_data["occurred_on"],
                description=event_form.cleaned_data["description"],
                user=request.user,
            )
            services.credit_recompute(enterprise_ids=[enterprise.pk])
        except DomainError as exc:
            event_form.add_error(None, exc.message)
        else:
            messages.success(request, _("信用事件已记录，信用分已重新计算"))
            return redirect("enforcement:credit_enterprise", enterprise_id=enterprise.pk)
    return render(
        request,
        "enforcement/credit_enterprise.html",
        {
            "enterprise": enterprise,
            "data": credit_summary(enterprise, request.user),
            "event_form": event_form,
            "listing_form": ListingForm(initial={"enterprise_id": enterprise.pk}),
            "can_record": can_record,
            "can_manage": selectors.can_manage_plans(request.user),
            "listings": enterprise.dishonesty_listings.prefetch_related("repairs"),
            "repair_form": RepairApplyForm(),
        },
    )


@login_required
@require_POST
def listing_create(request):
    from enterprises.models import Enterprise

    form = ListingForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("请填写列入事由"))
        return redirect("enforcement:credit")
    enterprise = get_object_or_404(
        scoping.scope(Enterprise.objects.all(), request.user), pk=form.cleaned_data["enterprise_id"]
    )
    try:
        services.listing_add(enterprise=enterprise, reason=form.cleaned_data["reason"], user=request.user)
    except DomainError as exc:
        _error(request, exc)
    else:
        messages.success(request, _("已列入严重失信名单"))
    return redirect("enforcement:credit_enterprise", enterprise_id=enterprise.pk)


@login_required
@require_POST
def repair_apply(request, listing_id):
    listing = get_object_or_404(selectors.listings_visible_to(request.user), pk=listing_id)
    form = RepairApplyForm(request.POST)
    if form.is_valid():
        try:
            services.repair_apply(listing=listing, user=request.user, statement=form.cleaned_data["statement"])
        except DomainError as exc:
            _error(request, exc)
        else:
            messages.success(request, _("信用修复申请已提交"))
    return redirect("enforcement:credit_enterprise", enterprise_id=listing.enterprise_id)


@login_required
@require_POST
def repair_decide(request, application_id):
    application = get_object_or_404(
        RepairApplication.objects.filter(listing__in=selectors.listings_visible_to(request.user)), pk=application_id
    )
    form = RepairDecideForm(request.POST)
    if form.is_valid():
        try:
            services.repair_decide(
                application=application,
                user=request.user,
                approve=form.cleaned_data["approve"],
                note=form.cleaned_data["note"],
            )
        except DomainError as exc:
            _error(request, exc)
        else:
            messages.success(request, _("已作出决定"))
    else:
        messages.error(request, _("请填写审核意见"))
    return redirect("enforcement:credit")


@login_required
def inspectors(request):
    _regulator_required(request)
    qs = selectors.inspectors_visible_to(request.user).annotate(
        n_conflicts=Count("conflicts", distinct=True),
        n_planned=Count(
            "user__enforcement_inspections",
            filter=Q(user__enforcement_inspections__status=InspectionStatus.PLANNED),
            distinct=True,
        ),
    )
    own = InspectorProfile.objects.filter(user=request.user).prefetch_related("conflicts__enterprise").first()
    form = ConflictForm(request.POST or None)
    if request.method == "POST" and own is not None and form.is_valid():
        from enterprises.models import Enterprise

        # Scoped like every other lookup: an id from another county reads as "does not exist".
        enterprise = (
            scoping.scope(Enterprise.objects.all(), request.user).filter(pk=form.cleaned_data["enterprise_id"]).first()
        )
        if enterprise is None:
            form.add_error("enterprise_id", _("企业不存在"))
        else:
            try:
                services.conflict_declare(
                    inspector=own, enterprise=enterprise, reason=form.cleaned_data["reason"], actor=request.user
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("回避申报已登记，今后抽取不会派您检查该企业"))
                return redirect("enforcement:inspectors")
    return render(
        request,
        "enforcement/inspectors.html",
        {"profiles": qs, "own": own, "form": form, "can_manage": selectors.can_manage_plans(request.user)},
    )


# --- public (一公开): no login, nothing private ----------------------------------------------------


def public_index(request):
    page = Paginator(selectors.public_draws(), 20).get_page(request.GET.get("page"))
    return render(request, "enforcement/public_index.html", {"page": page})


def public_draw(request, pk):
    draw = get_object_or_404(selectors.public_draws_all(), pk=pk)
    from enterprises.models import Enterprise

    result = json.loads(draw.result)
    enterprise_names = dict(
        Enterprise.objects.filter(pk__in=[e for e, _t in result["assignments"]]).values_list("id", "name")
    )
    names = _team_names({u for _e, team in result["assignments"] for u in team})
    visits = {
        i.enterprise_id: i
        for i in draw.inspections.only("enterprise_id", "date", "status", "outcome", "public_summary")
    }
    rows = []
    for eid, team in result["assignments"]:
        visit = visits.get(eid)
        done = visit is not None and visit.status == InspectionStatus.COMPLETED
        rows.append(
            {
                "enterprise": enterprise_names.get(eid, ""),
                "team": "、".join(names.get(u, "") for u in team),
                # An upcoming visit's date is not published: it would warn the enterprise in advance.
                "date": visit.date if done else None,
                "status": visit.get_status_display() if visit else "",
                "result": (visit.public_summary or visit.get_outcome_display()) if done else "",
            }
        )
    signature_ok = sm2.verify(draw.signed_payload(), draw.signature)
    return render(
        request,
        "enforcement/public_draw.html",
        {
            "draw": draw,
            "plan": draw.plan,
            "rows": rows,
            "strata": result["strata"],
            "signature_ok": signature_ok,
            "signed_payload": draw.signed_payload().decode("utf-8"),
            "siblings": draw.plan.draws.order_by("sequence"),
        },
    )


def public_draw_result(request, pk):
    """The exact canonical result JSON that was hashed: SM3 of this body is the published result hash."""
    draw = get_object_or_404(selectors.public_draws_all(), pk=pk)
    response = HttpResponse(draw.result.encode("utf-8"), content_type="application/json; charset=utf-8")
    uploads.harden_download(response, filename=f"draw-{draw.pk}-result.json")
    return response
