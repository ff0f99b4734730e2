"""Reads behind the risk map: scoped enterprise points, server-side grid clustering, region boundaries.

Clustering is done in the database (GROUP BY grid cell with per-grade counts), so a view of 100,000
enterprises costs one aggregate query and a few hundred rows of JSON instead of shipping every
point to the browser. The cell size is a power of two in degrees picked from the view's extent, so
panning at one zoom keeps the same cells (clusters don't jump).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.db.models import Avg, Count, FloatField, Max, Min, Q, QuerySet
from django.db.models.functions import Cast, Floor
from django.urls import reverse

from enterprises.choices import RiskGrade
from enterprises.models import Enterprise, RegionBoundary
from enterprises.selectors import enterprises_visible_to
from regulator import scoping
from regulator.models import Region

# Worst first; "none" = not graded yet. A cluster takes the colour of its worst member.
GRADES = ["red", "orange", "yellow", "blue", "none"]
GRID_COLUMNS = 12  # 12-24 cells across the view: cells of 50+ px on a screen, so bubbles seldom overlap
POINTS_LIMIT = 1500  # up to this many in view: fetched, and only places with CLUSTER_MIN+ are clustered
CLUSTER_MIN = 5  # (beyond the limit every cell of two or more is a cluster)
MIN_CELL = 2.0**-12  # ~25 m: beyond this, whatever still shares a cell is shown as points


def can_view_map(user) -> bool:
    """Regulators and park managers (and superusers); enterprise users have the dossier, not the map."""
    return bool(user.is_authenticated and (user.is_superuser or user.is_regulator or user.is_park_manager))


@dataclass(frozen=True)
class MapFilters:
    grade: str = ""  # one of GRADES or ""
    section: str = ""  # industry section letter
    park_id: int | None = None
    is_key: bool | None = None
    region: Region | None = None  # the region drilled into (subtree)


def map_enterprises(user, filters: MapFilters) -> QuerySet[Enterprise]:
    qs = enterprises_visible_to(user).filter(longitude__isnull=False, latitude__isnull=False)
    if filters.grade == "none":
        qs = qs.filter(risk_grade="")
    elif filters.grade:
        qs = qs.filter(risk_grade=filters.grade)
    if filters.section:
        qs = qs.filter(industry__section=filters.section)
    if filters.park_id:
        qs = qs.filter(park_id=filters.park_id)
    if filters.is_key is not None:
        qs = qs.filter(is_key=filters.is_key)
    if filters.region is not None:
        qs = qs.filter(region__path__startswith=filters.region.path)
    return qs


def cell_size(bbox: tuple[float, float, float, float]) -> float:
    """Grid cell in degrees: a power of two so that cells stay put while the user pans."""
    span = max(bbox[2] - bbox[0], bbox[3] - bbox[1], 1e-9)
    return max(MIN_CELL, 2.0 ** math.floor(math.log2(span / GRID_COLUMNS)))


def _grade_key(grade: str) -> str:
    return grade or "none"


def _point_rows(qs) -> list[dict]:
    labels = dict(RiskGrade.choices)
    rows = qs.values_list(
        "id", "name", "longitude", "latitude", "risk_grade", "risk_profile__score", "industry__name", "is_key"
    ).order_by()
    detail = reverse("enterprises:detail", args=[0])[:-2]  # ".../0/" -> prefix; avoids one reverse() per row
    return [
        {
            "id": pk,
            "name": name,
            "lon": float(lon),
            "lat": float(lat),
            "grade": _grade_key(grade),
            "grade_label": str(labels.get(grade, "")),
            "score": None if score is None else round(score, 1),
            "industry": industry,
            "key": is_key,
            "url": f"{detail}{pk}/",
        }
        for pk, name, lon, lat, grade, score, industry, is_key in rows
    ]


def map_points(qs: QuerySet[Enterprise], bbox: tuple[float, float, float, float]) -> dict:
    """Enterprises of ``qs`` inside ``bbox``: individual points, or grid clusters when there are many."""
    min_lon, min_lat, max_lon, max_lat = bbox
    qs = qs.filter(longitude__gte=min_lon, longitude__lte=max_lon, latitude__gte=min_lat, latitude__lte=max_lat)
    cell = cell_size(bbox)
    lon_f, lat_f = Cast("longitude", FloatField()), Cast("latitude", FloatField())
    grade_counts = {f"n_{g}": Count("id", filter=Q(risk_grade="" if g == "none" else g)) for g in GRADES}
    cells = list(
        qs.order_by()
        .annotate(cx=Floor(lon_f / cell), cy=Floor(lat_f / cell))
        .values("cx", "cy")
        .annotate(n=Count("id"), lon=Avg(lon_f), lat=Avg(lat_f), first=Min("id"), **grade_counts)
    )
    grades = {g: sum(c[f"n_{g}"] for c in cells) for g in GRADES}
    total = sum(c["n"] for c in cells)
    result = {"bbox": list(bbox), "cell": cell, "total": total, "grades": grades, "clusters": [], "points": []}
    if cell <= MIN_CELL:  # street level: whatever is left is shown as it is
        result["clustered"] = False
        result["points"] = _point_rows(qs)
        return result
    if total <= POINTS_LIMIT:
        # Few enough to fetch: only the dense places become clusters, the rest stay points.
        rows = _point_rows(qs)
        merged = merge_close(_cells_of(rows, cell), cell / 2)
        dense = [c for c in merged if c["n"] >= CLUSTER_MIN]
        result["points"] = [p for c in merged if c["n"] < CLUSTER_MIN for p in c["members"]]
    else:
        merged = merge_close(cells, cell / 2)
        dense = [c for c in merged if c["n"] > 1]
        singles = [c["first"] for c in merged if c["n"] == 1]
        if singles:
            result["points"] = _point_rows(Enterprise.objects.filter(pk__in=singles))
    for c in dense:
        counts = {g: c[f"n_{g}"] for g in GRADES}
        result["clusters"].append(
            {
                "lon": round(c["lon"], 6),
                "lat": round(c["lat"], 6),
                "count": c["n"],
                "grade": next(g for g in GRADES if counts[g]),
                "grades": counts,
            }
        )
    result["clustered"] = bool(result["clusters"])
    return result


def _cells_of(rows: list[dict], cell: float) -> list[dict]:
    """The database's grid (same floor(lon / cell)) over fetched points, members kept."""
    cells: dict[tuple[int, int], dict] = {}
    for p in rows:
        key = (math.floor(p["lon"] / cell), math.floor(p["lat"] / cell))
        c = cells.get(key)
        if c is None:
            c = cells[key] = {"n": 0, "lon": 0.0, "lat": 0.0, "first": p["id"], "members": []}
            c.update({f"n_{g}": 0 for g in GRADES})
        c["lon"] = (c["lon"] * c["n"] + p["lon"]) / (c["n"] + 1)
        c["lat"] = (c["lat"] * c["n"] + p["lat"]) / (c["n"] + 1)
        c["n"] += 1
        c["first"] = min(c["first"], p["id"])
        c[f"n_{p['grade']}"] += 1
        c["members"].append(p)
    return list(cells.values())


