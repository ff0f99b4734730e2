"""Custom periods read whole months from the monthly snapshots and partial months from the day snapshots,
with the same numbers as the live computation, in a fixed number of queries."""

from datetime import date

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from enterprises.dashboard_days import DAY_MONTHS, build_day_snapshots
from enterprises.indicator_snapshots import build_snapshots, recent_months
from enterprises.indicators import add_months, compute
from enterprises.models import IndicatorDaySnapshot, IndicatorSnapshotMonth
from tests.enterprises import dashboard_data as data

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "who,region,period",
    [
        ("inspector", "county", (date(2026, 10, 3), date(2026, 10, 20))),  # within a month, ends today
        ("city_admin", "city", (date(2026, 9, 15), date(2026, 10, 20))),  # across two partial months
        ("inspector", "county", (date(2026, 7, 10), date(2026, 10, 5))),  # whole August and September inside
        ("city_admin", "city", (date(2026, 10, 20), date(2026, 10, 20))),  # today only
        ("inspector", "county", (date(2026, 9, 1), date(2026, 9, 29))),  # the past, previous period in August
        ("inspector", "county", (date(2026, 10, 15), date(2026, 10, 31))),  # into days after today
    ],
)
def test_custom_periods_equal_the_live_numbers(snapshotted, who, region, period):
    live, snap = data.live_and_snapshot(snapshotted.regions[region], getattr(snapshotted, who), *period)
    # Live figures: the live computation shows the current state when the period contains today; the
    # snapshots the samples taken in the period, here one, taken today with the same state.
    data.assert_same_numbers(live, snap, with_samples=True)
    assert data.by_key(live)["hazards_found"]["value"] is not None


def test_counted_by_hand(snapshotted):
    result = compute(
        snapshotted.regions["county"],
        date(2026, 10, 3),
        date(2026, 10, 20),
        user=snapshotted.inspector,
        today=data.TODAY,
    )
    assert result["period"]["mode"] == "snapshot"
    assert data.by_key(result)["hazards_found"]["value"] == 2  # h2, h5 (dashboard_data)


def test_a_custom_period_reads_four_queries_whatever_its_length(snapshotted):
    region, user = snapshotted.regions["city"], snapshotted.city_admin
    compute(region, date(2026, 10, 1), date(2026, 10, 5), user=user, today=data.TODAY)  # the user's scope, cached
    counts = []
    for start, end in [
        (date(2026, 10, 18), date(2026, 10, 20)),
        (date(2026, 8, 5), date(2026, 10, 20)),
        (date(2026, 5, 9), date(2026, 10, 2)),
    ]:
        with CaptureQueriesContext(connection) as ctx:
            result = compute(region, start, end, user=user, today=data.TODAY)
        assert result["period"]["mode"] == "snapshot"
        counts.append(len(ctx.captured_queries))
    assert counts == [4, 4, 4]


def test_day_rows_cover_every_region_subtree_and_omit_zeros(snapshotted):
    county = snapshotted.regions["county"]
    row = IndicatorDaySnapshot.objects.get(day=date(2026, 10, 20), region=county)
    assert row.values["stock"]["enterprises_total"] == 2  # here (township) and here_no_park
    assert all(value for kind in ("flow", "stock") for value in row.values.get(kind, {}).values())
    city_row = IndicatorDaySnapshot.objects.get(day=date(2026, 10, 20), region=snapshotted.regions["city"])
    assert city_row.values["stock"]["enterprises_total"] == 3
    assert IndicatorSnapshotMonth.objects.filter(days_computed_at__isnull=False).count() == 13  # as built


def test_samples_accumulate_in_the_day_and_survive_a_rebuild(snapshotted):
    from devices.models import Device

    period = (date(2026, 10, 18), date(2026, 10, 20))
    region, user = snapshotted.regions["county"], snapshotted.inspector
    assert data.by_key(compute(region, *period, user=user, today=data.TODAY))["device_online_rate"]["value"] == 50.0
    Device.objects.filter(name="网关2").update(status="online")
    build_snapshots([date(2026, 10, 1)], sample=True, today=data.TODAY)
    ind = data.by_key(compute(region, *period, user=user, today=data.TODAY))
    assert ind["device_online_rate"]["value"] == 75.0  # (1 + 2) / (2 + 2)
    build_snapshots([date(2026, 10, 1)], sample=False, today=data.TODAY)  # the nightly rebuild
    ind = data.by_key(compute(region, *period, user=user, today=data.TODAY))
    assert ind["device_online_rate"]["value"] == 75.0
    # A period without a sample (all before the first one) has no live figure, like the live computation.
    past = data.by_key(compute(region, date(2026, 10, 1), date(2026, 10, 10), user=user, today=data.TODAY))
    assert past["device_online_rate"]["value"] is None


