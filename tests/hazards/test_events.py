"""Every hazard step pushes ``hazard.updated`` to the enterprise's groups, and only after commit."""

import pytest
from django.db import transaction

from hazards import services
from regulator import realtime


@pytest.fixture
def sent(monkeypatch):
    calls = []
    monkeypatch.setattr(realtime, "_send", lambda groups, message: calls.append((groups, message)))
    return calls


def test_report_and_transitions_push_after_commit(world, people, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        hazard = services.hazard_report(
            enterprise=world.here, user=people["officer"], source="self_check", description="d"
        )
    with django_capture_on_commit_callbacks(execute=True):
        services.hazard_confirm(hazard=hazard, user=people["manager"])
    events = [
        (m["event"], m["payload"]["action"], m["payload"]["status"]) for _g, m in sent if m["event"] == "hazard.updated"
    ]
    assert events == [("hazard.updated", "report", "reported"), ("hazard.updated", "confirm", "confirmed")]
    groups = next(g for g, m in sent if m["event"] == "hazard.updated")
    assert f"enterprise.{world.here.pk}" in groups and f"park.{world.park.pk}" in groups
    assert f"region.{world.regions['county'].pk}" in groups
    assert f"region.{world.regions['other_county'].pk}" not in groups


def test_rolled_back_step_pushes_nothing(world, people, make_hazard, sent, django_capture_on_commit_callbacks):
    hazard = make_hazard("reported")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                services.hazard_confirm(hazard=hazard, user=people["manager"])
                raise RuntimeError("abort")
        except RuntimeError:
            pass
    assert not [m for _g, m in sent if m["event"] == "hazard.updated"]
    assert callbacks == []
    hazard.refresh_from_db()
    assert hazard.status == "reported"
