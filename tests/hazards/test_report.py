from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from hazards.choices import HazardAction, HazardStatus
from hazards.models import Hazard
from hazards.services import hazard_report
from regulator.errors import InvalidInput
from tests.hazards.conftest import image_bytes, upload


def test_enterprise_user_reports_a_hazard_with_photo_and_timeline(world, people):
    hazard = hazard_report(
        enterprise=world.here,
        user=people["officer"],
        source="self_check",
        description="储罐区可燃气体报警器失效",
        location="罐区B",
        category="equipment",
        photos=[upload(image_bytes())],
    )
    assert hazard.status == HazardStatus.REPORTED
    assert hazard.found_by == people["officer"]
    assert hazard.photos.count() == 1
    step = hazard.transitions.get()
    assert (step.action, step.from_status, step.to_status, step.user) == (
        HazardAction.REPORT,
        "",
        HazardStatus.REPORTED,
        people["officer"],
    )


def test_inspection_finding_by_regulator_is_confirmed_at_once_with_its_deadline(world):
    deadline = timezone.localdate() + timedelta(days=10)
    hazard = hazard_report(
        enterprise=world.here,
        user=world.inspector,
        source="inspection",
        description="安全出口堵塞",
        deadline=deadline,
        source_ref="inspection:7",
    )
    assert hazard.status == HazardStatus.CONFIRMED
    assert hazard.due_date == deadline and hazard.source_ref == "inspection:7"
    assert list(hazard.transitions.values_list("action", flat=True)) == ["report", "confirm"]


def test_system_reports_device_alert_hazard_without_user(world):
    hazard = hazard_report(enterprise=world.here, user=None, source="device_alert", description="可燃气体高高报")
    assert hazard.status == HazardStatus.REPORTED and hazard.found_by is None


def test_outsider_cannot_report_for_enterprise_out_of_scope(world):
    with pytest.raises(PermissionDenied):
        hazard_report(enterprise=world.there, user=world.inspector, source="inspection", description="x")
    with pytest.raises(PermissionDenied):
        hazard_report(enterprise=world.there, user=world.enterprise_user, source="self_check", description="x")
    assert not Hazard.objects.exists()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"source": "rumour"},
        {"grade": "catastrophic"},
        {"grade": "ordinary", "major_level": 1},
        {"grade": "major", "major_level": 7},
        {"category": "astrology"},
        {"description": "  "},
        {"deadline": "next week"},
        {"funds": "-5"},
        {"colour": "red"},
    ],
)
def test_report_rejects_bad_input(world, kwargs):
    base = {"source": "self_check", "description": "隐患"}
    base.update(kwargs)
    with pytest.raises(InvalidInput):
        hazard_report(enterprise=world.here, user=world.enterprise_user, **base)
    assert not Hazard.objects.exists()
