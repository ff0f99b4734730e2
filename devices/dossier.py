"""The "devices" section of the enterprise dossier."""

from __future__ import annotations

from devices.choices import DeviceStatus


def devices_summary(enterprise, user) -> dict:
    from devices.models import Channel, Device

    devices = list(
        Device.objects.filter(enterprise=enterprise)
        .order_by("name")
        .values("id", "name", "protocol", "status", "status_reason", "last_seen", "achieved_rate_hz", "poll_period_ms")
    )
    labels = dict(DeviceStatus.choices)
    for d in devices:
        d["status_display"] = str(labels.get(d["status"], d["status"]))
        d["last_seen"] = d["last_seen"].isoformat() if d["last_seen"] else None
    counts: dict[str, int] = {}
    for d in devices:
        counts[d["status"]] = counts.get(d["status"], 0) + 1
    channels = Channel.objects.filter(device__enterprise=enterprise, enabled=True).count()
    return {"devices": devices, "counts": counts, "channel_count": channels, "device_count": len(devices)}
