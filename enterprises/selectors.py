"""Reads of the registry, always starting from what the user may see (regulator.scoping)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from enterprises.models import (
    Enterprise,
    EnterpriseChange,
    HazardousSubstance,
    Industry,
    Licence,
    MajorHazardInstallation,
)
from regulator import scoping
from regulator.models import Park, Region


def enterprises_visible_to(user) -> QuerySet[Enterprise]:
    """The one starting point for every enterprise a user is shown; out of scope is simply absent."""
    return scoping.scope(Enterprise.objects.all(), user)


def enterprise_list(user) -> QuerySet[Enterprise]:
    return enterprises_visible_to(user).select_related("region", "park", "industry")


def enterprise_for_dossier(user, pk) -> Enterprise:
    """Raises Enterprise.DoesNotExist when missing or out of scope (callers answer 404)."""
    return enterprise_list(user).get(pk=pk)


def licences_visible_to(user) -> QuerySet[Licence]:
    return scoping.scope(Licence.objects.select_related("enterprise"), user, prefix="enterprise__")


def installations_visible_to(user) -> QuerySet[MajorHazardInstallation]:
    return scoping.scope(
        MajorHazardInstallation.objects.select_related("enterprise").prefetch_related(
            Prefetch("substances", queryset=HazardousSubstance.objects.order_by("id"))
        ),
        user,
        prefix="enterprise__",
    )


def changes_visible_to(user) -> QuerySet[EnterpriseChange]:
    return scoping.scope(EnterpriseChange.objects.select_related("user"), user, prefix="enterprise__")


def regions_for_filter(user) -> QuerySet[Region]:
    ids = scoping.region_scope_ids(user)
    qs = Region.objects.order_by("path")
    return qs if ids is None else qs.filter(id__in=ids)


def regions_writable_by(user) -> QuerySet[Region]:
    if user.is_superuser:
        return Region.objects.order_by("path")
    if user.is_regulator:
        return Region.objects.filter(id__in=scoping.jurisdiction_region_ids(user)).order_by("path")
    return Region.objects.none()


def parks_for_filter(user) -> QuerySet[Park]:
    qs = Park.objects.select_related("region").order_by("code")
    if user.is_superuser:
        return qs
    if user.is_park_manager:
        return qs.filter(pk=user.park_id)
    if user.is_regulator:
        return qs.filter(region_id__in=scoping.jurisdiction_region_ids(user))
    return qs.none()


def industries() -> QuerySet[Industry]:
    return Industry.objects.order_by("section", "code")


def industry_tree() -> list[dict]:
    """The whole GB/T 4754 tree, nested, from one query."""
    nodes = {}
    roots = []
    for ind in Industry.objects.order_by("level", "code").values(
        "id", "code", "name", "level", "parent_id", "high_risk_sector"
    ):
        node = {**ind, "children": []}
        nodes[ind["id"]] = node
        parent = nodes.get(ind["parent_id"])
        (parent["children"] if parent else roots).append(node)
    for node in nodes.values():
        node.pop("parent_id")
        node["children"].sort(key=lambda n: n["code"])
    return sorted(roots, key=lambda n: n["code"])
