"""The allowed-transition map, enforced by the one service door: every allowed and every
forbidden step, major-hazard rules, who may act, and concurrent verification."""

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.utils import timezone

from hazards import policy, services
from hazards.choices import TRANSITIONS, HazardAction, HazardStatus
from hazards.models import Hazard, HazardTransition
from regulator.errors import DomainError, InvalidInput, TransitionNotAllowed
from tests.hazards.conftest import image_bytes, upload

TODAY = timezone.localdate


def call(action, hazard, user):
    """Call the service for ``action`` with valid input for it."""
    later = TODAY() + timedelta(days=30)
    if action == "confirm":
        return services.hazard_confirm(hazard=hazard, user=user)
    if action == "dismiss":
        return services.hazard_dismiss(hazard=hazard, user=user, reason="不构成隐患")
    if action == "start_rectification":
        return services.hazard_start_rectification(
            hazard=hazard,
            user=user,
            measures="m",
            funds="1",
            responsible_person="p",
            deadline=TODAY() + timedelta(days=5),
            emergency_plan="e",
        )
    if action == "submit_rectification":
        return services.hazard_submit_rectification(
            hazard=hazard, user=user, note="done", photos=[upload(image_bytes())]
        )
    if action == "verify":
        return services.hazard_verify(hazard=hazard, user=user)
    if action == "fail_verification":
        return services.hazard_fail_verification(hazard=hazard, user=user, reason="未整改到位")
    if action == "request_extension":
        return services.hazard_request_extension(hazard=hazard, user=user, new_deadline=later, reason="设备到货延迟")
    if action == "decide_extension":
        return services.hazard_decide_extension(hazard=hazard, user=user, approve=True)
    if action == "list_supervision":
        return services.hazard_list_supervision(hazard=hazard, user=user, due=later)
    raise AssertionError(action)


def actor(action, hazard, world, people):
    """Someone who may take ``action`` on ``hazard``."""
    if action in ("start_rectification", "submit_rectification", "request_extension"):
        return people["officer"]
    if action in ("list_supervision",) or hazard.is_major:
        return world.inspector
    return people["manager"]


STATES = ["reported", "confirmed", "dismissed", "rectifying", "submitted", "closed"]
ACTIONS = list(TRANSITIONS)


def expected_target(action, status):
    sources, target = TRANSITIONS[action]
    if status not in sources:
        return None
    return target or status


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_transition_is_allowed_or_refused_by_the_map(world, people, make_hazard, state, action):
    grade = "major" if action == "list_supervision" else "ordinary"
    hazard = make_hazard(state, grade=grade)
    if action == "decide_extension" and state == "rectifying":
        services.hazard_request_extension(
            hazard=hazard, user=people["officer"], new_deadline=TODAY() + timedelta(days=40), reason="r"
        )
    before_steps = hazard.transitions.count()
    target = expected_target(action, state)
    user = actor(action, hazard, world, people)
    if target is None:
        with pytest.raises(TransitionNotAllowed) as exc:
            call(action, hazard, user)
        assert exc.value.details["current_status"] == state
        assert exc.value.details["allowed_actions"] == policy.allowed_actions(Hazard.objects.get(pk=hazard.pk), user)
        hazard.refresh_from_db()
        assert hazard.status == state and hazard.transitions.count() == before_steps
    else:
        call(action, hazard, user)
        hazard.refresh_from_db()
        assert hazard.status == target
        step = hazard.transitions.order_by("-id").first()
        assert (step.action, step.from_status, step.to_status, step.user) == (action, state, target, user)


def test_out_of_order_verification_answers_current_state_and_allowed_actions(world, people, make_hazard):
    hazard = make_hazard("rectifying")
    with pytest.raises(TransitionNotAllowed) as exc:
        services.hazard_verify(hazard=hazard, user=people["manager"])
    assert exc.value.status_code == 409
    assert exc.value.details["current_status"] == "rectifying"
    # The manager may not submit (only members' officers do it too) but may not request extension? they may.
    assert "verify" not in exc.value.details["allowed_actions"]
    assert set(exc.value.details["allowed_actions"]) <= set(HazardAction.values)


