"""EEMUA-style monthly figures: per operator per 10 min, time in flood, standing, chattering, false alarms."""

import json
from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import CommandError, call_command

from alerts.analytics import monthly_report
from alerts.models import Alert
from alerts.selectors import alerts_visible_to

TZ = ZoneInfo("Asia/Shanghai")
MONTH_START = datetime(2026, 2, 1, tzinfo=TZ)


def make(enterprise, channel, at, *, kind="high", state="normal", false_alarm=None, condition_active=False):
    return Alert.objects.create(
        enterprise=enterprise,
        device=channel.device if channel else None,
        channel=channel,
        kind=kind,
        level=2,
        state=state,
        condition_active=condition_active,
        message="m",
        raised_at=at,
        ack_due_at=at,
        false_alarm=false_alarm,
    )


@pytest.fixture
def february(world, gas, other_gas):
    t = MONTH_START + timedelta(days=3, hours=10)
    # A flood: 12 alerts in one 10-minute window from one enterprise, 4 of them chattering on GT-101.
    for i in range(12):
        make(world.here, gas.channel, t + timedelta(seconds=20 * i), kind="high" if i < 4 else "stale")
    # Ordinary alerts elsewhere in the month; reviewed: 1 false of 4.
    for day, false in ((5, True), (9, False), (15, False), (20, False)):
        make(world.here, gas.channel, MONTH_START + timedelta(days=day), kind="low", false_alarm=false)
    make(world.there, other_gas.channel, MONTH_START + timedelta(days=7))
    # Standing: open with the condition present for more than 24 h.
    make(
        world.here,
        None,
        MONTH_START + timedelta(days=26),
        kind="device_offline",
        state="active_ack",
        condition_active=True,
    )


def test_monthly_figures(world, february):
    now = datetime(2026, 3, 1, tzinfo=TZ)
    report = monthly_report(alerts_visible_to(world.inspector), "2026-02", now=now)
    assert report["total"] == 12 + 4 + 1  # the other county is out of scope
    assert report["windows"] == 28 * 144
    here = report["per_operator"][0]
    assert here["enterprise"] == world.here.name and here["peak_10min"] == 12 and here["windows_in_flood"] == 1
    assert report["flood"]["windows_in_flood"] == 1
    assert report["false_alarm"] == {"reviewed": 4, "false": 1, "rate": 0.25}
    assert report["standing_count"] == 1 and report["standing"][0]["hours"] > 24
    top = report["chattering"][0]
    assert top["tag"] == "GT-101" and top["chatter"] >= 3 + 7  # 3 repeat 'high' + 7 repeat 'stale' within 60 s
    city = monthly_report(alerts_visible_to(world.city_admin), "2026-02", now=now)
    assert city["total"] == 18


def test_response_times_against_the_seed_targets(world, gas):
    from alerts.models import AlertResponse

    for minutes_valve, minutes_fire in ((2, 4), (4, 6)):
        alert = make(world.here, gas.channel, MONTH_START + timedelta(days=2, hours=minutes_valve))
        for kind, minutes in (("valve_closed", minutes_valve), ("fire_brigade", minutes_fire)):
            at = alert.raised_at + timedelta(minutes=minutes)
            AlertResponse.objects.create(alert=alert, kind=kind, at=at, recorded_at=at)
    report = monthly_report(alerts_visible_to(world.inspector), "2026-02", now=datetime(2026, 3, 1, tzinfo=TZ))
    by_kind = {r["kind"]: r for r in report["responses"]}
    assert by_kind["valve_closed"]["median_s"] == 180 and by_kind["valve_closed"]["within_target"] == 0.5
    assert by_kind["fire_brigade"]["count"] == 2 and by_kind["fire_brigade"]["within_target"] == 0.5


def test_alert_report_command(world, february):
    out = StringIO()
    with time_machine.travel(datetime(2026, 3, 2, tzinfo=TZ)):
        call_command("alert_report", "--month", "2026-02", stdout=out)
    text = out.getvalue()
    assert "False-alarm rate: 25.0% (1 of 4 reviewed)" in text
    assert "Time in flood: 1 windows" in text
    out = StringIO()
    call_command("alert_report", "--month", "2026-02", "--json", stdout=out)
    assert json.loads(out.getvalue())["total"] == 18
    with pytest.raises(CommandError):
        call_command("alert_report", "--month", "2026-13")
