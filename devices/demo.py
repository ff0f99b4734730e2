"""Demo devices: Modbus TCP gateways on 127.0.0.1:15020+ for chemical park enterprises (served by
``manage.py simulate_devices``), one RTU bus (disabled: needs the simulator's pty), one HTTP-push
device with an ingest token, a day of 1-minute aggregates so the trend charts are not empty, and
18 months of gateway online/offline history."""

from __future__ import annotations

import math
from datetime import timedelta

from devices.choices import DataType, DeviceStatus, Protocol, Quantity, RegisterType

BASE_PORT = 15020
MAX_ENTERPRISES = 12

# (tag prefix, name, quantity, unit, data type, scale, range low, range high, deadband)
CHANNEL_KINDS = [
    ("GT", "可燃气体探测器", Quantity.COMBUSTIBLE_GAS, "%LEL", DataType.UINT16, 0.1, 0.0, 100.0, 0.5),
    ("AT", "硫化氢探测器", Quantity.TOXIC_GAS, "ppm", DataType.UINT16, 0.1, 0.0, 100.0, 0.5),
    ("AT", "一氧化碳探测器", Quantity.TOXIC_GAS, "ppm", DataType.UINT16, 0.1, 0.0, 1000.0, 2.0),
    ("AT", "氨气探测器", Quantity.TOXIC_GAS, "ppm", DataType.UINT16, 0.1, 0.0, 200.0, 1.0),
    ("PT", "压力变送器", Quantity.PRESSURE, "MPa", DataType.FLOAT32, 1.0, 0.0, 2.5, 0.01),
    ("TT", "温度变送器", Quantity.TEMPERATURE, "°C", DataType.FLOAT32, 1.0, -20.0, 150.0, 0.2),
    ("LT", "液位计", Quantity.LEVEL, "m", DataType.INT16, 0.01, 0.0, 12.0, 0.02),
]
AREAS = ["罐区", "装置区", "装卸区", "仓库", "泵房"]