def test_full_closed_loop_with_failed_verification_then_close(world, people, make_hazard):
    hazard = make_hazard("submitted")
    hazard = services.hazard_fail_verification(hazard=hazard, user=people["manager"], reason="照片不清晰")
    assert hazard.status == HazardStatus.RECTIFYING and hazard.last_failure_reason == "照片不清晰"
    hazard = services.hazard_submit_rectification(
        hazard=hazard, user=people["officer"], note="重新整改", cost_spent="800"
    )
    hazard = services.hazard_verify(hazard=hazard, user=people["manager"], comment="合格")
    assert hazard.status == HazardStatus.CLOSED and hazard.closed_by == people["manager"] and hazard.closed_on_time
    assert hazard.cost_spent == 800
    assert list(hazard.transitions.values_list("to_status", flat=True)) == [
        "reported",
        "confirmed",
        "rectifying",
        "submitted",
        "rectifying",
        "submitted",
        "closed",
    ]


def test_dismissal_requires_a_reason(world, people, make_hazard):
    hazard = make_hazard("reported")
    with pytest.raises(InvalidInput):
        services.hazard_dismiss(hazard=hazard, user=people["manager"], reason=" ")
    hazard.refresh_from_db()
    assert hazard.status == "reported"


# --- major hazards -----------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["measures", "funds", "responsible_person", "deadline", "emergency_plan"])
def test_major_hazard_needs_all_five_elements_of_the_plan(world, people, make_hazard, missing):
    hazard = make_hazard("confirmed", grade="major")
    plan = {
        "measures": "停用储罐并更换阀门",
        "funds": "200000",
        "responsible_person": "李四",
        "deadline": TODAY() + timedelta(days=30),
        "emergency_plan": "编制专项应急预案",
    }
    plan[missing] = ""
    with pytest.raises(InvalidInput) as exc:
        services.hazard_start_rectification(hazard=hazard, user=people["officer"], **plan)
    assert missing in exc.value.details["missing"]
    hazard.refresh_from_db()
    assert hazard.status == "confirmed"


def test_ordinary_hazard_needs_only_a_deadline(world, people, make_hazard):
    hazard = make_hazard("confirmed")
    with pytest.raises(InvalidInput):
        services.hazard_start_rectification(hazard=hazard, user=people["officer"], measures="x")
    hazard = services.hazard_start_rectification(
        hazard=hazard, user=people["officer"], deadline=TODAY() + timedelta(days=3)
    )
    assert hazard.status == "rectifying" and hazard.due_date == TODAY() + timedelta(days=3)


def test_only_the_regulator_closes_a_major_hazard(world, people, make_hazard):
    hazard = make_hazard("submitted", grade="major")
    for user in (people["manager"], people["principal"], people["officer"], world.park_manager):
        with pytest.raises(PermissionDenied):
            services.hazard_verify(hazard=hazard, user=user)
    with pytest.raises(PermissionDenied):
        services.hazard_verify(hazard=hazard, user=world.other_inspector)
    hazard = services.hazard_verify(hazard=hazard, user=world.inspector)
    assert hazard.status == "closed"


def test_major_hazard_submission_needs_after_photos(world, people, make_hazard):
    hazard = make_hazard("rectifying", grade="major")
    with pytest.raises(InvalidInput):
        services.hazard_submit_rectification(hazard=hazard, user=people["officer"], note="done")
    hazard.refresh_from_db()
    assert hazard.status == "rectifying"


def test_major_hazard_is_reported_to_the_county_on_confirmation(world, people):
    from regulator.models import Notification

    hazard = services.hazard_report(
        enterprise=world.here, user=people["officer"], source="self_check", description="d", grade="major"
    )
    services.hazard_confirm(hazard=hazard, user=people["manager"])
    assert Notification.objects.filter(user=world.inspector, title__contains="重大隐患报告").count() == 1
    assert not Notification.objects.filter(user=world.other_inspector).exists()


