"""HTML pages: the duty officers' alert board, one alert with its history and actions (including
turning it into a hazard), the analytics page."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from alerts import analytics, services
from alerts.choices import OPEN_STATES, AlertKind, AlertLevel, AlertState, ResponseKind
from alerts.forms import AlertToHazardForm
from alerts.selectors import alerts_visible_to, open_alerts_for_board
from regulator.errors import DomainError
from regulator.search import text_q


def _no_business_data(user) -> bool:
    return user.is_mlps_admin and not user.is_superuser


@login_required
def board(request):
    if _no_business_data(request.user):
        raise PermissionDenied
    qs = open_alerts_for_board(request.user)
    level = request.GET.get("level", "")
    if level.isdigit():
        qs = qs.filter(level=int(level))
    enterprise = request.GET.get("enterprise", "").strip()
    if enterprise:
        qs = qs.filter(text_q(enterprise, "enterprise__name"))
    rows = list(qs[:300])
    # Flood groups collapse into their newest alert plus a count.
    seen_groups: set[int] = set()
    board_rows = []
    for alert in rows:
        if alert.flood_group_id:
            if alert.flood_group_id in seen_groups:
                continue
            seen_groups.add(alert.flood_group_id)
        board_rows.append(alert)
    recent = alerts_visible_to(request.user).exclude(state__in=OPEN_STATES).order_by("-id")[:20]
    return render(
        request,
        "alerts/board.html",
        {
            "rows": board_rows,
            "recent": recent,
            "levels": AlertLevel.choices,
            "level": level,
            "enterprise": enterprise,
            "now": timezone.now(),
        },
    )


@login_required
def alert_list(request):
    if _no_business_data(request.user):
        raise PermissionDenied
    qs = alerts_visible_to(request.user).order_by("-id")
    state = request.GET.get("state", "")
    if state in AlertState.values:
        qs = qs.filter(state=state)
    kind = request.GET.get("kind", "")
    if kind in AlertKind.values:
        qs = qs.filter(kind=kind)
    level = request.GET.get("level", "")
    if level.isdigit():
        qs = qs.filter(level=int(level))
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "alerts/list.html",
        {
            "page": page,
            "states": AlertState.choices,
            "kinds": AlertKind.choices,
            "levels": AlertLevel.choices,
            "state": state,
            "kind": kind,
            "level": level,
        },
    )


def _render_detail(request, alert, *, hazard_form=None, status=200):
    from hazards.models import Hazard
    from hazards.selectors import hazards_visible_to

    ref = services.hazard_source_ref(alert)
    hazard = hazards_visible_to(request.user).filter(source_ref=ref).order_by("id").first()
    converted = hazard is not None or Hazard.objects.filter(source_ref=ref).exists()
    may_convert = not converted and services.can_report_hazard(request.user, alert)
    if may_convert and hazard_form is None:
        hazard_form = AlertToHazardForm.for_alert(alert)
    return render(
        request,
        "alerts/detail.html",
        {
            "alert": alert,
            "hazard": hazard,
            "converted": converted,
            "hazard_form": hazard_form if may_convert else None,
            "transitions": alert.transitions.select_related("user"),
            "comments": alert.comments.select_related("user"),
            "responses": alert.responses.select_related("user"),
            "escalations": alert.escalations.all(),
            "response_kinds": ResponseKind.choices,
            "can_shelve": services.can_shelve(request.user) and alert.level != 1,
            "can_service": services.can_shelve(request.user),
            "can_review": services.can_review(request.user),
            "default_shelve_until": (timezone.localtime() + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M"),
        },
        status=status,
    )


@login_required
def detail(request, pk: int):
    alert = get_object_or_404(alerts_visible_to(request.user), pk=pk)
    return _render_detail(request, alert)


@login_required
@require_POST
def to_hazard(request, pk: int):
    """转为隐患: report a hazard from this alert (alerts.services.alert_report_hazard), once per alert."""
    alert = get_object_or_404(alerts_visible_to(request.user), pk=pk)
    if not services.can_report_hazard(request.user, alert):
        raise PermissionDenied(_("只有监管人员或企业安全管理人员可以将报警转为隐患"))
    form = AlertToHazardForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("未转为隐患：请检查下方表单"))
        return _render_detail(request, alert, hazard_form=form, status=400)
    data = form.cleaned_data
    try:
        hazard, created = services.alert_report_hazard(
            alert=alert,
            user=request.user,
            description=data["description"],
            location=data["location"],
            category=data["category"],
            grade=data["grade"],
        )
    except DomainError as exc:
        form.add_error(None, exc.message)
        messages.error(request, exc.message)
        return _render_detail(request, alert, hazard_form=form, status=exc.status_code)
    if not created:
        messages.error(request, _("该报警已转为隐患 %(code)s，不能重复转换") % {"code": hazard.code})
        return redirect("alerts:detail", pk=alert.pk)
    messages.success(request, _("已将报警 #%(id)s 转为隐患 %(code)s") % {"id": alert.pk, "code": hazard.code})
    return redirect("hazards:detail", pk=hazard.pk)


def _parse_local(value: str) -> datetime | None:
    if not value:
        return None
    dt = parse_datetime(value)
    if dt is None:
        return None
    if timezone.is_naive(dt):
        dt = timezone.make_aware(dt)
    return dt


@login_required
@require_POST
def act(request, pk: int, action: str):
    alert = get_object_or_404(alerts_visible_to(request.user), pk=pk)
    post = request.POST
    user = request.user
    try:
        if action == "acknowledge":
            services.alert_acknowledge(alert=alert, user=user, comment=post.get("comment", ""))
            messages.success(request, _("报警已确认"))
        elif action == "shelve":
            until = _parse_local(post.get("until", ""))
            services.alert_shelve(alert=alert, user=user, reason=post.get("reason", ""), until=until)
            messages.success(request, _("报警已搁置"))
        elif action == "unshelve":
            services.alert_unshelve(alert=alert, user=user, comment=post.get("comment", ""))
        elif action == "remove_from_service":
            services.alert_remove_from_service(alert=alert, user=user, reason=post.get("reason", ""))
        elif action == "return_to_service":
            services.alert_return_to_service(alert=alert, user=user, comment=post.get("comment", ""))
        elif action == "comment":
            services.alert_comment(alert=alert, user=user, text=post.get("text", ""))
        elif action == "respond":
            services.alert_record_response(
                alert=alert,
                user=user,
                kind=post.get("kind", ""),
                at=_parse_local(post.get("at", "")),
                note=post.get("note", ""),
            )
            messages.success(request, _("处置记录已保存"))
        elif action == "review":
            services.alert_review(
                alert=alert, user=user, false_alarm=post.get("false_alarm") == "1", note=post.get("note", "")
            )
            messages.success(request, _("复核结果已保存"))
        else:
            raise Http404
    except DomainError as exc:
        messages.error(request, exc.message)
    except PermissionDenied as exc:
        messages.error(request, str(exc) or _("您无权执行此操作"))
    target = post.get("next", "")
    if target == "board":
        return redirect("alerts:board")
    return redirect("alerts:detail", pk=alert.pk)


@login_required
@require_POST
def set_mode(request, enterprise_id: int):
    from enterprises.models import Enterprise
    from regulator.scoping import scope

    enterprise = get_object_or_404(scope(Enterprise.objects.all(), request.user), pk=enterprise_id)
    try:
        services.enterprise_set_operating_mode(
            enterprise=enterprise, user=request.user, mode=request.POST.get("mode", "")
        )
        messages.success(request, _("工况已更新，动态阈值将在数秒内生效"))
    except DomainError as exc:
        messages.error(request, exc.message)
    except PermissionDenied as exc:
        messages.error(request, str(exc) or _("您无权执行此操作"))
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("alerts:board")


@login_required
def analytics_page(request):
    if _no_business_data(request.user):
        raise PermissionDenied
    month = request.GET.get("month") or timezone.localtime().strftime("%Y-%m")
    try:
        report = analytics.monthly_report(alerts_visible_to(request.user), month)
    except ValueError:
        messages.error(request, _("月份格式应为 YYYY-MM"))
        month = timezone.localtime().strftime("%Y-%m")
        report = analytics.monthly_report(alerts_visible_to(request.user), month)
    return render(request, "alerts/analytics.html", {"report": report, "month": month})
