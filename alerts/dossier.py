"""The "alerts" section of the enterprise dossier: open alerts, last 30 days by level, false-alarm rate."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

from alerts.choices import LEVEL_COLOURS, OPEN_STATES
from alerts.models import Alert


def alert_summary(enterprise, user) -> dict:
    since = timezone.now() - timedelta(days=30)
    qs = Alert.objects.filter(enterprise=enterprise)
    recent = qs.filter(raised_at__gte=since)
    by_level = {row["level"]: row["n"] for row in recent.values("level").annotate(n=Count("pk"))}
    reviewed = recent.filter(false_alarm__isnull=False)
    reviewed_n = reviewed.count()
    false_n = reviewed.filter(false_alarm=True).count()
    open_rows = qs.filter(state__in=OPEN_STATES).select_related("channel").order_by("level", "-raised_at")[:10]
    from alerts.models import EnterpriseMode, OperatingMode

    mode = EnterpriseMode.objects.filter(enterprise=enterprise).values_list("mode", flat=True).first() or "normal"
    return {
        "mode": mode,
        "mode_display": str(OperatingMode(mode).label),
        "modes": [[value, str(label)] for value, label in OperatingMode.choices],
        "open_count": qs.filter(state__in=OPEN_STATES).count(),
        "last_30_days": recent.count(),
        "by_level": [
            {"level": lvl, "colour": LEVEL_COLOURS[lvl], "count": by_level.get(lvl, 0)} for lvl in (1, 2, 3, 4)
        ],
        "false_alarm_rate": round(false_n / reviewed_n, 3) if reviewed_n else None,
        "open": [
            {
                "id": a.pk,
                "level": a.level,
                "colour": a.colour,
                "message": a.message,
                "state": a.state,
                "state_display": str(a.get_state_display()),
                "raised_at": a.raised_at.isoformat(),
            }
            for a in open_rows
        ],
    }
