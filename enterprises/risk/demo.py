"""The demo's hidden truth about risk, and its last step: train the model and grade.

Every enterprise gets a latent propensity (inherent part from its registry data plus noise) and
one "bad spell" of a few months when it is worse still. The hazards, enforcement, devices and
alerts seeders draw their history from ``intensity(ctx, enterprise_id, day)`` so that hazards,
alerts, penalties and credit correlate with it over about 18 months, and the model has something
real to learn. ``seed(ctx)`` runs last (``enterprises.risk`` in seed_demo's DEMO_APPS).
"""

from __future__ import annotations

import math

HISTORY_DAYS = 540  # about 18 months of behaviour
SPELL = 1.4  # added to the propensity during an enterprise's bad spell


def latent(ctx) -> dict[int, tuple[float, int, int]]:
    """{enterprise id: (base propensity, bad spell start as days ago, its length in days)}; built once."""
    if "risk_latent" in ctx.shared:
        return ctx.shared["risk_latent"]
    from django.db.models import Count, Min

    from enterprises.models import Enterprise

    rng = ctx.rng
    rows = (
        Enterprise.objects.order_by("id")
        .annotate(mh=Count("major_hazards"), best=Min("major_hazards__grade"))
        .values_list("id", "high_risk_sector", "standardisation_level", "scale", "mh", "best")
    )
    result = {}
    for pk, sector, standard, scale, mh, best in rows:
        base = rng.gauss(0.0, 0.7)
        base += 0.3 if sector else 0.0
        base += 0.2 if not standard else (-0.2 if standard == "1" else 0.0)
        base += 0.2 if scale == "micro" else 0.0
        base += 0.3 if mh else 0.0
        base += 0.2 if best == 1 else 0.0
        length = rng.randrange(60, 200)
        start = rng.randrange(0, HISTORY_DAYS)
        result[pk] = (base - 1.0, start, length)
    ctx.shared["risk_latent"] = result
    return result


def propensity(ctx, enterprise_id: int, days_ago: float) -> float:
    base, start, length = latent(ctx).get(enterprise_id, (0.0, -1, 0))
    in_spell = start - length < days_ago <= start
    return base + (SPELL if in_spell else 0.0)


def intensity(ctx, enterprise_id: int, days_ago: float, strength: float = 1.0) -> float:
    """exp(strength x propensity), at most 8: the multiplier of an event rate on that day."""
    return min(8.0, math.exp(strength * propensity(ctx, enterprise_id, days_ago)))


def poisson(rng, mean: float) -> int:
    """Knuth's Poisson sampler on the demo's seeded RNG (small means only)."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def seed(ctx) -> None:
    """Last demo step: train on the demo history, then grade every enterprise (the rules if the model loses)."""
    import time

    from enterprises.risk.grading import grade_enterprises
    from enterprises.risk.training import train_risk_model

    started = time.perf_counter()
    outcome = train_risk_model(as_of=ctx.now)
    summary = grade_enterprises(as_of=ctx.now)
    ctx.log(f"risk: {outcome.message}")
    ctx.log(f"risk: {summary} ({time.perf_counter() - started:.1f} s)")
