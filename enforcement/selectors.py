"""Reads scoped to what a user may see. Plans belong to a jurisdiction; everything else to an enterprise."""

from __future__ import annotations

from enforcement.choices import DrawStatus
from enforcement.models import (
    CreditEvent,
    CreditScore,
    CreditScoreChange,
    DishonestyListing,
    Document,
    Draw,
    Inspection,
    InspectionPlan,
    InspectorProfile,
)
from regulator import scoping
from regulator.choices import Role


def plans_visible_to(user):
    qs = InspectionPlan.objects.select_related("jurisdiction")
    if not user.is_authenticated:
        return qs.none()
    if user.is_superuser:
        return qs
    if not user.is_regulator:
        return qs.none()
    return qs.filter(jurisdiction_id__in=scoping.jurisdiction_region_ids(user))


def draws_visible_to(user):
    return Draw.objects.filter(plan__in=plans_visible_to(user)).select_related("plan", "drawn_by")


def inspections_visible_to(user):
    return scoping.scope(Inspection.objects.select_related("enterprise", "plan", "leader"), user, "enterprise__")


def documents_visible_to(user):
    return scoping.scope(
        Document.objects.select_related("inspection__enterprise", "bureau"), user, "inspection__enterprise__"
    )


def inspectors_visible_to(user):
    qs = InspectorProfile.objects.select_related("user__jurisdiction").prefetch_related("specialties")
    if user.is_superuser:
        return qs
    if not user.is_authenticated or not user.is_regulator:
        return qs.none()
    return qs.filter(user__jurisdiction_id__in=scoping.jurisdiction_region_ids(user))


def credit_scores_visible_to(user):
    return scoping.scope(CreditScore.objects.select_related("enterprise"), user, "enterprise__")


def credit_events_visible_to(user):
    return scoping.scope(CreditEvent.objects.select_related("enterprise"), user, "enterprise__")


def credit_changes_visible_to(user):
    return scoping.scope(CreditScoreChange.objects.all(), user, "enterprise__")


def listings_visible_to(user):
    return scoping.scope(DishonestyListing.objects.select_related("enterprise"), user, "enterprise__")


def can_manage_plans(user) -> bool:
    """Section heads and regulator admins create plans, draw and decide; inspectors execute."""
    return user.is_authenticated and (user.is_superuser or user.role in {Role.SECTION_HEAD, Role.REGULATOR_ADMIN})


def can_issue_for(user, inspection) -> bool:
    """Team members, and section heads/admins of the jurisdiction, act on an inspection."""
    if user.is_superuser or can_manage_plans(user):
        return True
    return user.is_regulator and inspection.team.filter(pk=user.pk).exists()


# --- public (一公开): only what may be published ------------------------------------------------


def public_draws():
    return (
        Draw.objects.filter(status=DrawStatus.CURRENT).select_related("plan__jurisdiction").order_by("-drawn_at", "-id")
    )


def public_draws_all():
    """Superseded draws stay public too, with the reason: nothing is hidden."""
    return Draw.objects.select_related("plan__jurisdiction")
