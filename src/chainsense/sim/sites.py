"""Real site maps: a GeoJSON site (or a CSV of PoIs) turned into a fixed world map.

:func:`load_site` reads the file (``site_geojson`` / ``site_csv``), scales the site into the
world and replaces every obstacle by axis-aligned boxes that cover it (``boxes``):

* **Scaling.** The area rectangle maps onto ``[0, width] x [0, height]`` with one scale factor
  for both axes (the aspect ratio is kept): the site's longer side becomes the base parameters'
  larger side, the shorter side follows. A 240 m x 150 m yard on the 16 x 16 ``paper`` world
  becomes a 16 x 10 world, 1/15 world unit per metre.
* **Tolerance** (world units, after scaling): every point of an obstacle's boxes lies within
  ``tolerance`` of the real obstacle, and the boxes cover it completely (MTs never pass through
  a real obstacle). Axis-aligned outlines are covered exactly. ``Site.added_area`` is the area
  blocked beyond the real obstacles.
* **Checks.** PoIs, the start and the stations must lie in the area, outside every obstacle and
  outside every box of its decomposition; at most ``max_boxes`` boxes in all (the world's
  obstacle array has one row per box, and every step tests every box).

The returned :class:`Site` holds the map, the parameters to run it with (``base`` with the
world size, ``num_pois``, ``num_obstacles`` = number of boxes and the start replaced), the
station positions and the scaled original polygons for drawing. Run it with
``world.reset_with_map(site.map, site.params)``; ``params`` alone cannot express the map.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
import shapely.affinity
from jax import Array
from shapely.geometry.base import BaseGeometry

from chainsense.errors import ConfigError
from chainsense.sim.boxes import added_area, cover_with_boxes, points_in_boxes
from chainsense.sim.maps import WorldMap, validate_map
from chainsense.sim.params import WorldParams
from chainsense.sim.site_csv import load_poi_csv
from chainsense.sim.site_geojson import RawSite, read_geojson
from chainsense.sim.state import WorldState
from chainsense.sim.world import reset_with_map

DEFAULT_TOLERANCE = 0.25
"""World units: a quarter of the paper world's sensing range of 1.1."""
DEFAULT_MAX_BOXES = 256
MAX_ASPECT = 20.0
"""Longest site side over shortest side."""


@dataclass(frozen=True)
class Site:
    """A site scaled into the world: run ``reset_with_map(site.map, site.params)``."""

    map: WorldMap
    params: WorldParams
    stations: np.ndarray  # [S,2] world units
    polygons: tuple[BaseGeometry, ...]  # the original obstacles, scaled into the world
    names: tuple[str, ...]  # the feature label of each polygon
    box_owner: np.ndarray  # [C] index into polygons of the obstacle each box covers
    scale: float  # world units per site unit
    origin: tuple[float, float]  # site coordinates of the world's (0, 0)
    tolerance: float
    added_area: float  # world units^2 blocked by the boxes beyond the real obstacles

    @property
    def outlines(self) -> tuple[np.ndarray, ...]:
        """Every ring (exterior and holes) of every obstacle as a closed [N,2] array."""
        rings = []
        for geom in self.polygons:
            for part in getattr(geom, "geoms", [geom]):
                rings += [np.asarray(r.coords) for r in (part.exterior, *part.interiors)]
        return tuple(rings)

    @property
    def start(self) -> tuple[float, float]:
        """Where every MT starts (world units)."""
        return self.params.start

    def to_world(self, xy: np.ndarray) -> np.ndarray:
        """Site-frame points [N,2] in world units."""
        return (np.asarray(xy, dtype=np.float64) - np.asarray(self.origin)) * self.scale

    def reset(self) -> tuple[WorldState, Array]:
        """A fresh world on this site (``world.reset_with_map``)."""
        return reset_with_map(self.map, self.params)