def test_listed_supervision_only_for_major_hazards_by_the_regulator(world, people, make_hazard):
    ordinary = make_hazard("rectifying")
    with pytest.raises(TransitionNotAllowed):
        services.hazard_list_supervision(hazard=ordinary, user=world.inspector, due=TODAY())
    major = make_hazard("rectifying", grade="major")
    with pytest.raises(PermissionDenied):
        services.hazard_list_supervision(hazard=major, user=people["principal"], due=TODAY())
    major = services.hazard_list_supervision(
        hazard=major, user=world.inspector, supervisor=world.inspector, due=TODAY() + timedelta(days=20)
    )
    assert major.listed and major.supervisor == world.inspector
    with pytest.raises(TransitionNotAllowed):  # once listed, not again
        services.hazard_list_supervision(hazard=major, user=world.inspector, due=TODAY())


def test_supervisor_must_be_a_regulator_of_that_jurisdiction(world, make_hazard):
    major = make_hazard("rectifying", grade="major")
    with pytest.raises(InvalidInput):
        services.hazard_list_supervision(
            hazard=major, user=world.inspector, supervisor=world.other_inspector, due=TODAY()
        )


def test_regulator_found_hazard_may_only_be_dismissed_by_the_regulator(world, people):
    hazard = services.hazard_report(enterprise=world.here, user=None, source="spot_check", description="d")
    with pytest.raises(PermissionDenied):
        services.hazard_dismiss(hazard=hazard, user=people["manager"], reason="r")
    assert services.hazard_dismiss(hazard=hazard, user=world.inspector, reason="r").status == "dismissed"


# --- extensions ----------------------------------------------------------------------------------


def test_ordinary_extension_decided_by_safety_manager_and_overdue_counts_from_new_deadline(
    world, people, make_hazard, time_machine
):
    hazard = make_hazard("rectifying")
    deadline = hazard.due_date
    new_deadline = deadline + timedelta(days=20)
    request = services.hazard_request_extension(
        hazard=hazard, user=people["officer"], new_deadline=new_deadline, reason="等待配件"
    )
    with pytest.raises(PermissionDenied):  # the officer cannot approve their own request
        services.hazard_decide_extension(hazard=hazard, user=people["officer"], approve=True)
    with pytest.raises(PermissionDenied):  # not the regulator's call for an ordinary hazard
        services.hazard_decide_extension(hazard=hazard, user=world.inspector, approve=True)
    with pytest.raises(TransitionNotAllowed):  # one pending request at a time
        services.hazard_request_extension(hazard=hazard, user=people["officer"], new_deadline=new_deadline, reason="x")
    request = services.hazard_decide_extension(hazard=hazard, user=people["manager"], approve=True, comment="同意")
    assert request.status == "approved" and request.decided_by == people["manager"] and request.old_deadline == deadline
    hazard.refresh_from_db()
    assert hazard.deadline == deadline and hazard.due_date == new_deadline

    time_machine.move_to(
        timezone.make_aware(timezone.datetime.combine(deadline + timedelta(days=5), timezone.datetime.min.time()))
    )
    assert not Hazard.objects.overdue().filter(pk=hazard.pk).exists()
    assert services.escalate_overdue()["marked"] == 0
    time_machine.move_to(
        timezone.make_aware(timezone.datetime.combine(new_deadline + timedelta(days=1), timezone.datetime.min.time()))
    )
    assert Hazard.objects.overdue().filter(pk=hazard.pk).exists()
    assert services.escalate_overdue()["marked"] == 1
    hazard.refresh_from_db()
    assert hazard.is_overdue and hazard.days_overdue == 1


def test_major_extension_is_decided_by_the_regulator_and_refusal_needs_a_reason(world, people, make_hazard):
    hazard = make_hazard("rectifying", grade="major")
    services.hazard_request_extension(
        hazard=hazard, user=people["officer"], new_deadline=hazard.due_date + timedelta(days=9), reason="r"
    )
    with pytest.raises(PermissionDenied):
        services.hazard_decide_extension(hazard=hazard, user=people["manager"], approve=True)
    with pytest.raises(InvalidInput):
        services.hazard_decide_extension(hazard=hazard, user=world.inspector, approve=False)
    request = services.hazard_decide_extension(hazard=hazard, user=world.inspector, approve=False, comment="理由不充分")
    hazard.refresh_from_db()
    assert request.status == "refused" and hazard.due_date == hazard.deadline


