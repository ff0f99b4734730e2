"""Overdue hazards escalate by days overdue (principal, park, county), each step recorded and
notified once, with time frozen."""

import io
from datetime import datetime, time, timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from hazards import services
from hazards.models import Hazard, HazardEscalation
from regulator.choices import Role
from regulator.models import Notification
from tests import factories as f


def at(day, hour=9):
    return timezone.make_aware(datetime.combine(day, time(hour)))


@pytest.fixture
def overdue_world(world, people, make_hazard, settings):
    settings.HAZARD_ESCALATION_PRINCIPAL_DAYS = 1
    settings.HAZARD_ESCALATION_PARK_DAYS = 3
    settings.HAZARD_ESCALATION_COUNTY_DAYS = 7
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    world.township_inspector = f.user("township", Role.INSPECTOR, jurisdiction=world.regions["township"])
    for u in (people["principal"], world.park_manager, world.inspector, world.city_admin, world.township_inspector):
        u.email = f"{u.username}@example.cn"
        u.save()
    hazard = make_hazard("rectifying")
    return hazard


def escalated(hazard):
    return list(HazardEscalation.objects.filter(hazard=hazard).order_by("tier").values_list("tier", flat=True))


def test_overdue_hazard_escalates_to_principal_then_park_then_county(
    world, people, overdue_world, time_machine, django_capture_on_commit_callbacks
):
    hazard = overdue_world
    due = hazard.due_date
    time_machine.move_to(at(due))
    assert services.escalate_overdue()["marked"] == 0  # due today is not overdue yet

    time_machine.move_to(at(due + timedelta(days=1)))
    with django_capture_on_commit_callbacks(execute=True):
        services.escalate_overdue()
    hazard.refresh_from_db()
    assert hazard.is_overdue and hazard.escalation_tier == 1 and escalated(hazard) == [1]
    assert Notification.objects.filter(user=people["principal"], title__contains="逾期").count() == 1
    assert not Notification.objects.filter(user=world.park_manager).exists()
    assert [m.to for m in mail.outbox] == [["principal@example.cn"]]

    time_machine.move_to(at(due + timedelta(days=3)))
    services.escalate_overdue()
    assert escalated(hazard) == [1, 2]
    assert Notification.objects.filter(user=world.park_manager, title__contains="逾期").count() == 1
    assert not Notification.objects.filter(user=world.inspector, title__contains="逾期").exists()

    time_machine.move_to(at(due + timedelta(days=7)))
    services.escalate_overdue()
    assert escalated(hazard) == [1, 2, 3]
    # County level: the county's inspector and the township's, not the city or the next county.
    assert Notification.objects.filter(user=world.inspector, title__contains="逾期").count() == 1
    assert Notification.objects.filter(user=world.township_inspector, title__contains="逾期").count() == 1
    assert not Notification.objects.filter(user__in=[world.city_admin, world.other_inspector]).exists()


def test_running_escalation_twice_escalates_and_notifies_once(world, people, overdue_world, time_machine):
    hazard = overdue_world
    time_machine.move_to(at(hazard.due_date + timedelta(days=10)))
    first = services.escalate_overdue()
    notes = Notification.objects.count()
    assert first["escalated"] == {1: 1, 2: 1, 3: 1} and notes >= 3
    second = services.escalate_overdue()
    out = io.StringIO()
    call_command("escalate_overdue", stdout=out)
    assert "tier 1: 0, tier 2: 0, tier 3: 0" in out.getvalue()
    assert second["escalated"] == {1: 0, 2: 0, 3: 0} and second["notified"] == 0
    assert Notification.objects.count() == notes
    assert HazardEscalation.objects.filter(hazard=hazard).count() == 3