def load_site(
    path: str | Path,
    base: WorldParams,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    max_boxes: int = DEFAULT_MAX_BOXES,
    pois_csv: str | Path | None = None,
) -> Site:
    """The site in ``path`` over the parameters ``base``; ConfigError naming the feature.

    ``path`` is GeoJSON (``.geojson`` / ``.json``) or a CSV of PoIs (``.csv``: an obstacle-free
    area of the base's size, coordinates in world units). ``pois_csv`` replaces a GeoJSON
    site's PoIs by the rows of a CSV in the site's frame.
    """
    if not (isinstance(tolerance, int | float) and math.isfinite(tolerance) and tolerance > 0):
        raise ConfigError("tolerance", f"must be a finite number > 0, got {tolerance!r}")
    if not 1 <= max_boxes <= 10_000:
        raise ConfigError("max_boxes", f"must be in [1, 10000], got {max_boxes!r}")
    p = Path(path)
    if p.suffix.lower() not in (".csv", ".geojson", ".json"):
        raise ConfigError("map", f"unsupported site file type {p.suffix!r} (.geojson or .csv)")
    with _naming_file(p):
        if p.suffix.lower() == ".csv":
            raw = RawSite((0.0, 0.0, base.width, base.height), "map (CSV area)")
            pos, data, labels = load_poi_csv(p, raw.area)
            raw.pois = [(lb, x, y, d) for lb, (x, y), d in zip(labels, pos, data, strict=True)]
            if base.start_x is not None or base.start_y is not None:
                raw.start = ("start", *base.start)
        else:
            raw = read_geojson(p)
    csv_name = Path(pois_csv).name if pois_csv is not None else None
    if pois_csv is not None:
        with _naming_file(Path(pois_csv)):
            pos, data, labels = load_poi_csv(pois_csv, raw.area)
        raw.pois = [
            (f"{csv_name}: {lb}", x, y, d) for lb, (x, y), d in zip(labels, pos, data, strict=True)
        ]
    with _naming_file(p, also=csv_name):
        return build_site(raw, base, tolerance=tolerance, max_boxes=max_boxes)


@contextmanager
def _naming_file(path: Path, also: str | None = None) -> Iterator[None]:
    """Re-raise a ConfigError from inside ``path`` with the file's name in front of its field.

    A feature's label ("features[3]", "rows[7]") alone does not say which of the map and the
    PoI CSV it came from; a message that already names one of them is left as it is.
    """
    try:
        yield
    except ConfigError as exc:
        if path.name in str(exc) or (also is not None and str(exc).startswith(also)):
            raise
        raise ConfigError(f"{path.name}: {exc.field}", str(exc)[len(exc.field) + 2 :]) from None


def _world_size(raw: RawSite, base: WorldParams) -> tuple[float, float, float]:
    """(width, height, scale): the site's longer side becomes the base's larger side."""
    x0, y0, x1, y1 = raw.area
    sw, sh = x1 - x0, y1 - y0
    if max(sw, sh) / min(sw, sh) > MAX_ASPECT:
        raise ConfigError(
            raw.area_label, f"the area is {sw:g} x {sh:g}: sides more than {MAX_ASPECT:g}:1 apart"
        )
    longest = max(base.width, base.height)
    scale = longest / max(sw, sh)
    width = longest if sw >= sh else sw * scale
    height = longest if sh > sw else sh * scale
    return float(width), float(height), float(scale)


def _decompose(
    raw: RawSite, to_world: list[float], size: tuple[float, float], tolerance: float, limit: int
) -> tuple[list[BaseGeometry], np.ndarray, np.ndarray, float]:
    """Scaled polygons, boxes [C,4] clipped to the area, each box's owner, area added."""
    width, height = size
    polys, boxes, owner, extra = [], [], [], 0.0
    for i, (label, geom) in enumerate(raw.obstacles):
        scaled = shapely.affinity.affine_transform(geom, to_world)
        inside = scaled.intersection(shapely.box(0.0, 0.0, width, height))
        if inside.area <= 0:
            raise ConfigError(label, "lies outside the area")
        b = cover_with_boxes(scaled, tolerance, label)
        extra += added_area(scaled, b)
        b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0.0, width)
        b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0.0, height)
        b = b[(b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])]
        if sum(len(x) for x in boxes) + len(b) > limit:
            raise ConfigError(
                label,
                f"its {len(b)} boxes bring the decomposition over max_boxes={limit} "
                f"(at tolerance {tolerance:g}); raise the tolerance or simplify the obstacles",
            )
        polys.append(scaled)
        boxes.append(b)
        owner += [i] * len(b)
    all_boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4))
    return polys, all_boxes.astype(np.float32), np.asarray(owner, dtype=np.int32), extra