def test_extension_must_move_the_deadline_later(world, people, make_hazard):
    hazard = make_hazard("rectifying")
    with pytest.raises(InvalidInput):
        services.hazard_request_extension(
            hazard=hazard, user=people["officer"], new_deadline=hazard.due_date, reason="r"
        )


def test_enterprise_cannot_push_a_regulator_deadline_by_planning(world, people):
    deadline = TODAY() + timedelta(days=7)
    hazard = services.hazard_report(
        enterprise=world.here, user=world.inspector, source="inspection", description="d", deadline=deadline
    )
    with pytest.raises(InvalidInput):
        services.hazard_start_rectification(
            hazard=hazard, user=people["officer"], deadline=deadline + timedelta(days=30)
        )
    hazard = services.hazard_start_rectification(hazard=hazard, user=people["officer"], measures="m")
    assert hazard.due_date == deadline


# --- who may act -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "persona,allowed",
    [
        ("officer", []),
        ("manager", ["confirm", "dismiss"]),
        ("principal", ["confirm", "dismiss"]),
        ("inspector", ["confirm", "dismiss"]),
        ("city_admin", ["confirm", "dismiss"]),
        ("other_inspector", []),
        ("park_manager", []),
        ("there_user", []),
        ("auditor", []),
    ],
)
def test_permission_matrix_on_a_reported_ordinary_hazard(world, people, make_hazard, persona, allowed):
    hazard = make_hazard("reported")
    user = people.get(persona) or getattr(world, persona)
    assert policy.allowed_actions(hazard, user) == allowed


@pytest.mark.parametrize(
    "persona,allowed",
    [
        ("officer", ["request_extension"]),
        ("manager", ["request_extension"]),
        ("inspector", ["list_supervision"]),
        ("other_inspector", []),
        ("park_manager", []),
    ],
)
def test_permission_matrix_on_a_rectifying_major_hazard(world, people, make_hazard, persona, allowed):
    hazard = make_hazard("rectifying", grade="major")
    hazard.refresh_from_db()
    user = people.get(persona) or getattr(world, persona)
    # submit_rectification is allowed for members; list it separately to keep the matrix readable.
    got = [a for a in policy.allowed_actions(hazard, user) if a != "submit_rectification"]
    assert got == allowed


# --- concurrency ---------------------------------------------------------------------------------


def test_a_stale_writer_loses_the_compare_and_set(world, people, make_hazard):
    hazard = make_hazard("submitted")
    stale = Hazard.objects.get(pk=hazard.pk)
    services.hazard_verify(hazard=hazard, user=people["manager"])
    assert not services.compare_and_set_status(
        stale, expected_status=stale.status, expected_version=stale.version, new_status="rectifying"
    )
    with pytest.raises(TransitionNotAllowed):
        services.hazard_fail_verification(hazard=stale, user=people["manager"], reason="late")
    assert HazardTransition.objects.filter(hazard=hazard, action__in=["verify", "fail_verification"]).count() == 1


@pytest.mark.postgres
@pytest.mark.skipif(not settings.USING_POSTGRES, reason="needs PostgreSQL row locks")
@pytest.mark.django_db(transaction=True)
def test_two_people_verifying_at_once_exactly_one_succeeds(world, people, make_hazard):
    hazard = make_hazard("submitted")
    barrier = threading.Barrier(4)
    outcomes = []

    def worker(user, act):
        try:
            barrier.wait()
            act(hazard=Hazard.objects.get(pk=hazard.pk), user=user)
            outcomes.append("ok")
        except DomainError:
            outcomes.append("conflict")
        finally:
            connection.close()

    def fail(hazard, user):
        return services.hazard_fail_verification(hazard=hazard, user=user, reason="no")

    threads = [
        threading.Thread(target=worker, args=(people["manager"], services.hazard_verify)),
        threading.Thread(target=worker, args=(people["principal"], services.hazard_verify)),
        threading.Thread(target=worker, args=(world.inspector, services.hazard_verify)),
        threading.Thread(target=worker, args=(world.city_admin, fail)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "ok"]
    hazard.refresh_from_db()
    assert hazard.transitions.filter(from_status="submitted").count() == 1
