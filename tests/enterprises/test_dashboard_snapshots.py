"""Monthly snapshots give the same numbers as the live computation, accumulate live samples, and are
only used when they cover the period, the previous period and the trend."""

from datetime import date

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from enterprises.indicator_snapshots import build_snapshots
from enterprises.indicators import compute
from enterprises.models import IndicatorSnapshot, IndicatorSnapshotMonth
from tests.enterprises import dashboard_data as data

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "who,region,period",
    [
        ("inspector", "county", data.OCT),
        ("city_admin", "city", data.OCT),
        ("inspector", "county", (date(2026, 7, 1), date(2026, 9, 30))),
        ("park_manager", "county", data.OCT),
    ],
)
def test_snapshots_equal_the_live_numbers(snapshotted, who, region, period):
    user = getattr(snapshotted, who)
    live, snap = data.live_and_snapshot(snapshotted.regions[region], user, *period)
    data.assert_same_numbers(live, snap, with_samples=False)


def test_live_figures_come_from_the_samples(snapshotted):
    result = compute(snapshotted.regions["county"], *data.OCT, user=snapshotted.inspector, today=data.TODAY)
    ind = data.by_key(result)
    assert result["period"]["mode"] == "snapshot"
    assert ind["device_online_rate"]["value"] == 50.0 and ind["device_online_rate"]["previous"] is None
    # A second sample with d2 back online: October's average is (1 + 2) / (2 + 2).
    from devices.models import Device

    Device.objects.filter(name="网关2").update(status="online")
    build_snapshots([date(2026, 10, 1)], sample=True, today=data.TODAY)
    assert IndicatorSnapshotMonth.objects.get(month=date(2026, 10, 1)).samples == 2
    ind = data.by_key(compute(snapshotted.regions["county"], *data.OCT, user=snapshotted.inspector, today=data.TODAY))
    assert ind["device_online_rate"]["value"] == 75.0
    # A nightly rebuild without sampling keeps the samples.
    build_snapshots([date(2026, 10, 1)], sample=False, today=data.TODAY)
    ind = data.by_key(compute(snapshotted.regions["county"], *data.OCT, user=snapshotted.inspector, today=data.TODAY))
    assert ind["device_online_rate"]["value"] == 75.0


def test_rebuild_picks_up_late_changes(snapshotted):
    from hazards.models import Hazard

    Hazard.objects.filter(description="测试隐患", status="rectifying", grade="major").update(
        status="closed", closed_at=data.at(10, 30), closed_on_time=True
    )
    before = data.by_key(
        compute(snapshotted.regions["county"], *data.OCT, user=snapshotted.inspector, today=data.TODAY)
    )
    assert before["hazards_closed"]["value"] == 3  # the snapshot does not know yet
    call_command("snapshot_indicators", "--month", "2026-10")
    after = data.by_key(compute(snapshotted.regions["county"], *data.OCT, user=snapshotted.inspector, today=data.TODAY))
    assert after["hazards_closed"]["value"] == 4 and after["listed_major_hazards"]["value"] == 0


def test_without_full_coverage_auto_is_live(world):
    data.build(world)
    build_snapshots([date(2026, 10, 1)], today=data.TODAY)  # September and the trend months are missing
    result = compute(world.regions["county"], *data.OCT, user=world.inspector, today=data.TODAY)
    assert result["period"]["mode"] == "live"
    custom = compute(world.regions["county"], date(2026, 10, 3), date(2026, 10, 9), user=world.inspector)
    assert custom["period"]["mode"] == "live"
    with pytest.raises(ValueError):
        compute(world.regions["county"], *data.OCT, user=world.inspector, today=data.TODAY, mode="snapshot")


def test_snapshot_reads_are_a_few_queries(snapshotted):
    compute(snapshotted.regions["city"], *data.OCT, user=snapshotted.city_admin, today=data.TODAY)
    with CaptureQueriesContext(connection) as ctx:
        compute(snapshotted.regions["city"], *data.OCT, user=snapshotted.city_admin, today=data.TODAY)
    assert len(ctx.captured_queries) <= 4
    assert IndicatorSnapshot.objects.filter(month=date(2026, 10, 1)).count() >= 3


def test_command_rejects_a_bad_month(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("snapshot_indicators", "--month", "2026-13")


def test_beat_task_builds_the_current_month_with_a_sample(world):
    from enterprises.indicator_snapshots import snapshot_indicators_task

    data.build(world)
    result = snapshot_indicators_task.delay(months=1, sample=True).get()
    assert result["months"] == 1 and result["rows"] >= 1
    from django.utils import timezone

    assert IndicatorSnapshotMonth.objects.get(month=timezone.localdate().replace(day=1)).samples == 1


def test_page_says_where_the_numbers_come_from(client, snapshotted):
    client.force_login(snapshotted.inspector)
    html = client.get("/dashboard/", {"region": "320581", "period": "month", "month": "2026-10"}).content.decode()
    # Today (the real date) is after October 2026's snapshot coverage check only if all 13 months exist.
    assert "数据来自统计快照" in html or "数据为实时计算" in html


def test_custom_period_is_live_with_the_trend_from_snapshots(snapshotted):
    # Without day rows (a month older than the day-row window; tests/enterprises/test_dashboard_days.py
    # covers custom periods read from day rows).
    IndicatorSnapshotMonth.objects.update(days_computed_at=None)
    region, user = snapshotted.regions["county"], snapshotted.inspector
    custom = (date(2026, 10, 3), date(2026, 10, 20))
    auto = compute(region, *custom, user=user, today=data.TODAY)
    live = compute(region, *custom, user=user, today=data.TODAY, mode="live")
    assert auto["period"]["mode"] == "live"
    assert data.by_key(auto)["hazards_found"]["value"] == data.by_key(live)["hazards_found"]["value"] == 2  # h2, h5
    for key in ("hazards_found", "on_time_rate", "listed_major_hazards", "alerts_total"):
        assert auto["trend"][key] == live["trend"][key], key