def merge_close(cells: list[dict], radius: float) -> list[dict]:
    """Merge grid cells whose centroids lie within ``radius`` of a bigger one's.

    Members of neighbouring cells can sit on either side of a cell border; without this their
    two bubbles would overlap on screen. Biggest first, a spatial hash keeps it linear.
    """
    kept: list[dict] = []
    buckets: dict[tuple[int, int], list[dict]] = {}
    for c in sorted(cells, key=lambda c: -c["n"]):
        bx, by = math.floor(c["lon"] / radius), math.floor(c["lat"] / radius)
        near = None
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for k in buckets.get((bx + dx, by + dy), ()):
                    if (k["lon"] - c["lon"]) ** 2 + (k["lat"] - c["lat"]) ** 2 <= radius**2:
                        near = k
                        break
        if near is None:
            c = dict(c)
            kept.append(c)
            buckets.setdefault((bx, by), []).append(c)
            continue
        n = near["n"] + c["n"]  # the centroid stays where the bucket put it (close enough at this size)
        near["lon"] = (near["lon"] * near["n"] + c["lon"] * c["n"]) / n
        near["lat"] = (near["lat"] * near["n"] + c["lat"] * c["n"]) / n
        near["n"] = n
        near["first"] = min(near["first"], c["first"])
        if "members" in near:
            near["members"] = near["members"] + c["members"]
        for g in GRADES:
            near[f"n_{g}"] += c[f"n_{g}"]
    return kept


