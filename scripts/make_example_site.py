"""Write examples/sites/industrial_yard.geojson, the example site of docs/world.md ("Site maps").

An invented 240 m x 150 m industrial yard in a local metric frame (origin at (500, 300), metres):
three halls (a rectangle, an L-shape and one round a courtyard), an L-shaped workshop, two round
tanks, a storage yard of container stacks (one MultiPolygon), a slanted conveyor, 140 sensor
points (PoIs) kept at least 8 m from every obstacle, the gate where the MTs start and two
charging stations. Deterministic: running it again writes the same bytes.

    .venv/bin/python scripts/make_example_site.py [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Point, Polygon

OX, OY = 500.0, 300.0  # the yard's south-west corner in the local frame
W, H = 240.0, 150.0
CLEARANCE = 8.0  # metres between a sensor point and any obstacle
NUM_SENSORS = 140
OUT = Path(__file__).resolve().parents[1] / "examples" / "sites" / "industrial_yard.geojson"


def rect(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def circle(cx: float, cy: float, r: float, n: int = 32) -> list[tuple[float, float]]:
    return [
        (cx + r * math.cos(2 * math.pi * i / n), cy + r * math.sin(2 * math.pi * i / n))
        for i in range(n)
    ]


def strip(a: tuple[float, float], b: tuple[float, float], w: float) -> list[tuple[float, float]]:
    """A slanted rectangle of width ``w`` along the segment a-b."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    n = math.hypot(dx, dy)
    ox, oy = -dy / n * w / 2, dx / n * w / 2
    return [
        (a[0] + ox, a[1] + oy),
        (a[0] - ox, a[1] - oy),
        (b[0] - ox, b[1] - oy),
        (b[0] + ox, b[1] + oy),
    ]


def ring(points: list[tuple[float, float]]) -> list[list[float]]:
    """A closed GeoJSON ring in the local frame, counter-clockwise, millimetre precision."""
    pts = [[round(OX + x, 3), round(OY + y, 3)] for x, y in points]
    return [*pts, pts[0]]


OBSTACLES: list[tuple[str, list[list[list[tuple[float, float]]]]]] = [
    # name, polygons (each: exterior ring, then holes)
    ("hall A", [[rect(20, 90, 80, 130)]]),
    ("hall B", [[[(110, 60), (135, 60), (135, 95), (170, 95), (170, 130), (110, 130)]]]),
    ("hall C", [[rect(185, 85, 225, 135), rect(197, 100, 213, 120)[::-1]]]),
    ("workshop", [[[(20, 20), (70, 20), (70, 35), (45, 35), (45, 55), (20, 55)]]]),
    ("tank T1", [[circle(100, 35, 12)]]),
    ("tank T2", [[circle(132, 28, 7)]]),
    (
        "storage yard",
        [[rect(160, 18, 172, 50)], [rect(182, 18, 194, 50)], [rect(204, 18, 216, 50)]],
    ),
    ("conveyor", [[strip((82, 62), (104, 82), 3.0)]]),
]


def feature(kind: str, geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"kind": kind, **props}, "geometry": geometry}


def obstacle_feature(name: str, polys: list[list[list[tuple[float, float]]]]) -> dict[str, Any]:
    coords = [[ring(r) for r in poly] for poly in polys]
    if len(coords) == 1:
        return feature("obstacle", {"type": "Polygon", "coordinates": coords[0]}, name=name)
    return feature("obstacle", {"type": "MultiPolygon", "coordinates": coords}, name=name)


def point(kind: str, x: float, y: float, **props: Any) -> dict[str, Any]:
    geom = {"type": "Point", "coordinates": [round(OX + x, 3), round(OY + y, 3)]}
    return feature(kind, geom, **props)


def sensors(rng: random.Random) -> list[tuple[float, float, float]]:
    """Sensor points (x, y, data) at least CLEARANCE from every obstacle's outline."""
    solids = [
        MultiPolygon([Polygon(poly[0]) for poly in polys]) for _, polys in OBSTACLES
    ]  # outer outlines: no sensor inside a courtyard
    blocked = shapely.union_all(solids)
    found: list[tuple[float, float, float]] = []
    while len(found) < NUM_SENSORS:
        x, y = rng.uniform(4, W - 4), rng.uniform(4, H - 4)
        if blocked.distance(Point(x, y)) >= CLEARANCE:
            found.append((round(x, 2), round(y, 2), round(rng.uniform(0.2, 1.0), 3)))
    return found


def build() -> dict[str, Any]:
    feats = [
        feature("area", {"type": "Polygon", "coordinates": [ring(rect(0, 0, W, H))]}, name="yard")
    ]
    feats += [obstacle_feature(name, polys) for name, polys in OBSTACLES]
    feats.append(point("start", 8, 75, name="gate"))
    feats.append(point("station", 95, 142, name="charger north"))
    feats.append(point("station", 150, 75, name="charger east"))
    for i, (x, y, d) in enumerate(sensors(random.Random(2019)), 1):
        feats.append(point("poi", x, y, name=f"s-{i:03d}", data=d))
    return {"type": "FeatureCollection", "name": "industrial yard", "features": feats}


def dump(doc: dict[str, Any]) -> str:
    """One feature per line: small diffs when the generator changes."""
    feats = ",\n".join(json.dumps(f) for f in doc["features"])
    return (
        f'{{"type": "FeatureCollection", "name": {json.dumps(doc["name"])},\n'
        f'"features": [\n{feats}\n]}}\n'
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dump(build()), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