def seed(ctx) -> None:
    from django.db.models import Q

    from devices import services
    from devices.models import Channel, Device, ReadingAggregate
    from enterprises.models import Enterprise

    rng = ctx.rng
    shared = ctx.shared.get("enterprises") or []
    candidates = list(
        Enterprise.objects.filter(park__isnull=False)
        .filter(Q(high_risk_sector__in=["chemicals", "hazardous_storage"]) | Q(major_hazards__isnull=False))
        .distinct()
        .order_by("id")
    )
    # The enterprises whose demo users log in (see enterprises/demo.py) come first, so they see devices.
    with_users = list(
        Enterprise.objects.filter(major_hazards__isnull=False, park__isnull=False).distinct().order_by("id")[:3]
    )
    seen, chosen = set(), []
    for e in with_users + candidates + [e for e in shared if e.park_id]:
        if e.pk not in seen:
            seen.add(e.pk)
            chosen.append(e)
    chosen = chosen[:MAX_ENTERPRISES]
    if not chosen:
        ctx.log("devices: no park enterprises; skipping demo devices")
        return
    port = BASE_PORT
    channel_count = 0
    trend_channels = []
    for n, ent in enumerate(chosen, start=1):
        for g in range(rng.choice([2, 2, 3])):
            area = rng.choice(AREAS)
            device = Device.objects.create(
                enterprise=ent,
                name=f"{area}{g + 1}号采集网关",
                location=f"{ent.name[:12]} {area}",
                protocol=Protocol.TCP,
                host="127.0.0.1",
                port=port,
                poll_period_ms=100 if g == 0 else 500,
                timeout_ms=200,
                status=DeviceStatus.UNKNOWN,
            )
            port += 1
            address = 0
            kinds = [CHANNEL_KINDS[0], CHANNEL_KINDS[0]] + rng.sample(CHANNEL_KINDS[1:], 3)
            for i, (prefix, label, quantity, unit, dtype, scale, lo, hi, deadband) in enumerate(kinds):
                words = 2 if dtype == DataType.FLOAT32 else 1
                ch = Channel.objects.create(
                    device=device,
                    tag=f"{prefix}-{n}{g}{i + 1:02d}",
                    name=f"{area}{label}",
                    location=f"{area} {rng.randint(1, 9)}号位置",
                    unit_id=1,
                    register_type=RegisterType.HOLDING,
                    address=address,
                    data_type=dtype,
                    scale=scale,
                    quantity=quantity,
                    unit=unit,
                    range_low=lo,
                    range_high=hi,
                    sentinels=[65535] if dtype == DataType.UINT16 else [],
                    deadband=deadband,
                    heartbeat_s=60,
                )
                address += words
                channel_count += 1
                if quantity == Quantity.COMBUSTIBLE_GAS and len(trend_channels) < 12:
                    trend_channels.append(ch)
            # An emergency shut-off valve output for level-1 linkage.
            Channel.objects.create(
                device=device,
                tag=f"XV-{n}{g}01",
                name=f"{area}紧急切断阀",
                unit_id=1,
                register_type=RegisterType.COIL,
                address=0,
                data_type=DataType.BOOL,
                quantity=Quantity.STATE,
                writable=True,
                heartbeat_s=300,
            )
            channel_count += 1
    first = chosen[0]
    rtu = Device.objects.create(
        enterprise=first,
        name="泵房RS-485总线",
        location="泵房",
        protocol=Protocol.RTU,
        serial_port=str(_data_dir() / "ttyDEMO0"),
        baudrate=19200,
        poll_period_ms=500,
        timeout_ms=300,
        enabled=False,
        status=DeviceStatus.DISABLED,
    )
    for unit in (1, 2):
        Channel.objects.create(
            device=rtu,
            tag=f"GT-9{unit}01",
            name=f"泵房可燃气体{unit}",
            unit_id=unit,
            address=0,
            data_type=DataType.UINT16,
            scale=0.1,
            quantity=Quantity.COMBUSTIBLE_GAS,
            unit="%LEL",
            range_low=0,
            range_high=100,
            sentinels=[65535],
            deadband=0.5,
        )
    http = Device.objects.create(
        enterprise=first, name="DCS数据推送", protocol=Protocol.HTTP, poll_period_ms=1000, location="中控室"
    )
    for i, (prefix, label, quantity, unit, _dt, _s, lo, hi, deadband) in enumerate(CHANNEL_KINDS[4:7], start=1):
        Channel.objects.create(
            device=http,
            tag=f"DCS-{prefix}-{i:02d}",
            name=f"DCS {label}",
            address=0,
            data_type=DataType.FLOAT32,
            quantity=quantity,
            unit=unit,
            range_low=lo,
            range_high=hi,
            deadband=deadband,
        )
    _token, raw = services.ingest_token_create(enterprise=first, name="DCS 推送")
    ctx.logins.append(("(HTTP 接入令牌)", raw, f"POST /api/v1/readings/ · {first.name}"))
    # One day of 1-minute aggregates for the trend charts.
    start = ctx.now.replace(second=0) - timedelta(days=1)
    rows = []
    for ch in trend_channels:
        base = rng.uniform(1.0, 4.0)
        phase = rng.uniform(0, 6.28)
        for m in range(24 * 60):
            mean = max(0.0, base + 1.2 * math.sin(phase + m / 180.0) + rng.gauss(0, 0.2))
            spread = abs(rng.gauss(0, 0.3))
            rows.append(
                ReadingAggregate(
                    channel=ch,
                    minute=start + timedelta(minutes=m),
                    min=max(0.0, mean - spread),
                    max=mean + spread,
                    sum=mean * 600,
                    count=600,
                    bad_count=0,
                )
            )
    ReadingAggregate.objects.bulk_create(rows, batch_size=2000)
    _status_history(ctx, list(Device.objects.filter(enterprise__in=chosen, protocol=Protocol.TCP).order_by("id")))
    ctx.shared["devices"] = list(Device.objects.filter(enterprise__in=chosen).order_by("id"))
    ctx.log(
        f"devices: {Device.objects.count()} devices ({port - BASE_PORT} TCP gateways on 127.0.0.1:{BASE_PORT}-"
        f"{port - 1}), {channel_count} channels; run `manage.py simulate_devices` and `manage.py poll_devices`"
    )


def _data_dir():
    from django.conf import settings

    return settings.DATA_DIR


def _status_history(ctx, devices) -> None:
    """The gateways were installed 18 months ago and went offline now and then: more often, and for
    longer, when their enterprise's latent risk propensity was high (enterprises/risk/demo.py)."""
    from devices.models import Device, DeviceStatusChange
    from enterprises.risk.demo import HISTORY_DAYS, intensity, poisson

    rng, now = ctx.rng, ctx.now
    installed = now - timedelta(days=HISTORY_DAYS + 30)
    Device.objects.filter(pk__in=[d.pk for d in devices]).update(created_at=installed)
    changes = []
    for device in devices:
        changes.append(
            DeviceStatusChange(device=device, at=installed, old=DeviceStatus.UNKNOWN, new=DeviceStatus.ONLINE)
        )
        for month in range(HISTORY_DAYS // 30, 0, -1):
            k = intensity(ctx, device.enterprise_id, month * 30 + 15)
            for _ in range(poisson(rng, 0.3 * k)):
                down = now - timedelta(days=month * 30 - rng.uniform(0, 28))
                up = min(down + timedelta(hours=rng.uniform(0.5, 48) * k), now - timedelta(minutes=5))
                changes.append(
                    DeviceStatusChange(
                        device=device, at=down, old=DeviceStatus.ONLINE, new=DeviceStatus.OFFLINE, reason="通信超时"
                    )
                )
                changes.append(
                    DeviceStatusChange(
                        device=device, at=up, old=DeviceStatus.OFFLINE, new=DeviceStatus.ONLINE, reason="通信恢复"
                    )
                )
    DeviceStatusChange.objects.bulk_create(changes, batch_size=2000)