def _check_points(
    points: list[tuple[str, float, float]],
    raw: RawSite,
    world: np.ndarray,
    boxes: np.ndarray,
    owner: np.ndarray,
    tolerance: float,
) -> None:
    """Every point in the area, outside every obstacle and outside every box."""
    if not points:
        return
    x0, y0, x1, y1 = raw.area
    xy = np.array([(x, y) for _, x, y in points])
    out = (xy[:, 0] < x0) | (xy[:, 0] > x1) | (xy[:, 1] < y0) | (xy[:, 1] > y1)
    if out.any():
        n = int(np.argmax(out))
        raise ConfigError(points[n][0], f"({xy[n, 0]:g}, {xy[n, 1]:g}) lies outside the area")
    pts = shapely.points(xy)
    for label, geom in raw.obstacles:
        hit = shapely.intersects(geom, pts)
        if hit.any():
            n = int(np.argmax(hit))
            raise ConfigError(points[n][0], f"lies inside obstacle {label}")
    if len(boxes):
        inside = points_in_boxes(world.astype(np.float32), boxes)
        if inside.any():
            n, c = (int(v) for v in np.argwhere(inside)[0])
            raise ConfigError(
                points[n][0],
                f"lies in a box of obstacle {raw.obstacles[owner[c]][0]} as decomposed at "
                f"tolerance {tolerance:g}: move it away from the obstacle or lower the tolerance",
            )


def _obstacle_size(width: float, height: float, boxes: int, base: WorldParams) -> float:
    """A generation size the parameters' checks accept; a fixed map never uses it."""
    cap = math.sqrt(0.4 * width * height / max(boxes, 1)) * 0.99
    return min(base.obstacle_min_size, 0.45 * min(width, height), cap)


def build_site(raw: RawSite, base: WorldParams, *, tolerance: float, max_boxes: int) -> Site:
    """Scale, decompose and check a parsed site (see :func:`load_site`)."""
    if not raw.pois:
        raise ConfigError("map.features", "the site has no PoI (kind poi)")
    width, height, scale = _world_size(raw, base)
    origin = (raw.area[0], raw.area[1])
    to_world = [scale, 0.0, 0.0, scale, -origin[0] * scale, -origin[1] * scale]
    polys, boxes, owner, extra = _decompose(raw, to_world, (width, height), tolerance, max_boxes)

    def world(points: list[tuple[str, float, float]]) -> np.ndarray:
        xy = np.array([(x, y) for _, x, y in points]).reshape(-1, 2)
        out = (xy - np.asarray(origin)) * scale
        return np.clip(out, 0.0, [width, height]).astype(np.float32)

    pois = [(lb, x, y) for lb, x, y, _ in raw.pois]
    named = [*pois, *([raw.start] if raw.start else []), *raw.stations]
    _check_points(named, raw, world(named), boxes, owner, tolerance)
    poi_pos = world(pois)
    start = world([raw.start])[0] if raw.start else np.array([width / 2, height / 2], np.float32)
    if raw.start is None and len(boxes) and points_in_boxes(start[None], boxes).any():
        raise ConfigError(
            "map.features", "the area's centre lies in an obstacle: add a Point of kind start"
        )
    try:
        g = _obstacle_size(width, height, len(boxes), base)
        params = base.replace(
            width=width,
            height=height,
            num_pois=len(pois),
            num_obstacles=len(boxes),
            start_x=float(start[0]),
            start_y=float(start[1]),
            obstacle_min_size=g,
            obstacle_max_size=g,
            map_seed=None,
            num_stations=len(raw.stations),
        )
    except ConfigError as exc:
        raise ConfigError("map", f"the site does not fit the base parameters: {exc}") from None
    data = np.array([d for *_, d in raw.pois], dtype=np.float32)
    stations = world(raw.stations).reshape(-1, 2)
    # data that keeps arriving: every PoI of a site generates at the preset's mean rate
    rates = np.full(len(pois) if params.dynamic else 0, params.data_rate, np.float32)
    world_map = validate_map(WorldMap(poi_pos, data, boxes, stations, rates), params)
    return Site(
        map=world_map,
        params=params,
        stations=stations,
        polygons=tuple(polys),
        names=tuple(label for label, _ in raw.obstacles),
        box_owner=owner,
        scale=scale,
        origin=origin,
        tolerance=float(tolerance),
        added_area=extra,
    )