def test_rebuild_picks_up_late_changes(snapshotted):
    from hazards.models import Hazard

    region, user, period = (
        snapshotted.regions["county"],
        snapshotted.inspector,
        (date(2026, 10, 25), date(2026, 10, 30)),
    )
    Hazard.objects.filter(description="测试隐患", status="rectifying", grade="major").update(
        status="closed", closed_at=data.at(10, 27), closed_on_time=True
    )
    before = data.by_key(compute(region, *period, user=user, today=data.TODAY))
    assert before["hazards_closed"]["value"] == 0  # the snapshot does not know yet
    call_command("snapshot_indicators", "--month", "2026-10")
    live, snap = data.live_and_snapshot(region, user, *period)
    assert data.by_key(snap)["hazards_closed"]["value"] == 1
    data.assert_same_numbers(live, snap, with_samples=False)


@pytest.mark.parametrize(
    "who,period",
    [
        ("inspector", (date(2026, 10, 15), date(2026, 11, 5))),  # a month without snapshots
        ("inspector", (date(2025, 9, 25), date(2025, 10, 5))),  # September 2025 has no snapshots
        ("park_manager", (date(2026, 10, 3), date(2026, 10, 20))),  # a park: small, computed live
    ],
)
def test_uncovered_custom_periods_are_live(snapshotted, who, period):
    result = compute(snapshotted.regions["county"], *period, user=getattr(snapshotted, who), today=data.TODAY)
    assert result["period"]["mode"] == "live"


def test_months_beyond_the_window_get_no_day_rows(snapshotted):
    oldest = add_months(date(2026, 10, 1), -(DAY_MONTHS - 1))
    result = build_day_snapshots([add_months(oldest, -1), oldest], today=data.TODAY)
    assert result["months"] == 1
    assert IndicatorDaySnapshot.objects.filter(day__lt=oldest).count() == 0
    # Later, January 2026 leaves the window: its day rows go, its custom periods are live.
    assert IndicatorDaySnapshot.objects.filter(day__lt=date(2026, 2, 1)).exists()
    build_day_snapshots([date(2026, 10, 1)], today=date(2028, 2, 20))
    assert not IndicatorDaySnapshot.objects.filter(day__lt=date(2026, 2, 1)).exists()
    assert IndicatorDaySnapshot.objects.filter(day=date(2026, 2, 1)).exists()
    assert IndicatorSnapshotMonth.objects.get(month=date(2026, 1, 1)).days_computed_at is None
    assert IndicatorSnapshotMonth.objects.get(month=date(2026, 2, 1)).days_computed_at is not None


def test_api_and_page_serve_a_custom_period_from_the_day_rows(client, world):
    from datetime import timedelta

    from django.utils import timezone
    from rest_framework.test import APIClient

    data.build(world)
    today = timezone.localdate()
    build_snapshots(recent_months(13), sample=True)
    start, end = today - timedelta(days=9), today
    api = APIClient()
    api.force_authenticate(world.city_admin)
    with CaptureQueriesContext(connection) as ctx:
        response = api.get("/api/v1/dashboard/", {"region": "320500", "start": start, "end": end})
    assert response.status_code == 200
    body = response.json()
    assert body["period"]["mode"] == "snapshot" and body["period"]["snapshot_at"]
    live = compute(world.regions["city"], start, end, user=world.city_admin, mode="live")
    assert [(r["key"], r["value"], r["previous"]) for r in body["indicators"]] == [
        (r["key"], r["value"], r["previous"]) for r in live["indicators"]
    ]
    assert not any("hazards_hazard" in q["sql"] or "alerts_alert" in q["sql"] for q in ctx.captured_queries)
    client.force_login(world.city_admin)
    html = client.get("/dashboard/", {"region": "320500", "start": start, "end": end}).content.decode()
    assert "数据来自" in html
