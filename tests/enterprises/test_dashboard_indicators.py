"""The dashboard's numbers equal the ones counted by hand from tests/enterprises/dashboard_data.py."""

from datetime import date

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext

from enterprises.indicators import compute, previous_period
from tests.enterprises import dashboard_data as data

pytestmark = pytest.mark.django_db


@pytest.fixture
def oct_county(world):
    data.build(world)
    return compute(world.regions["county"], *data.OCT, user=world.inspector, today=data.TODAY)


def test_previous_period_is_the_previous_calendar_unit_or_as_many_days():
    assert previous_period(date(2026, 3, 1), date(2026, 3, 31)) == (date(2026, 2, 1), date(2026, 2, 28))
    assert previous_period(date(2026, 4, 1), date(2026, 6, 30)) == (date(2026, 1, 1), date(2026, 3, 31))
    assert previous_period(date(2026, 1, 1), date(2026, 12, 31)) == (date(2025, 1, 1), date(2025, 12, 31))
    assert previous_period(date(2026, 3, 10), date(2026, 3, 19)) == (date(2026, 2, 28), date(2026, 3, 9))


def test_hazard_indicators_for_the_period_and_the_previous_one(oct_county):
    ind = data.by_key(oct_county)
    # Found in October, not dismissed: h1, h2, h5, h7 (h3 dismissed, h8 in another county).
    assert (ind["hazards_found"]["value"], ind["hazards_found"]["previous"]) == (4, 2)
    assert ind["major_hazards_found"]["value"] == 1
    # Closed in October: h1 (on time), h4 (late), h5 (on time thanks to its approved extension).
    assert (ind["hazards_closed"]["value"], ind["hazards_closed"]["previous"]) == (3, 1)
    assert ind["on_time_rate"]["value"] == 66.7 and ind["on_time_rate"]["previous"] == 100.0
    assert ind["on_time_rate"]["display"] == "66.7%"
    # Of the 4 found in October, h1, h5 and h7 (in November) are closed by now.
    assert ind["rectification_rate"]["value"] == 75.0
    # September: h4, h6 found, both closed since.
    assert ind["rectification_rate"]["previous"] == 100.0
    # (10 + 23 + 18) / 3 days; September: h6 took 5 days.
    assert ind["avg_rectification_days"]["value"] == 17.0
    assert ind["avg_rectification_days"]["previous"] == 5.0
    assert ind["listed_major_hazards"]["value"] == 1 and ind["listed_major_hazards"]["previous"] == 0
    assert ind["hazards_found"]["change"] == 2


def test_extension_makes_the_closing_on_time(world):
    data.build(world)
    from hazards.models import Hazard

    h5 = Hazard.objects.get(description="储罐区报警器失效")
    assert h5.closed_on_time is True and h5.due_date == date(2026, 10, 25) and h5.deadline == date(2026, 10, 10)


def test_alert_indicators(oct_county):
    ind = data.by_key(oct_county)
    assert (ind["alerts_total"]["value"], ind["alerts_total"]["previous"]) == (3, 1)
    assert ind["alerts_level1"]["value"] == 1
    assert ind["avg_ack_minutes"]["value"] == 7.0 and ind["avg_ack_minutes"]["previous"] == 2.0
    assert ind["ack_in_time_rate"]["value"] == 33.3 and ind["ack_in_time_rate"]["previous"] == 100.0
    assert ind["false_alarm_rate"]["value"] == 50.0 and ind["false_alarm_rate"]["previous"] == 0.0
    assert oct_county["distributions"]["alerts_by_level"] == {"1": 1, "2": 1, "3": 1, "4": 0}


def test_enforcement_and_credit_indicators(oct_county):
    ind = data.by_key(oct_county)
    assert (ind["inspections_planned"]["value"], ind["inspections_done"]["value"]) == (2, 1)
    assert ind["inspection_completion_rate"]["value"] == 50.0
    assert ind["inspection_completion_rate"]["previous"] == 100.0
    assert ind["credit_low_share"]["value"] == 50.0
    assert oct_county["distributions"]["credit_grade"] == {"A": 1, "B": 0, "C": 1, "D": 0, "none": 0}


def test_registry_device_and_risk_indicators(oct_county):
    ind = data.by_key(oct_county)
    assert ind["enterprises_total"]["value"] == 2 and ind["enterprises_key"]["value"] == 1
    assert ind["enterprises_connected"]["value"] == 1 and ind["connection_rate"]["value"] == 50.0
    assert ind["enterprises_connected"]["previous"] == 1
    # Live: d1 online and fresh, d2 offline for an hour, d3 disabled (not monitored).
    assert ind["device_online_rate"]["value"] == 50.0 and ind["device_online_rate"]["previous"] is None
    assert ind["data_timeliness_rate"]["value"] == 50.0
    assert ind["high_risk_share"]["value"] == 50.0
    assert oct_county["distributions"]["risk_grade"] == {"red": 1, "orange": 0, "yellow": 0, "blue": 1, "none": 0}


