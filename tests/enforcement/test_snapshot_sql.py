"""The draw's PostgreSQL snapshot query answers exactly what the portable ORM version answers."""

from datetime import date

import pytest
from django.db import connection
from django.utils import timezone

from enforcement import services
from enforcement.choices import ListingStatus
from enforcement.models import CreditScore, DishonestyListing, Inspection

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the aggregated query is PostgreSQL only"),
]


def _visit(enterprise, day, team, status="completed"):
    inspection = Inspection.objects.create(enterprise=enterprise, date=day, status=status)
    inspection.team.set(team)
    return inspection


def test_history_latest_team_counts_and_grades_match_the_orm_version(county, plan):
    a, b, c, d, e = county.enterprises[2:7]
    users = [p.user for p in county.profiles]
    # a: two visits on the same latest day (the higher id wins), one older, one older than a year.
    _visit(a, date(2024, 12, 1), users[0:2])
    _visit(a, date(2025, 12, 1), users[1:3])
    _visit(a, date(2025, 12, 20), users[2:4])
    _visit(a, date(2025, 12, 20), users[3:5])
    # b: the latest visit was cancelled, so the one before it counts.
    _visit(b, date(2025, 11, 1), users[0:2])
    _visit(b, date(2026, 1, 1), users[4:6], status="cancelled")
    # c: a visit without a team; d: closed enterprise with history; e: listed and scored.
    _visit(c, date(2025, 10, 10), [])
    _visit(d, date(2025, 9, 9), users[1:3])
    d.operating_status = "closed"
    d.save(update_fields=["operating_status"])
    CreditScore.objects.create(enterprise=e, score=55, grade="C", computed_at=timezone.now())
    CreditScore.objects.create(enterprise=a, score=95, grade="A", computed_at=timezone.now())
    DishonestyListing.objects.create(
        enterprise=e,
        reason="瞒报",
        listed_on=date(2025, 6, 1),
        expires_on=date(2028, 6, 1),
        status=ListingStatus.LISTED,
    )
    region_ids = list(
        county.region.__class__.objects.filter(path__startswith=county.region.path).values_list("id", flat=True)
    )
    as_of = date(2026, 1, 5)
    fast = services._targets_postgresql(region_ids, as_of)
    portable = services._targets_orm(region_ids, county.region.path, as_of)
    assert fast == portable
    targets = {row[0]: row for row in fast[0]}
    teams = dict(fast[1])
    assert targets[a.pk][5] == 3 and targets[a.pk][6] == 16  # 3 visits in the last year, 16 days ago
    assert teams[a.pk] == sorted(u.pk for u in users[3:5])  # same day: the later visit's team
    assert targets[b.pk][5] == 1 and teams[b.pk] == sorted(u.pk for u in users[0:2])
    assert c.pk not in teams and d.pk not in targets and d.pk in teams
    assert targets[e.pk][4] == "D" and targets[a.pk][4] == "A"
