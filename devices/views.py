"""HTML pages: devices of my jurisdiction / enterprise, a device's channels, a channel's live value and trend,
and the operator's controls (maintenance mode, manual coil writes) that go through the same services as the API."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from devices import selectors, services
from devices.choices import DeviceStatus, RegisterType
from devices.forms import CoilWriteForm, MaintenanceForm, coil_write_problem
from devices.models import CoilWriteCommand
from enterprises.models import Enterprise
from regulator.errors import DomainError
from regulator.scoping import scope
from regulator.search import text_q


def can_operate(user) -> bool:
    """Who may switch maintenance and write coils: the same people the devices API lets write
    (``IsRegulatorOrReadOnly``): regulator staff and superusers; scope is applied by the queryset."""
    return user.is_authenticated and (user.is_superuser or user.is_regulator)


@login_required
def device_list(request):
    devices = selectors.devices_visible_to(request.user)
    enterprise = None
    if request.GET.get("enterprise", "").isdigit():
        enterprise = get_object_or_404(scope(Enterprise.objects.all(), request.user), pk=request.GET["enterprise"])
        devices = devices.filter(enterprise=enterprise)
    counts = selectors.device_status_counts(devices)
    status = request.GET.get("status", "")
    if status in DeviceStatus.values:
        devices = devices.filter(status=status)
    q = request.GET.get("q", "").strip()
    if q:
        devices = devices.filter(text_q(q, "name", "enterprise__name"))
    page = Paginator(devices.order_by("enterprise__name", "name", "id"), 50).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "devices/list.html",
        {
            "page": page,
            "enterprise": enterprise,
            "status": status,
            "q": q,
            "counts": counts,
            "statuses": DeviceStatus.choices,
            "querystring": params.urlencode(),
        },
    )


def _render_device(request, device, *, maintenance_form=None, status=200):
    channels = selectors.with_latest_reading(device.channels.all().order_by("tag"))
    operate = can_operate(request.user)
    if operate and maintenance_form is None:
        maintenance_form = MaintenanceForm(initial={"maintenance": "off" if device.maintenance else "on"})
    return render(
        request,
        "devices/detail.html",
        {
            "device": device,
            "channels": channels,
            "changes": device.status_changes.all()[:20],
            "coil_writes": device.coil_writes.select_related("requested_by")[:20],
            "can_operate": operate,
            "maintenance_form": maintenance_form,
            "bus_budget": device.bus_budget,
        },
        status=status,
    )


@login_required
def device_detail(request, pk: int):
    device = get_object_or_404(selectors.devices_visible_to(request.user), pk=pk)
    return _render_device(request, device)


@login_required
@require_POST
def device_maintenance(request, pk: int):
    """Enter or leave maintenance mode (alerts of the device are then suppressed by design)."""
    device = get_object_or_404(selectors.devices_visible_to(request.user), pk=pk)
    if not can_operate(request.user):
        raise PermissionDenied(_("只有监管人员可以切换设备维护模式"))
    form = MaintenanceForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("未切换维护模式：请检查下方表单"))
        return _render_device(request, device, maintenance_form=form, status=400)
    on = form.cleaned_data["maintenance"]
    if device.maintenance == on:
        messages.info(request, _("设备已处于维护模式") if on else _("设备本来就不在维护模式"))
        return redirect("devices:detail", pk=device.pk)
    reason = form.cleaned_data["reason"]
    services.device_set_maintenance(device=device, maintenance=on, user=request.user, reason=reason)
    if on:
        messages.success(request, _("设备已进入维护模式：暂停采集，其报警按设计屏蔽"))
    else:
        messages.success(request, _("设备已退出维护模式，恢复采集和报警"))
    return redirect("devices:detail", pk=device.pk)


def _render_channel(request, channel, *, coil_form=None, status=200):
    range_name = request.GET.get("range", "hour")
    if range_name not in selectors.TREND_RANGES:
        range_name = "hour"
    is_coil = channel.register_type == RegisterType.COIL
    operate = can_operate(request.user)
    coil_writes = []
    if is_coil:
        coil_writes = CoilWriteCommand.objects.filter(
            device_id=channel.device_id, unit_id=channel.unit_id, address=channel.address
        ).select_related("requested_by")[:10]
    problem = coil_write_problem(channel) if is_coil else ""
    if is_coil and operate and not problem and coil_form is None:
        coil_form = CoilWriteForm(channel=channel)
    return render(
        request,
        "devices/channel.html",
        {
            "channel": channel,
            "device": channel.device,
            "range": range_name,
            "is_coil": is_coil,
            "can_operate": operate,
            "coil_form": coil_form,
            "coil_problem": problem,
            "coil_writes": coil_writes,
        },
        status=status,
    )


@login_required
def channel_detail(request, pk: int):
    channel = get_object_or_404(selectors.with_latest_reading(selectors.channels_visible_to(request.user)), pk=pk)
    return _render_channel(request, channel)


@login_required
@require_POST
def channel_coil_write(request, pk: int):
    """Queue a coil write on a writable coil channel; the poller executes it and reads it back."""
    channel = get_object_or_404(selectors.with_latest_reading(selectors.channels_visible_to(request.user)), pk=pk)
    if not can_operate(request.user):
        raise PermissionDenied(_("只有监管人员可以下发联动写入"))
    form = CoilWriteForm(request.POST, channel=channel)
    if not form.is_valid():
        problem = " ".join(form.non_field_errors())
        messages.error(request, problem or _("未下发写入：请检查下方表单"))
        return _render_channel(request, channel, coil_form=form, status=400)
    try:
        command = services.request_coil_write(
            device=channel.device,
            unit_id=channel.unit_id,
            address=channel.address,
            value=form.cleaned_data["value"],
            reason=form.cleaned_data["reason"],
            requested_by=request.user,
        )
    except DomainError as exc:
        form.add_error(None, exc.message)
        messages.error(request, exc.message)
        return _render_channel(request, channel, coil_form=form, status=exc.status_code)
    messages.success(
        request,
        _("写入指令 #%(id)s 已下发(写入 %(value)s)，等待采集进程执行并回读确认")
        % {"id": command.pk, "value": int(command.value)},
    )
    return redirect("devices:channel", pk=channel.pk)