def test_live_figures_are_empty_for_a_past_period(world):
    data.build(world)
    result = compute(world.regions["county"], *data.OCT, user=world.inspector, today=date(2026, 11, 29))
    ind = data.by_key(result)
    assert ind["device_online_rate"]["value"] is None and ind["device_online_rate"]["display"] == "—"
    assert ind["hazards_found"]["value"] == 4


def test_trend_points_are_calendar_months(oct_county):
    trend = oct_county["trend"]["hazards_found"]
    assert len(trend) == 12 and trend[-1]["period"] == "2026-10" and trend[0]["period"] == "2025-11"
    points = {p["period"]: p["value"] for p in trend}
    assert points["2026-10"] == 4 and points["2026-09"] == 2 and points["2026-08"] == 0
    on_time = {p["period"]: p["value"] for p in oct_county["trend"]["on_time_rate"]}
    assert on_time["2026-10"] == 66.7 and on_time["2026-08"] is None
    listed = {p["period"]: p["value"] for p in oct_county["trend"]["listed_major_hazards"]}
    assert listed["2026-10"] == 1 and listed["2026-09"] == 0
    connected = {p["period"]: p["value"] for p in oct_county["trend"]["enterprises_connected"]}
    assert connected["2026-05"] == 0 and connected["2026-06"] == 1
    # Live figures in live mode: only the month containing "today" has a sample.
    online = {p["period"]: p["value"] for p in oct_county["trend"]["device_online_rate"]}
    assert online["2026-10"] == 50.0 and online["2026-09"] is None


def test_drill_down_rows_split_the_totals(oct_county):
    rows = {row["region"]["code"]: row for row in oct_county["children"]}
    assert oct_county["children_kind"] == "region"
    # 虞山街道 holds `here` (h1, h2, h5); the county's own row holds `direct` (h7).
    assert rows["320581001"]["indicators"]["hazards_found"] == 3
    assert rows["320581"]["indicators"]["hazards_found"] == 1
    assert rows["320581"]["region"]["name"] == "本级"


def test_lowest_level_lists_enterprises(world):
    data.build(world)
    result = compute(world.regions["township"], *data.OCT, user=world.inspector, today=data.TODAY)
    assert result["children_kind"] == "enterprise"
    assert [row["enterprise"]["name"] for row in result["children"]] == [world.here.name]
    assert result["children"][0]["indicators"]["hazards_found"] == 3


def test_city_admin_sees_both_counties(world):
    data.build(world)
    result = compute(world.regions["city"], *data.OCT, user=world.city_admin, today=data.TODAY)
    rows = {row["region"]["code"]: row["indicators"] for row in result["children"]}
    assert rows["320581"]["hazards_found"] == 4 and rows["320582"]["hazards_found"] == 1
    assert data.by_key(result)["hazards_found"]["value"] == 5


def test_park_manager_sees_only_the_park(world):
    data.build(world)
    result = compute(world.park.region, *data.OCT, user=world.park_manager, today=data.TODAY)
    assert data.by_key(result)["hazards_found"]["value"] == 3
    assert [row["enterprise"]["id"] for row in result["children"]] == [world.here.pk]


def test_outside_the_jurisdiction_and_enterprise_users_are_refused(world):
    with pytest.raises(PermissionDenied):
        compute(world.regions["other_county"], *data.OCT, user=world.inspector)
    with pytest.raises(PermissionDenied):
        compute(world.regions["city"], *data.OCT, user=world.inspector)
    with pytest.raises(PermissionDenied):
        compute(world.regions["county"], *data.OCT, user=world.enterprise_user)
    with pytest.raises(ValueError):
        compute(world.regions["county"], date(2026, 10, 2), date(2026, 10, 1), user=world.inspector)


def test_query_count_does_not_grow_with_rows(world):
    from tests import factories as f

    data.build(world)
    compute(world.regions["county"], *data.OCT, user=world.inspector, today=data.TODAY)  # warms the user's cache
    with CaptureQueriesContext(connection) as small:
        compute(world.regions["county"], *data.OCT, user=world.inspector, today=data.TODAY)
    for i in range(6):
        ent = f.enterprise(world.regions["township"])
        data.hazard(ent, data.at(10, 1 + i), closed=data.at(10, 20), on_time=True)
        data.alert(ent, data.at(10, 2 + i), 2, ack_after_min=3)
    with CaptureQueriesContext(connection) as big:
        result = compute(world.regions["county"], *data.OCT, user=world.inspector, today=data.TODAY)
    assert data.by_key(result)["hazards_found"]["value"] == 10
    assert len(big.captured_queries) == len(small.captured_queries) <= 25
