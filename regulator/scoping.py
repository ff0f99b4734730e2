"""Who sees which enterprise: the one rule every view, endpoint, admin page and consumer starts from.

- regulator staff (inspector, section head, regulator admin): enterprises in their jurisdiction subtree;
- park managers: enterprises of their park;
- enterprise users: the enterprises they hold ``enterprises.view_enterprise`` on (django-guardian);
- superusers: everything; MLPS admins and anyone else: nothing.

Other apps scope their rows through the enterprise they belong to:
``hazards.filter(enterprise_scope_q(user, prefix="enterprise__"))``.
"""

from __future__ import annotations

from django.db.models import Q

from regulator.models import Region

NOTHING = Q(pk__in=[])


def jurisdiction_region_ids(user) -> list[int]:
    if not user.jurisdiction_id:
        return []
    cache_attr = "_jurisdiction_region_ids"
    cached = getattr(user, cache_attr, None)
    if cached is None:
        cached = list(Region.objects.filter(path__startswith=user.jurisdiction.path).values_list("id", flat=True))
        setattr(user, cache_attr, cached)
    return cached


def enterprise_ids_granted(user):
    """Enterprise ids an enterprise user was granted, as a subquery."""
    from guardian.shortcuts import get_objects_for_user

    from enterprises.models import Enterprise

    return get_objects_for_user(
        user, "enterprises.view_enterprise", klass=Enterprise, accept_global_perms=False
    ).values("pk")


def enterprise_scope_q(user, prefix: str = "") -> Q | None:
    """A filter over Enterprise (reached through ``prefix``) for what ``user`` may see; None means all."""
    if user is None or not user.is_authenticated or not user.is_active:
        return NOTHING
    if user.is_superuser:
        return None
    if user.is_regulator:
        ids = jurisdiction_region_ids(user)
        return Q(**{f"{prefix}region_id__in": ids}) if ids else NOTHING
    if user.is_park_manager:
        return Q(**{f"{prefix}park_id": user.park_id}) if user.park_id else NOTHING
    if user.is_enterprise_user:
        return Q(**{f"{prefix}pk__in" if not prefix else f"{prefix}id__in": enterprise_ids_granted(user)})
    return NOTHING


def scope(queryset, user, prefix: str = ""):
    """Restrict any queryset whose rows belong to an enterprise (through ``prefix``) to ``user``'s scope."""
    q = enterprise_scope_q(user, prefix)
    return queryset if q is None else queryset.filter(q)


def region_scope_ids(user) -> list[int] | None:
    """Regions a user may browse (for filters and dashboards); None means all."""
    if user.is_superuser:
        return None
    if user.is_regulator:
        return jurisdiction_region_ids(user)
    if user.is_park_manager and user.park_id:
        return [user.park.region_id]
    return []