# --- regions and their boundaries -----------------------------------------------------------


def visible_region_ids(user) -> set[int] | None:
    ids = scoping.region_scope_ids(user)
    return None if ids is None else set(ids)


def default_region(user) -> Region | None:
    """Where the map opens: the jurisdiction, the park's region, or (superuser) the widest boundary."""
    if user.is_superuser:
        top = RegionBoundary.objects.select_related("region").order_by("region__level", "region__code").first()
        return top.region if top else Region.objects.filter(parent=None).order_by("code").first()
    if user.is_regulator:
        return user.jurisdiction
    if user.is_park_manager and user.park_id:
        return user.park.region
    return None


def region_for(user, code: str | None) -> Region | None:
    """The region ``code`` if the user may see it (else Region.DoesNotExist); the default without a code."""
    if not code:
        return default_region(user)
    region = Region.objects.get(code=code)
    allowed = visible_region_ids(user)
    if allowed is not None and region.pk not in allowed:
        raise Region.DoesNotExist(code)
    return region


def breadcrumbs(user, region: Region) -> list[dict]:
    """From the user's top region down to ``region`` (links for drilling back up)."""
    allowed = visible_region_ids(user)
    return [{"code": r.code, "name": r.name} for r in region.ancestors() if allowed is None or r.pk in allowed]


def boundaries_geojson(user, region: Region | None) -> dict:
    """The region's outline and its children's, as one FeatureCollection for ``echarts.registerMap``."""
    features = []
    bbox = None
    if region is not None:
        allowed = visible_region_ids(user)
        children = Region.objects.filter(parent=region)
        if allowed is not None:
            children = children.filter(pk__in=allowed)
        child_ids = list(children.values_list("pk", flat=True))
        with_children = set(
            Region.objects.filter(parent_id__in=child_ids, boundary__isnull=False).values_list("parent_id", flat=True)
        )
        rows = RegionBoundary.objects.filter(region_id__in=[region.pk, *child_ids]).select_related("region")
        for b in sorted(rows, key=lambda b: (b.region_id != region.pk, b.region.code)):
            own = b.region_id == region.pk
            features.append(
                {
                    "type": "Feature",
                    "properties": {
                        # ECharts identifies regions by name; the code keeps it unique.
                        "name": f"{b.region.name}·{b.region.code}",
                        "label": b.region.name,
                        "code": b.region.code,
                        "role": "self" if own else "child",
                        "drill": (not own) and b.region_id in with_children,
                    },
                    "geometry": b.geometry,
                }
            )
            box = (b.min_lon, b.min_lat, b.max_lon, b.max_lat)
            if own:
                bbox = box  # the region's own outline frames the view; else the union of its children
            elif bbox is None:
                bbox = box
            elif features[0]["properties"]["role"] != "self":
                bbox = (min(bbox[0], box[0]), min(bbox[1], box[1]), max(bbox[2], box[2]), max(bbox[3], box[3]))
    return {"type": "FeatureCollection", "features": features, "bbox": list(bbox) if bbox else None}


def points_extent(qs: QuerySet[Enterprise]) -> tuple[float, float, float, float] | None:
    agg = qs.order_by().aggregate(a=Min("longitude"), b=Min("latitude"), c=Max("longitude"), d=Max("latitude"))
    if agg["a"] is None:
        return None
    return float(agg["a"]), float(agg["b"]), float(agg["c"]), float(agg["d"])
