"""Hazard pages: the enterprise's phone-first lists and forms, the regulator's filtered list and
detail with timeline and photos, self-inspection runs, and the permission-checked photo stream."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from enterprises.models import Enterprise
from hazards import forms, photos, policy, selectors, services
from hazards.choices import HazardAction, HazardStatus, RunStatus
from hazards.filtersets import HazardFilterSet
from hazards.models import ChecklistItem, ChecklistRun, ChecklistTemplate, HazardPhoto
from hazards.pagination import CappedPaginator
from regulator import uploads
from regulator.choices import REGULATOR_ROLES
from regulator.errors import DomainError
from regulator.models import Region, User
from regulator.scoping import region_scope_ids, scope


def _no_mlps(user):
    if user.is_mlps_admin and not user.is_superuser:
        raise PermissionDenied


def _get_hazard(request, pk):
    qs = selectors.hazards_visible_to(request.user).select_related("enterprise", "enterprise__region")
    return get_object_or_404(qs, pk=pk)


@login_required
def hazard_list(request):
    _no_mlps(request.user)
    user = request.user
    if user.is_enterprise_user:
        return _my_hazards(request)
    base = selectors.hazards_visible_to(user).select_related("enterprise", "enterprise__region")
    filterset = HazardFilterSet(request.GET or None, queryset=base)
    qs = filterset.qs.order_by("-reported_at", "-id")
    if request.GET.get("overdue") == "1":
        qs = qs.order_by("due_date", "id")  # most overdue first
    page = CappedPaginator(qs, 30).get_page(request.GET.get("page"))
    region_ids = region_scope_ids(user)
    regions = Region.objects.filter(level__lte=4)
    if region_ids is not None:
        regions = regions.filter(pk__in=region_ids)
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "hazards/list.html",
        {
            "filter": filterset,
            "page": page,
            "regions": regions.order_by("code")[:300],
            "indicators": selectors.cached_indicators(user),
            "querystring": params.urlencode(),
            "can_report": user.is_superuser or user.is_regulator or user.is_park_manager,
        },
    )


def _my_hazards(request):
    user = request.user
    enterprises = scope(Enterprise.objects.all(), user)
    groups = selectors.hazards_by_state(user)
    for items in groups.values():
        for h in items:
            h.actions_now = [HazardAction(a).label for a in policy.allowed_actions(h, user)]
    closed = selectors.hazards_visible_to(user).filter(status=HazardStatus.CLOSED).order_by("-closed_at")[:20]
    due = []
    for ent in enterprises[:10]:
        due.extend({**row, "enterprise": ent} for row in selectors.checklist_status_for_enterprise(ent))
    return render(
        request,
        "hazards/mine.html",
        {
            "groups": [(HazardStatus(s).label, s, items) for s, items in groups.items()],
            "closed": closed,
            "checklists": due,
            "enterprises": enterprises,
        },
    )


@login_required
def hazard_report_view(request):
    _no_mlps(request.user)
    enterprises = scope(Enterprise.objects.all(), request.user).order_by("name")
    if not request.user.is_enterprise_user and request.GET.get("enterprise"):
        enterprises = enterprises.filter(pk=request.GET.get("enterprise") if request.GET["enterprise"].isdigit() else 0)
    if request.method == "POST":
        form = forms.ReportForm(request.POST, request.FILES, enterprises=enterprises)
        if form.is_valid():
            data = form.cleaned_data
            try:
                hazard = services.hazard_report(
                    enterprise=data["enterprise"],
                    user=request.user,
                    source=data["source"],
                    description=data["description"],
                    location=data["location"],
                    category=data["category"],
                    grade=data["grade"],
                    major_level=data["major_level"],
                    photos=request.FILES.getlist("photos"),
                    deadline=data.get("deadline"),
                )
            except DomainError as exc:
                form.add_error(
                    exc.details.get("field") if exc.details.get("field") in form.fields else None, exc.message
                )
            else:
                messages.success(request, _("隐患已上报：%(code)s") % {"code": hazard.code})
                return redirect("hazards:detail", hazard.pk)
    else:
        initial = {}
        if request.user.is_regulator:
            initial["source"] = "inspection"
        form = forms.ReportForm(initial=initial, enterprises=enterprises)
    return render(request, "hazards/report.html", {"form": form})


def _action_forms(hazard, user):
    """The forms of the actions this user may take now, in workflow order."""
    allowed = policy.allowed_actions(hazard, user)
    result = []
    for action in allowed:
        result.append({"action": action, "label": HazardAction(action).label, "form": _blank_form(action, hazard)})
    return result


def _supervisors(hazard):
    region_codes = [c for c in hazard.enterprise.region.path.strip("/").split("/") if c]
    return User.objects.filter(
        role__in=list(REGULATOR_ROLES), is_active=True, jurisdiction__code__in=region_codes
    ).order_by("username")


def _blank_form(action, hazard, data=None, files=None):
    if action == HazardAction.CONFIRM:
        return forms.ConfirmForm(data, initial={"grade": hazard.grade, "major_level": hazard.major_level})
    if action in (HazardAction.DISMISS, HazardAction.FAIL_VERIFICATION):
        return forms.ReasonForm(data)
    if action == HazardAction.START_RECTIFICATION:
        return forms.StartRectificationForm(
            data,
            initial={
                "measures": hazard.measures,
                "funds": hazard.funds,
                "responsible_person": hazard.responsible_person,
                "deadline": hazard.deadline,
                "emergency_plan": hazard.emergency_plan,
            },
        )
    if action == HazardAction.SUBMIT_RECTIFICATION:
        return forms.SubmitRectificationForm(data, files)
    if action == HazardAction.VERIFY:
        return forms.CommentForm(data)
    if action == HazardAction.REQUEST_EXTENSION:
        return forms.ExtensionRequestForm(data)
    if action == HazardAction.DECIDE_EXTENSION:
        return forms.ExtensionDecisionForm(data)
    if action == HazardAction.LIST_SUPERVISION:
        return forms.ListSupervisionForm(data, supervisors=_supervisors(hazard))
    raise Http404


def _run_action(action, hazard, user, data, files):
    if action == HazardAction.CONFIRM:
        return services.hazard_confirm(hazard=hazard, user=user, **data)
    if action == HazardAction.DISMISS:
        return services.hazard_dismiss(hazard=hazard, user=user, reason=data["reason"])
    if action == HazardAction.START_RECTIFICATION:
        return services.hazard_start_rectification(hazard=hazard, user=user, **data)
    if action == HazardAction.SUBMIT_RECTIFICATION:
        return services.hazard_submit_rectification(
            hazard=hazard,
            user=user,
            note=data["note"],
            cost_spent=data.get("cost_spent"),
            photos=files.getlist("photos"),
        )
    if action == HazardAction.VERIFY:
        return services.hazard_verify(hazard=hazard, user=user, comment=data["comment"])
    if action == HazardAction.FAIL_VERIFICATION:
        return services.hazard_fail_verification(hazard=hazard, user=user, reason=data["reason"])
    if action == HazardAction.REQUEST_EXTENSION:
        return services.hazard_request_extension(hazard=hazard, user=user, **data)
    if action == HazardAction.DECIDE_EXTENSION:
        return services.hazard_decide_extension(hazard=hazard, user=user, **data)
    if action == HazardAction.LIST_SUPERVISION:
        return services.hazard_list_supervision(hazard=hazard, user=user, **data)
    raise Http404


@login_required
def hazard_detail(request, pk):
    _no_mlps(request.user)
    hazard = _get_hazard(request, pk)
    return _render_detail(request, hazard)


def _render_detail(request, hazard, failed_action=None, failed_form=None, status=200, upload_form=None):
    action_forms = _action_forms(hazard, request.user)
    if failed_action:
        for entry in action_forms:
            if entry["action"] == failed_action:
                entry["form"] = failed_form
                entry["open"] = True
    context = {
        "hazard": hazard,
        "timeline": selectors.hazard_timeline(hazard),
        "photos_before": hazard.photos.filter(kind="before"),
        "photos_after": hazard.photos.filter(kind="after"),
        "extensions": hazard.extensions.select_related("requested_by", "decided_by"),
        "escalations": hazard.escalations.all(),
        "action_forms": action_forms,
        "upload_form": (upload_form or forms.PhotoUploadForm())
        if policy.can_upload_photo(request.user, hazard)
        else None,
    }
    return render(request, "hazards/detail.html", context, status=status)


@login_required
@require_POST
def hazard_act(request, pk, action):
    _no_mlps(request.user)
    hazard = _get_hazard(request, pk)
    if action not in HazardAction.values or action == HazardAction.REPORT:
        raise Http404
    form = _blank_form(action, hazard, request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, _("请检查填写的内容"))
        return _render_detail(request, hazard, action, form, status=400)
    data = dict(form.cleaned_data)
    data.pop("photos", None)
    try:
        _run_action(action, hazard, request.user, data, request.FILES)
    except PermissionDenied as exc:
        messages.error(request, str(exc) or _("无权执行该操作"))
        return redirect("hazards:detail", hazard.pk)
    except DomainError as exc:
        field = exc.details.get("field")
        form.add_error(field if field in form.fields else None, exc.message)
        messages.error(request, exc.message)
        hazard.refresh_from_db()
        return _render_detail(request, hazard, action, form, status=exc.status_code)
    messages.success(request, _("已完成：%(action)s") % {"action": HazardAction(action).label})
    return redirect("hazards:detail", hazard.pk)


@login_required
@require_POST
def hazard_upload(request, pk):
    _no_mlps(request.user)
    hazard = _get_hazard(request, pk)
    form = forms.PhotoUploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            created = services.hazard_add_photos(
                hazard=hazard, user=request.user, files=request.FILES.getlist("photos"), kind=form.cleaned_data["kind"]
            )
        except PermissionDenied:
            messages.error(request, _("您无权为该隐患上传照片"))
            return redirect("hazards:detail", hazard.pk)
        except DomainError as exc:
            field = exc.details.get("field")
            form.add_error(
                field if field in form.fields else None, _("照片未保存：%(reason)s") % {"reason": exc.message}
            )
        else:
            messages.success(request, _("已上传 %(n)s 张照片") % {"n": len(created)})
            return redirect("hazards:detail", hazard.pk)
    # A refused file: the page again, with the reason next to the field (400, not a redirect).
    return _render_detail(request, hazard, status=400, upload_form=form)


def stream_photo(photo: HazardPhoto, *, thumb: bool = False):
    """Stream a stored photo with the type it was re-encoded to; the caller has checked visibility."""
    rel = photo.thumb_path if thumb else photo.path
    try:
        path = photos.resolve(rel)
        handle = path.open("rb")
    except (FileNotFoundError, OSError):
        raise Http404
    content_type = "image/jpeg" if thumb else photo.content_type
    return uploads.file_response(handle, filename=f"{photo.uid}{path.suffix}", content_type=content_type)


@login_required
def photo_view(request, uid, thumb=False):
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    photo = get_object_or_404(
        HazardPhoto.objects.filter(hazard__in=selectors.hazards_visible_to(request.user)), uid=uid
    )
    return stream_photo(photo, thumb=thumb)


# --- self-inspection -------------------------------------------------------------------------


@login_required
def checklists(request):
    """Enterprise: applicable checklists with next due dates. Regulator: overdue checklists."""
    _no_mlps(request.user)
    user = request.user
    if user.is_enterprise_user:
        if request.method == "POST":
            raise PermissionDenied
        rows = []
        for ent in scope(Enterprise.objects.all(), user).select_related("industry"):
            rows.extend({**row, "enterprise": ent} for row in selectors.checklist_status_for_enterprise(ent))
        return render(request, "hazards/checklists_enterprise.html", {"rows": rows})
    overdue = selectors.overdue_checklists(user)
    templates = ChecklistTemplate.objects.select_related("industry").prefetch_related("items")
    can_define = user.is_superuser or user.is_regulator
    form = None
    if can_define:
        form = forms.ChecklistTemplateForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                template = services.checklist_template_create(
                    user=user,
                    name=data["name"],
                    industry=data["industry"],
                    cycle_days=data["cycle_days"],
                    items=data["items"],
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("检查表已创建：%(name)s") % {"name": template.name})
                return redirect("hazards:checklists")
    elif request.method == "POST":
        raise PermissionDenied
    return render(
        request, "hazards/checklists_regulator.html", {"overdue": overdue, "templates": templates, "form": form}
    )


@login_required
@require_POST
def checklist_start(request, template_id, enterprise_id):
    template = get_object_or_404(ChecklistTemplate, pk=template_id)
    enterprise = get_object_or_404(scope(Enterprise.objects.all(), request.user), pk=enterprise_id)
    try:
        run = services.checklist_start_run(template=template, enterprise=enterprise, user=request.user)
    except (PermissionDenied, DomainError) as exc:
        messages.error(request, getattr(exc, "message", None) or _("无权开展该自查"))
        return redirect("hazards:checklists")
    return redirect("hazards:run", run.pk)


def _get_run(request, pk):
    qs = scope(ChecklistRun.objects.all(), request.user, prefix="enterprise__")
    return get_object_or_404(qs.select_related("template", "enterprise"), pk=pk)


@login_required
def checklist_run(request, pk):
    _no_mlps(request.user)
    run = _get_run(request, pk)
    answers = {a.item_id: a for a in run.answers.prefetch_related("hazards")}
    items = []
    for item in run.template.items.all():
        answer = answers.get(item.pk)
        initial = {"result": answer.result, "note": answer.note} if answer else {}
        items.append(
            {"item": item, "answer": answer, "form": forms.ChecklistAnswerForm(initial=initial, prefix=f"i{item.pk}")}
        )
    editable = run.status == RunStatus.IN_PROGRESS and policy.is_member(request.user, run.enterprise)
    return render(
        request,
        "hazards/run.html",
        {"run": run, "items": items, "editable": editable, "answered": len(answers), "total": len(items)},
    )


@login_required
@require_POST
def checklist_run_answer(request, pk, item_id):
    run = _get_run(request, pk)
    item = get_object_or_404(ChecklistItem, pk=item_id, template_id=run.template_id)
    form = forms.ChecklistAnswerForm(request.POST, request.FILES, prefix=f"i{item.pk}")
    if not form.is_valid():
        messages.error(request, _("第 %(n)s 项：请选择检查结果") % {"n": item.order})
    else:
        data = form.cleaned_data
        try:
            services.checklist_answer(
                run=run,
                item=item,
                user=request.user,
                result=data["result"],
                note=data["note"],
                grade=data["grade"],
                photos=request.FILES.getlist(f"i{item.pk}-photos"),
            )
        except PermissionDenied:
            messages.error(request, _("只有本企业用户可以填写自查"))
        except DomainError as exc:
            messages.error(request, _("第 %(n)s 项未保存：%(r)s") % {"n": item.order, "r": exc.message})
        else:
            if data["result"] == "fail":
                messages.warning(request, _("第 %(n)s 项不合格，已生成隐患") % {"n": item.order})
    return redirect(reverse("hazards:run", args=[run.pk]) + f"#item-{item.pk}")


@login_required
@require_POST
def checklist_run_complete(request, pk):
    run = _get_run(request, pk)
    try:
        run = services.checklist_complete_run(run=run, user=request.user)
    except PermissionDenied:
        messages.error(request, _("只有本企业用户可以提交自查"))
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("自查已完成，下次应检日期：%(d)s") % {"d": run.next_due})
    return redirect("hazards:run", run.pk)