def test_extension_after_escalation_resets_and_the_new_deadline_escalates_again(
    world, people, overdue_world, time_machine
):
    hazard = overdue_world
    time_machine.move_to(at(hazard.due_date + timedelta(days=2)))
    services.escalate_overdue()
    new_deadline = hazard.due_date + timedelta(days=10)
    services.hazard_request_extension(hazard=hazard, user=people["officer"], new_deadline=new_deadline, reason="r")
    services.hazard_decide_extension(hazard=hazard, user=people["manager"], approve=True)
    hazard.refresh_from_db()
    assert not hazard.is_overdue and hazard.escalation_tier == 0
    time_machine.move_to(at(new_deadline + timedelta(days=1)))
    services.escalate_overdue()
    assert HazardEscalation.objects.filter(hazard=hazard, tier=1).count() == 2  # once per effective deadline


def test_submitted_or_closed_hazards_are_not_overdue(world, people, make_hazard, time_machine):
    hazard = make_hazard("submitted")
    time_machine.move_to(at(hazard.due_date + timedelta(days=30)))
    assert services.escalate_overdue()["marked"] == 0
    assert not HazardEscalation.objects.exists()


def test_many_escalations_for_one_recipient_become_one_digest(world, people, make_hazard, time_machine, settings):
    settings.HAZARD_ESCALATION_PRINCIPAL_DAYS = 1
    hazards = [make_hazard("rectifying") for _ in range(3)]
    time_machine.move_to(at(hazards[0].due_date + timedelta(days=1)))
    summary = services.escalate_overdue()
    assert summary["escalated"][1] == 3
    notes = Notification.objects.filter(user=people["principal"], title__contains="逾期")
    assert notes.count() == 1 and "3" in notes.get().title


def test_enterprise_without_principal_account_escalates_to_its_other_users(world, make_hazard, time_machine):
    from hazards.services import hazard_report

    other = f.enterprise_user("only_officer", world.here_no_park)
    hazard = hazard_report(
        enterprise=world.here_no_park,
        user=world.inspector,
        source="inspection",
        description="d",
        deadline=timezone.localdate() + timedelta(days=1),
    )
    time_machine.move_to(at(hazard.due_date + timedelta(days=2)))
    services.escalate_overdue()
    assert Notification.objects.filter(user=other, title__contains="逾期").exists()
    assert Hazard.objects.get(pk=hazard.pk).is_overdue


def test_celery_task_runs_the_same_service(world, overdue_world, time_machine):
    from hazards.tasks import escalate_overdue

    time_machine.move_to(at(overdue_world.due_date + timedelta(days=1)))
    result = escalate_overdue.apply().get()
    assert result["escalated"][1] == 1


def test_escalations_recorded_before_a_crash_are_notified_by_the_next_run(
    world, people, overdue_world, time_machine, monkeypatch
):
    hazard = overdue_world
    time_machine.move_to(at(hazard.due_date + timedelta(days=1)))
    real = services.notify_pending_escalations
    monkeypatch.setattr(services, "notify_pending_escalations", lambda **kw: (_ for _ in ()).throw(RuntimeError))
    with pytest.raises(RuntimeError):
        services.escalate_overdue()
    step = HazardEscalation.objects.get(hazard=hazard)
    assert step.notified_at is None
    assert not Notification.objects.filter(user=people["principal"], title__contains="逾期").exists()
    monkeypatch.setattr(services, "notify_pending_escalations", real)
    assert services.escalate_overdue()["notified"] == 1
    step.refresh_from_db()
    assert step.notified_at is not None and step.recipients == ["principal"]
    assert services.escalate_overdue()["notified"] == 0


def test_bulk_notification_falls_back_to_notify_when_a_concurrent_writer_races(
    world, people, overdue_world, time_machine, monkeypatch
):
    from django.db import IntegrityError

    from regulator.models import Notification as N

    def racing_bulk_create(*args, **kwargs):
        raise IntegrityError("duplicate key")

    monkeypatch.setattr(N.objects, "bulk_create", racing_bulk_create)
    time_machine.move_to(at(overdue_world.due_date + timedelta(days=1)))
    assert services.escalate_overdue()["notified"] == 1
    assert N.objects.filter(user=people["principal"], title__contains="逾期").count() == 1
