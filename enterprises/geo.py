"""Region boundaries for the offline risk map: GeoJSON validation, loading, and small geometry helpers.

No GIS library: the map needs only bounding boxes, point-in-polygon (demo coordinates) and the raw
GeoJSON that ECharts draws with ``registerMap``; real boundaries are loaded by an admin with
``manage.py load_boundaries FILE.geojson`` (features matched to regions by a code property).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from django.db import transaction

DATA_DIR = Path(__file__).resolve().parent / "data" / "geo"
DEMO_BOUNDARIES = DATA_DIR / "suzhou-demo.geojson"
# Properties tried, in order, to find a feature's region code (DataV / ECharts files use adcode or id).
CODE_PROPERTIES = ("code", "adcode", "region_code")
POLYGON_TYPES = ("Polygon", "MultiPolygon")


class GeoJSONError(ValueError):
    """A boundary file that cannot be loaded; the message says what is wrong and where."""


@dataclass
class LoadResult:
    loaded: list[str] = field(default_factory=list)  # region codes written
    unknown: list[str] = field(default_factory=list)  # codes with no region (skipped)


def polygons(geometry: dict) -> list[list[list[list[float]]]]:
    """A Polygon or MultiPolygon as a list of polygons (each a list of rings of [lon, lat])."""
    return [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]


def bbox(geometry: dict) -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat) of the outer rings."""
    xs, ys = [], []
    for polygon in polygons(geometry):
        for lon, lat, *_ in polygon[0]:
            xs.append(lon)
            ys.append(lat)
    return min(xs), min(ys), max(xs), max(ys)


def _in_ring(lon: float, lat: float, ring) -> bool:
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i][0], ring[i][1]
        xj, yj = ring[j][0], ring[j][1]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def contains(geometry: dict, lon: float, lat: float) -> bool:
    """Even-odd point-in-polygon, holes honoured."""
    for polygon in polygons(geometry):
        if _in_ring(lon, lat, polygon[0]) and not any(_in_ring(lon, lat, hole) for hole in polygon[1:]):
            return True
    return False


def random_point_in(geometry: dict, rng, *, near: tuple[float, float] | None = None, radius: float = 0.0):
    """A uniformly random (lon, lat) inside ``geometry`` (optionally within ``radius`` degrees of ``near``)."""
    min_lon, min_lat, max_lon, max_lat = bbox(geometry)
    if near is not None:
        min_lon, max_lon = max(min_lon, near[0] - radius), min(max_lon, near[0] + radius)
        min_lat, max_lat = max(min_lat, near[1] - radius), min(max_lat, near[1] + radius)
    for _ in range(10_000):
        lon, lat = rng.uniform(min_lon, max_lon), rng.uniform(min_lat, max_lat)
        if contains(geometry, lon, lat):
            return lon, lat
    if near is not None:  # the neighbourhood missed the polygon: anywhere inside it will do
        return random_point_in(geometry, rng)
    raise GeoJSONError("polygon too thin to sample a point in")


def _check_position(pos, where: str) -> None:
    if not isinstance(pos, list | tuple) or len(pos) < 2 or not all(isinstance(v, int | float) for v in pos[:2]):
        raise GeoJSONError(f"{where}: a position must be [longitude, latitude]")
    lon, lat = pos[0], pos[1]
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise GeoJSONError(f"{where}: [{lon}, {lat}] is not a WGS-84 longitude/latitude")


def validate_geometry(geometry, where: str) -> dict:
    if not isinstance(geometry, dict) or geometry.get("type") not in POLYGON_TYPES:
        kind = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
        raise GeoJSONError(f"{where}: geometry must be a Polygon or MultiPolygon, not {kind}")
    coords = geometry.get("coordinates")
    if not isinstance(coords, list) or not coords:
        raise GeoJSONError(f"{where}: geometry has no coordinates")
    for p, polygon in enumerate(polygons(geometry)):
        if not isinstance(polygon, list) or not polygon:
            raise GeoJSONError(f"{where}: polygon {p} has no rings")
        for r, ring in enumerate(polygon):
            if not isinstance(ring, list) or len(ring) < 4:
                raise GeoJSONError(f"{where}: polygon {p} ring {r} needs at least 4 positions")
            for pos in ring:
                _check_position(pos, f"{where} polygon {p} ring {r}")
    return {"type": geometry["type"], "coordinates": coords}


def feature_code(feature: dict, code_property: str | None = None) -> str | None:
    props = feature.get("properties") or {}
    names = (code_property,) if code_property else CODE_PROPERTIES
    for name in names:
        value = props.get(name)
        if value not in (None, ""):
            return str(value).strip()
    if not code_property and feature.get("id") not in (None, ""):
        return str(feature["id"]).strip()
    return None


def parse_feature_collection(data, *, code_property: str | None = None) -> list[tuple[str, dict]]:
    """[(region code, geometry)] from a GeoJSON FeatureCollection, or GeoJSONError saying what is wrong."""
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise GeoJSONError('not a GeoJSON FeatureCollection (top-level "type" must be "FeatureCollection")')
    features = data.get("features")
    if not isinstance(features, list) or not features:
        raise GeoJSONError("the FeatureCollection has no features")
    out, seen = [], set()
    for i, feature in enumerate(features):
        where = f"feature {i}"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise GeoJSONError(f"{where}: not a GeoJSON Feature")
        code = feature_code(feature, code_property)
        if not code:
            wanted = code_property or " / ".join(CODE_PROPERTIES) + " / id"
            raise GeoJSONError(f"{where}: no region code (property {wanted})")
        where = f"feature {i} (code {code})"
        if code in seen:
            raise GeoJSONError(f"{where}: the code appears twice")
        seen.add(code)
        out.append((code, validate_geometry(feature.get("geometry"), where)))
    return out


def read_geojson(path) -> dict:
    try:
        with open(path, encoding="utf-8-sig") as fh:
            return json.load(fh)
    except FileNotFoundError as exc:
        raise GeoJSONError(f"{path}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise GeoJSONError(f"{path}: not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise GeoJSONError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc


def boundaries_load(*, data: dict, source: str = "", code_property: str | None = None, skip_unknown=False):
    """Write one RegionBoundary per feature (replacing an existing one), atomically.

    Codes without a region are an error unless ``skip_unknown`` (then they are reported and skipped).
    """
    from enterprises.models import RegionBoundary
    from regulator.models import Region

    items = parse_feature_collection(data, code_property=code_property)
    regions = {r.code: r for r in Region.objects.filter(code__in=[code for code, _ in items])}
    result = LoadResult(unknown=[code for code, _ in items if code not in regions])
    if result.unknown and not skip_unknown:
        shown = ", ".join(result.unknown[:10]) + (" ..." if len(result.unknown) > 10 else "")
        raise GeoJSONError(
            f"{len(result.unknown)} feature(s) match no region: {shown} (load the regions first, or skip them)"
        )
    with transaction.atomic():
        for code, geometry in items:
            if code not in regions:
                continue
            min_lon, min_lat, max_lon, max_lat = bbox(geometry)
            RegionBoundary.objects.update_or_create(
                region=regions[code],
                defaults={
                    "geometry": geometry,
                    "min_lon": min_lon,
                    "min_lat": min_lat,
                    "max_lon": max_lon,
                    "max_lat": max_lat,
                    "source": source[:200],
                },
            )
            result.loaded.append(code)
    return result


@cache
def demo_geometries() -> dict[str, dict]:
    """The shipped demo boundaries by region code (used by the demo seeder for coordinates)."""
    return dict(parse_feature_collection(read_geojson(DEMO_BOUNDARIES)))
