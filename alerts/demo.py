"""Demo alerts: default rules per quantity (with a summer schedule for combustible gas), level-1 linkage
to each gateway's shut-off valve, a month of historic alerts in every lifecycle state, and 18 months
of closed alerts driven by each enterprise's latent risk propensity."""

from __future__ import annotations

from datetime import time, timedelta

from alerts.choices import AlertState, LinkageStatus, ResponseKind
from devices.choices import Quantity, RegisterType

MONTHLY_ALERTS = 1.0  # historic alerts per monitored enterprise-month at risk intensity 1
LEVEL1_SHARE = 0.05  # share of level-1 alerts at risk intensity 1

# quantity: (name, limits, deadband, on/off delay, rate, stale, levels hh/h/l/ll)
DEFAULT_RULES = {
    Quantity.COMBUSTIBLE_GAS: (
        "可燃气体(GB/T 50493)",
        {"high": 20, "high_high": 50},
        2,
        (2, 5),
        None,
        60,
        (1, 2, 3, 3),
    ),
    Quantity.TOXIC_GAS: ("有毒气体", {"high": 10, "high_high": 20}, 1, (2, 5), None, 60, (2, 2, 3, 3)),
    Quantity.PRESSURE: ("压力", {"high": 2.0, "high_high": 2.3, "low": 0.2}, 0.02, (3, 5), None, 120, (2, 3, 3, 2)),
    Quantity.TEMPERATURE: ("温度", {"high": 80, "high_high": 100}, 1, (5, 10), 10, 120, (2, 3, 3, 3)),
    Quantity.LEVEL: (
        "液位",
        {"high": 10, "high_high": 11, "low": 1, "low_low": 0.5},
        0.05,
        (5, 10),
        None,
        120,
        (2, 3, 3, 2),
    ),
}


