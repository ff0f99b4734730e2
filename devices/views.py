"""HTML pages: devices of my jurisdiction / enterprise, a device's channels, a channel's live value and trend."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render

from devices import selectors
from devices.choices import DeviceStatus
from enterprises.models import Enterprise
from regulator.scoping import scope


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
        devices = devices.filter(name__icontains=q) | devices.filter(enterprise__name__icontains=q)
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


@login_required
def device_detail(request, pk: int):
    device = get_object_or_404(selectors.devices_visible_to(request.user), pk=pk)
    channels = selectors.with_latest_reading(device.channels.all().order_by("tag"))
    return render(
        request,
        "devices/detail.html",
        {
            "device": device,
            "channels": channels,
            "changes": device.status_changes.all()[:20],
            "coil_writes": device.coil_writes.select_related("requested_by")[:20],
        },
    )


@login_required
def channel_detail(request, pk: int):
    channel = get_object_or_404(selectors.with_latest_reading(selectors.channels_visible_to(request.user)), pk=pk)
    range_name = request.GET.get("range", "hour")
    if range_name not in selectors.TREND_RANGES:
        range_name = "hour"
    return render(request, "devices/channel.html", {"channel": channel, "device": channel.device, "range": range_name})
