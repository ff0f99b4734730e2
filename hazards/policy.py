"""Who may take which hazard action: the state machine says *when*, this module says *who*."""

from __future__ import annotations

from hazards.choices import REGULATOR_SOURCES, HazardAction, actions_from
from regulator.choices import EnterpriseRole
from regulator.scoping import jurisdiction_region_ids

MANAGER_ROLES = frozenset({EnterpriseRole.SAFETY_MANAGER, EnterpriseRole.PRINCIPAL})


def is_member(user, enterprise) -> bool:
    """An enterprise user granted on this enterprise."""
    if user is None or not user.is_authenticated or not user.is_active or not user.is_enterprise_user:
        return False
    cache = user.__dict__.setdefault("_hazard_member_cache", {})
    if enterprise.pk not in cache:
        cache[enterprise.pk] = user.has_perm("enterprises.view_enterprise", enterprise)
    return cache[enterprise.pk]


def is_manager(user, enterprise) -> bool:
    """The enterprise's safety manager or principal (decides ordinary hazards)."""
    return is_member(user, enterprise) and user.enterprise_role in MANAGER_ROLES


def is_regulator_for(user, enterprise) -> bool:
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return user.is_regulator and enterprise.region_id in jurisdiction_region_ids(user)


def can_report(user, enterprise) -> bool:
    return is_member(user, enterprise) or is_regulator_for(user, enterprise) or _is_park_manager_for(user, enterprise)


def _is_park_manager_for(user, enterprise) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_park_manager
        and user.park_id
        and user.park_id == enterprise.park_id
    )


def can_take(user, action: str, hazard) -> bool:
    """Whether ``user`` may take ``action`` on ``hazard`` (ignoring the state)."""
    ent = hazard.enterprise
    regulator = is_regulator_for(user, ent)
    if action == HazardAction.CONFIRM:
        return regulator or is_manager(user, ent)
    if action == HazardAction.DISMISS:
        if hazard.is_major or hazard.source in REGULATOR_SOURCES:
            return regulator
        return regulator or is_manager(user, ent)
    if action in (
        HazardAction.START_RECTIFICATION,
        HazardAction.SUBMIT_RECTIFICATION,
        HazardAction.REQUEST_EXTENSION,
    ):
        return is_member(user, ent)
    if action in (HazardAction.VERIFY, HazardAction.FAIL_VERIFICATION):
        # Only the regulator verifies and closes a major hazard.
        return regulator if hazard.is_major else regulator or is_manager(user, ent)
    if action == HazardAction.DECIDE_EXTENSION:
        # Ordinary: the enterprise's safety manager (or principal) decides; major: the regulator.
        return regulator if hazard.is_major else is_manager(user, ent)
    if action == HazardAction.LIST_SUPERVISION:
        return regulator and hazard.is_major and not hazard.listed
    return False


def extra_condition(action: str, hazard) -> bool:
    """Conditions on sub-records that the status alone does not capture."""
    if action == HazardAction.REQUEST_EXTENSION:
        return not hazard_has_pending_extension(hazard)
    if action == HazardAction.DECIDE_EXTENSION:
        return hazard_has_pending_extension(hazard)
    if action == HazardAction.LIST_SUPERVISION:
        return hazard.is_major and not hazard.listed
    return True


def hazard_has_pending_extension(hazard) -> bool:
    cached = hazard.__dict__.get("_pending_extension")
    if cached is None:
        cached = hazard.extensions.filter(status="pending").exists()
        hazard.__dict__["_pending_extension"] = cached
    return cached


def state_actions(hazard) -> list[str]:
    """Actions the current state allows, with sub-record conditions, whoever asks."""
    return [a for a in actions_from(hazard.status) if extra_condition(a, hazard)]


def allowed_actions(hazard, user) -> list[str]:
    """Actions ``user`` may take on ``hazard`` right now."""
    return [a for a in state_actions(hazard) if can_take(user, a, hazard)]


def can_upload_photo(user, hazard) -> bool:
    if hazard.status in ("closed", "dismissed"):
        return False
    return is_member(user, hazard.enterprise) or is_regulator_for(user, hazard.enterprise)