def seed(ctx) -> None:
    from alerts.models import (
        Alert,
        AlertComment,
        AlertEscalation,
        AlertResponse,
        AlertRule,
        AlertTransition,
        FloodGroup,
        ThresholdSchedule,
    )
    from alerts.services import _refresh_escalation_due as refresh_escalation_due
    from alerts.services import ack_deadline, format_message, response_deadline
    from devices.models import Channel, Device

    rules = {}
    for quantity, (name, limits, deadband, delays, rate, stale, levels) in DEFAULT_RULES.items():
        rules[quantity] = AlertRule.objects.create(
            name=f"{name}默认规则",
            quantity=quantity,
            deadband=deadband,
            on_delay_s=delays[0],
            off_delay_s=delays[1],
            rate_limit_per_min=rate,
            stale_after_s=stale,
            level_high_high=levels[0],
            level_high=levels[1],
            level_low=levels[2],
            level_low_low=levels[3],
            **limits,
        )
    gas_default = rules[Quantity.COMBUSTIBLE_GAS]
    ThresholdSchedule.objects.create(rule=gas_default, name="夏季高温", month_from=6, month_to=9, high=15, high_high=40)
    ThresholdSchedule.objects.create(
        rule=rules[Quantity.TEMPERATURE], name="夜间", time_from=time(22), time_to=time(6), high=70
    )

    devices = list(Device.objects.filter(channels__register_type=RegisterType.COIL).distinct().order_by("id"))
    for device in devices:
        valve = device.channels.filter(register_type=RegisterType.COIL, writable=True).order_by("id").first()
        rule = AlertRule.objects.create(
            name=f"{device.name} 可燃气体(联动切断阀)",
            quantity=Quantity.COMBUSTIBLE_GAS,
            device=device,
            high=gas_default.high,
            high_high=gas_default.high_high,
            deadband=gas_default.deadband,
            on_delay_s=gas_default.on_delay_s,
            off_delay_s=gas_default.off_delay_s,
            stale_after_s=gas_default.stale_after_s,
            level_high_high=1,
            level_high=2,
            linkage_device=device,
            linkage_unit_id=valve.unit_id,
            linkage_address=valve.address,
            linkage_value=True,
        )
        ThresholdSchedule.objects.create(rule=rule, name="夏季高温", month_from=6, month_to=9, high=15, high_high=40)

    channels = list(
        Channel.objects.filter(device__in=devices, quantity__in=list(DEFAULT_RULES))
        .select_related("device__enterprise")
        .order_by("id")
    )
    if not channels:
        ctx.log(f"alerts: {AlertRule.objects.count()} rules; no channels, so no historic alerts")
        return
    rng = ctx.rng
    now = ctx.now
    enterprise_users = list(ctx.shared.get("enterprise_users", []))
    inspectors = list(ctx.shared.get("inspectors", []))

    def person(pool):
        return rng.choice(pool) if pool else None

    def make(channel, kind, level, raised, state, *, cleared=None, acked=None, value=None, limit=None):
        rule = rules.get(channel.quantity)
        message = format_message(
            kind, tag=channel.tag, name=channel.name, value=value, limit=limit, unit=channel.unit, detail="sentinel"
        )
        open_ = state != AlertState.NORMAL
        alert = Alert.objects.create(
            enterprise=channel.device.enterprise,
            device=channel.device,
            channel=channel,
            rule=rule,
            kind=kind,
            level=level,
            state=state,
            condition_active=state in (AlertState.ACTIVE_UNACK, AlertState.ACTIVE_ACK, AlertState.SHELVED),
            message=message,
            value=value,
            limit=limit,
            unit=channel.unit,
            raised_at=raised,
            cleared_at=cleared,
            acknowledged_at=acked,
            acknowledged_by=person(enterprise_users) if acked else None,
            closed_at=None if open_ else (max(cleared or raised, acked or raised)),
            ack_due_at=ack_deadline(level, raised),
            response_due_at=response_deadline(level, raised),
        )
        AlertTransition.objects.create(alert=alert, at=raised, action="raise", to_state=AlertState.ACTIVE_UNACK)
        return alert

    counts = {}
    used_open = set()
    # A month of history, mostly closed; some reviewed, some false alarms.
    for _ in range(80):
        ch = rng.choice(channels)
        raised = now - timedelta(days=rng.uniform(1, 30), minutes=rng.uniform(0, 600))
        kind = rng.choice(["high", "high", "high", "stale", "sensor_fault", "high_high"])
        level = {"high": 2, "high_high": 1}.get(kind, 3)
        rule = rules.get(ch.quantity)
        limit = rule.limit_for(kind) if rule else None
        value = round(limit + rng.uniform(0.5, 8), 1) if limit is not None else None
        acked = raised + timedelta(seconds=rng.randint(20, 900))
        cleared = raised + timedelta(seconds=rng.randint(60, 3600))
        alert = make(ch, kind, level, raised, AlertState.NORMAL, cleared=cleared, acked=acked, value=value, limit=limit)
        AlertTransition.objects.create(
            alert=alert,
            at=acked,
            action="acknowledge",
            from_state="active_unack",
            to_state="active_ack",
            user=alert.acknowledged_by,
        )
        AlertTransition.objects.create(
            alert=alert, at=max(cleared, acked), action="return", from_state="active_ack", to_state="normal"
        )
        if alert.required_response:
            at = raised + timedelta(minutes=rng.uniform(1, 40))
            AlertResponse.objects.create(
                alert=alert, kind=alert.required_response, at=at, recorded_at=at, user=alert.acknowledged_by
            )
            alert.responded_at = at
        if level == 1:
            for kind_, minutes in ((ResponseKind.COUNTY_REPORTED, 0), (ResponseKind.VALVE_CLOSED, rng.uniform(0.1, 4))):
                at = raised + timedelta(minutes=minutes)
                AlertResponse.objects.create(alert=alert, kind=kind_, at=at, recorded_at=at)
            alert.linkage_status = LinkageStatus.CONFIRMED
            at = raised + timedelta(minutes=rng.uniform(2, 8))
            AlertResponse.objects.create(alert=alert, kind=ResponseKind.FIRE_BRIGADE, at=at, recorded_at=at)
        if rng.random() < 0.5 and inspectors:
            alert.false_alarm = rng.random() < 0.3
            alert.reviewed_by = person(inspectors)
            alert.reviewed_at = cleared + timedelta(hours=rng.uniform(1, 48))
            alert.review_note = "探头漂移，已标定" if alert.false_alarm else "确有泄漏，已处置"
        if rng.random() < 0.15:
            AlertEscalation.objects.create(alert=alert, tier=1, at=alert.ack_due_at, reason="超时未确认")
            alert.tier = 1
        alert.save()
        counts["normal"] = counts.get("normal", 0) + 1

    counts["history"] = _history(ctx, channels, rules, enterprise_users)

    # One state each for the board, on distinct channels (one open alert per channel and kind).
    open_states = [
        (AlertState.ACTIVE_UNACK, "high", 2, timedelta(minutes=4)),
        (AlertState.ACTIVE_UNACK, "stale", 3, timedelta(minutes=25)),
        (AlertState.ACTIVE_ACK, "high", 2, timedelta(minutes=50)),
        (AlertState.CLEARED_UNACK, "high", 3, timedelta(minutes=15)),
        (AlertState.SHELVED, "sensor_fault", 3, timedelta(hours=3)),
        (AlertState.SUPPRESSED, "stale", 3, timedelta(hours=5)),
        (AlertState.OUT_OF_SERVICE, "sensor_fault", 3, timedelta(days=2)),
        (AlertState.ACTIVE_ACK, "high", 2, timedelta(days=2)),  # a standing alert
    ]
    candidates = [ch for ch in channels if ch.pk not in used_open]
    rng.shuffle(candidates)
    for (state, kind, level, ago), ch in zip(open_states, candidates, strict=False):
        rule = rules.get(ch.quantity)
        limit = rule.limit_for(kind) if rule else None
        value = round(limit + rng.uniform(0.5, 5), 1) if limit is not None else None
        raised = now - ago
        acked = raised + timedelta(minutes=2) if state == AlertState.ACTIVE_ACK else None
        cleared = raised + timedelta(minutes=5) if state == AlertState.CLEARED_UNACK else None
        alert = make(ch, kind, level, raised, state, cleared=cleared, acked=acked, value=value, limit=limit)
        if state == AlertState.SHELVED:
            alert.shelved_until = now + timedelta(hours=5)
            alert.shelve_reason = "探头送检标定"
        refresh_escalation_due(alert)  # open alerts escalate like live ones
        alert.save()
        if state not in (AlertState.ACTIVE_UNACK,):
            AlertTransition.objects.create(
                alert=alert,
                at=raised + timedelta(minutes=2),
                action=_action_for(state),
                from_state="active_unack",
                to_state=state,
                user=person(enterprise_users),
                comment="演示数据",
            )
        if state == AlertState.ACTIVE_ACK:
            AlertComment.objects.create(
                alert=alert, at=raised + timedelta(minutes=3), user=alert.acknowledged_by, text="已安排巡检人员现场确认"
            )
        used_open.add(ch.pk)
        counts[str(state)] = counts.get(str(state), 0) + 1

    # A flood: one gateway produced 14 alerts within 6 minutes two weeks ago.
    device = channels[0].device
    flood_channels = [ch for ch in channels if ch.device_id == device.pk] or channels[:1]
    start = now - timedelta(days=14, hours=3)
    group = FloodGroup.objects.create(enterprise=device.enterprise, device=device, started_at=start, last_at=start)
    for i in range(14):
        ch = flood_channels[i % len(flood_channels)]
        raised = start + timedelta(seconds=25 * i)
        alert = make(
            ch,
            "sensor_fault",
            3,
            raised,
            AlertState.NORMAL,
            cleared=raised + timedelta(minutes=8),
            acked=raised + timedelta(minutes=10),
        )
        alert.flood_group = group
        alert.save(update_fields=["flood_group"])
        group.last_at = raised
    group.count = 14
    group.save()
    ctx.log(f"alerts: {AlertRule.objects.count()} rules, {Alert.objects.count()} historic alerts {counts}")


