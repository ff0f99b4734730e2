"""Rebuild suzhou-demo.geojson (the demo's region boundaries) from the ECharts map packages.

Run once by a developer, not by the application; it needs shapely and the sdist of
echarts-china-cities-pypkg (MIT), both from PyPI:

    pip download --no-deps --no-build-isolation echarts-china-cities-pypkg==0.0.9   # needs pyecharts-jupyter-installer
    tar xzf echarts-china-cities-pypkg-0.0.9.tar.gz
    python build_demo_boundaries.py echarts-china-cities-pypkg-0.0.9 > suzhou-demo.geojson

City (320500) and county outlines come from the package; township cells are SYNTHETIC (a Voronoi
partition of each county, clipped to it), because no package carries township boundaries.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from shapely.geometry import MultiPoint, Point, mapping, shape
from shapely.ops import unary_union, voronoi_diagram

# The demo's regions (see enterprises/demo.py COUNTIES): code -> township names in order.
COUNTIES = {
    "320581": ("常熟市", 10),
    "320582": ("张家港市", 8),
    "320585": ("太仓市", 6),
}
SIMPLIFY = 0.002  # degrees, ~200 m: plenty for a county-scale map, keeps the file small


def js_object_to_json(text: str) -> str:
    """Quote the bare keys of a JS object literal (strings are copied untouched)."""
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif ch.isalpha() or ch == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            out.append(f'"{word}"' if text[j : j + 1] == ":" else word)
            i = j
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def decode_ring(encoded: str, offset, scale: float = 1024) -> list[list[float]]:
    """ECharts' compressed ring: zigzag + delta encoded integers, two characters per vertex."""
    x_prev, y_prev = offset
    ring = []
    for k in range(0, len(encoded), 2):
        x = ord(encoded[k]) - 64
        y = ord(encoded[k + 1]) - 64
        x = (x >> 1) ^ (-(x & 1))
        y = (y >> 1) ^ (-(y & 1))
        x_prev += x
        y_prev += y
        ring.append([x_prev / scale, y_prev / scale])
    return ring


def decode_geometry(geometry: dict) -> dict:
    if geometry["type"] == "Polygon":
        rings = [decode_ring(r, o) for r, o in zip(geometry["coordinates"], geometry["encodeOffsets"], strict=True)]
        return {"type": "Polygon", "coordinates": rings}
    polygons = [
        [decode_ring(r, o) for r, o in zip(poly, offs, strict=True)]
        for poly, offs in zip(geometry["coordinates"], geometry["encodeOffsets"], strict=True)
    ]
    return {"type": "MultiPolygon", "coordinates": polygons}


def load_city(package_dir: Path) -> dict:
    js = next(package_dir.rglob("jiang1_su1_su1_zhou1.js")).read_text(encoding="utf-8")
    start = js.index('registerMap("苏州",') + len('registerMap("苏州",')
    depth, end, in_string = 0, start, False
    for end in range(start, len(js)):  # the encoded rings contain braces: skip strings
        ch = js[end]
        if ch == '"' and js[end - 1] != "\\":
            in_string = not in_string
        elif not in_string and ch == "{":
            depth += 1
        elif not in_string and ch == "}":
            depth -= 1
            if depth == 0:
                break
    literal = js_object_to_json(js[start : end + 1]).replace("!0", "true").replace("!1", "false")
    return json.loads(literal)


def rounded(geom) -> dict:
    def walk(c):
        return [round(c[0], 5), round(c[1], 5)] if isinstance(c[0], float) else [walk(x) for x in c]

    data = mapping(geom)
    return {"type": data["type"], "coordinates": walk(json.loads(json.dumps(data["coordinates"])))}


def townships(county, n: int, rng: random.Random) -> list:
    """n cells of roughly equal area: Lloyd-relaxed Voronoi seeds inside the county."""
    minx, miny, maxx, maxy = county.bounds
    samples = []
    while len(samples) < 3000:
        p = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if county.contains(p):
            samples.append(p)
    seeds = [(p.x, p.y) for p in samples[:n]]
    for _ in range(20):
        groups = [[] for _ in seeds]
        for p in samples:
            k = min(range(n), key=lambda i: (p.x - seeds[i][0]) ** 2 + (p.y - seeds[i][1]) ** 2)
            groups[k].append(p)
        seeds = [
            (sum(q.x for q in g) / len(g), sum(q.y for q in g) / len(g)) if g else seeds[i]
            for i, g in enumerate(groups)
        ]
    cells = voronoi_diagram(MultiPoint(seeds), envelope=county.envelope.buffer(0.1))
    ordered = []
    for sx, sy in sorted(seeds, key=lambda s: (-s[1], s[0])):  # north to south, west to east
        cell = next(c for c in cells.geoms if c.contains(Point(sx, sy)))
        ordered.append(cell.intersection(county))
    return ordered


def build(package_dir: Path) -> dict:
    city = load_city(package_dir)
    districts = {f["id"]: f for f in city["features"]}
    rng = random.Random(320500)
    features = []
    outline = unary_union([shape(decode_geometry(f["geometry"])) for f in city["features"]]).buffer(0)
    features.append(("320500", "苏州市", outline))
    for code, (name, n_towns) in COUNTIES.items():
        county = shape(decode_geometry(districts[code]["geometry"])).buffer(0)
        assert districts[code]["properties"]["name"] == name, districts[code]["properties"]["name"]
        features.append((code, name, county))
        for i, cell in enumerate(townships(county, n_towns, rng), start=1):
            features.append((f"{code}{i:03d}", None, cell))
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": code, **({"name": name} if name else {})},
                "geometry": rounded(geom.simplify(SIMPLIFY, preserve_topology=True)),
            }
            for code, name, geom in features
        ],
    }


if __name__ == "__main__":
    json.dump(build(Path(sys.argv[1])), sys.stdout, ensure_ascii=False, separators=(",", ":"))