def _action_for(state: str) -> str:
    return {
        AlertState.ACTIVE_ACK: "acknowledge",
        AlertState.CLEARED_UNACK: "return",
        AlertState.SHELVED: "shelve",
        AlertState.SUPPRESSED: "suppress",
        AlertState.OUT_OF_SERVICE: "remove_from_service",
    }[state]


def _history(ctx, channels, rules, enterprise_users) -> int:
    """18 months of closed alerts per monitored enterprise, as many (and as serious, and as slowly
    acknowledged) as its latent risk propensity made likely (enterprises/risk/demo.py)."""
    from alerts.models import Alert, AlertTransition
    from alerts.services import ack_deadline, format_message, response_deadline
    from enterprises.risk.demo import HISTORY_DAYS, intensity, poisson

    rng, now = ctx.rng, ctx.now
    by_enterprise: dict[int, list] = {}
    for ch in channels:
        by_enterprise.setdefault(ch.device.enterprise_id, []).append(ch)
    alerts = []
    for enterprise_id, chs in sorted(by_enterprise.items()):
        for month in range(1, HISTORY_DAYS // 30):
            k = intensity(ctx, enterprise_id, month * 30 + 15)
            for _ in range(poisson(rng, MONTHLY_ALERTS * k)):
                ch = rng.choice(chs)
                raised = now - timedelta(days=month * 30 + rng.uniform(0, 30))
                if rng.random() < min(0.5, LEVEL1_SHARE * k):
                    kind, level = "high_high", 1
                else:
                    kind = rng.choice(["high", "high", "stale", "sensor_fault"])
                    level = 2 if kind == "high" else 3
                rule = rules.get(ch.quantity)
                limit = rule.limit_for(kind) if rule else None
                value = round(limit + rng.uniform(0.5, 8), 1) if limit is not None else None
                due = ack_deadline(level, raised)
                late = rng.random() < min(0.8, 0.1 * k)
                in_time = raised + (due - raised) * rng.random()
                acked = due + timedelta(seconds=rng.randint(30, 3600)) if late else in_time
                cleared = raised + timedelta(seconds=rng.randint(60, 3600))
                alerts.append(
                    Alert(
                        enterprise_id=enterprise_id,
                        device=ch.device,
                        channel=ch,
                        rule=rule,
                        kind=kind,
                        level=level,
                        state=AlertState.NORMAL,
                        condition_active=False,
                        message=format_message(
                            kind, tag=ch.tag, name=ch.name, value=value, limit=limit, unit=ch.unit, detail="sentinel"
                        ),
                        value=value,
                        limit=limit,
                        unit=ch.unit,
                        raised_at=raised,
                        cleared_at=cleared,
                        acknowledged_at=acked,
                        acknowledged_by=rng.choice(enterprise_users) if enterprise_users else None,
                        closed_at=max(cleared, acked),
                        ack_due_at=due,
                        response_due_at=response_deadline(level, raised),
                        linkage_status=LinkageStatus.CONFIRMED if level == 1 else LinkageStatus.NONE,
                    )
                )
    Alert.objects.bulk_create(alerts, batch_size=1000)
    if any(a.pk is None for a in alerts):  # SQLite before RETURNING: fetch the ids back in order
        ids = list(Alert.objects.order_by("-id").values_list("id", flat=True)[: len(alerts)])[::-1]
        for alert, pk in zip(alerts, ids, strict=True):
            alert.pk = pk
    transitions = []
    for a in alerts:
        transitions.append(AlertTransition(alert=a, at=a.raised_at, action="raise", to_state=AlertState.ACTIVE_UNACK))
        transitions.append(
            AlertTransition(
                alert=a,
                at=a.acknowledged_at,
                action="acknowledge",
                from_state="active_unack",
                to_state="active_ack",
                user=a.acknowledged_by,
            )
        )
        transitions.append(
            AlertTransition(alert=a, at=a.closed_at, action="return", from_state="active_ack", to_state="normal")
        )
    AlertTransition.objects.bulk_create(transitions, batch_size=2000)
    return len(alerts)
