"""Reading a site file (GeoJSON) as untrusted input: every refusal names the feature.

The file is a ``FeatureCollection`` in a local metric frame (any unit; it is scaled into the
world by ``sites.load_site``). Each feature's ``properties.kind`` says what it is:

* ``area``: one ``Polygon``, the axis-aligned rectangle of the site (no holes);
* ``obstacle``: a ``Polygon`` or ``MultiPolygon`` of any shape (holes allowed), valid (not
  self-intersecting);
* ``poi``: a ``Point`` with optional ``data`` (a number >= 0, default 1);
* ``start``: at most one ``Point``, where every MT starts;
* ``station``: ``Point``\\ s of charging stations.

An optional string ``properties.name`` labels the feature in messages and pictures. Limits:
:data:`MAX_FILE_BYTES`, :data:`MAX_DEPTH`, :data:`MAX_FEATURES`, :data:`MAX_POSITIONS`,
:data:`MAX_STATIONS`, coordinates finite and within :data:`MAX_COORD`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from chainsense import jsonlimits
from chainsense.errors import ConfigError

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 12
"""GeoJSON needs 8 levels (collection, features, feature, geometry, MultiPolygon coordinates)."""
MAX_FEATURES = 100_000
MAX_POSITIONS = 1_000_000
"""Most coordinate pairs in all polygons together."""
MAX_STATIONS = 64
MAX_COORD = 1.0e9
MAX_DATA = 1.0e6
DEFAULT_DATA = 1.0
KINDS = ("area", "obstacle", "poi", "start", "station")


@dataclass
class RawSite:
    """A site in its own frame, every part labelled with the feature it came from."""

    area: tuple[float, float, float, float]  # (x0, y0, x1, y1)
    area_label: str
    obstacles: list[tuple[str, BaseGeometry]] = field(default_factory=list)
    pois: list[tuple[str, float, float, float]] = field(default_factory=list)  # label, x, y, data
    start: tuple[str, float, float] | None = None
    stations: list[tuple[str, float, float]] = field(default_factory=list)


def feature_label(index: int, kind: str | None, props: dict[str, Any]) -> str:
    """``features[12] (obstacle "hall B")``: one line, whatever the name holds."""
    name = props.get("name")
    tail = f" {json.dumps(name[:60])}" if isinstance(name, str) and name else ""
    return f"features[{index}] ({kind}{tail})" if kind else f"features[{index}]"


def number(v: Any, where: str, what: str, limit: float = MAX_COORD) -> float:
    """``v`` as a finite float with ``|v| <= limit``; ConfigError naming ``where`` otherwise."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ConfigError(where, f"{what} must be a number, got {_short(v)}")
    f = float(v)
    if not math.isfinite(f) or abs(f) > limit:
        raise ConfigError(where, f"{what} must be finite and within +-{limit:g}, got {_short(v)}")
    return f


def _short(v: Any) -> str:
    text = repr(v) if not isinstance(v, dict | list) else type(v).__name__
    return text if len(text) <= 40 else text[:37] + "..."


class _Reader:
    """Walks the features, counting positions against :data:`MAX_POSITIONS`."""

    def __init__(self) -> None:
        self.positions = 0

    def position(self, v: Any, where: str) -> tuple[float, float]:
        if not isinstance(v, list) or len(v) not in (2, 3):
            raise ConfigError(where, f"a position must be [x, y], got {_short(v)}")
        self.positions += 1
        if self.positions > MAX_POSITIONS:
            raise ConfigError(where, f"more than {MAX_POSITIONS} positions in the file")
        return number(v[0], where, "x"), number(v[1], where, "y")

    def ring(self, v: Any, where: str, n: int) -> list[tuple[float, float]]:
        if not isinstance(v, list) or len(v) < 4:
            raise ConfigError(where, f"ring {n} must be a list of at least 4 positions")
        pts = [self.position(p, where) for p in v]
        if pts[0] != pts[-1]:
            raise ConfigError(where, f"ring {n} is not closed (first and last positions differ)")
        return pts

    def polygon(self, v: Any, where: str) -> Polygon:
        if not isinstance(v, list) or not v:
            raise ConfigError(where, "Polygon coordinates must be a non-empty list of rings")
        rings = [self.ring(r, where, n) for n, r in enumerate(v)]
        try:
            return Polygon(rings[0], rings[1:])
        except (ValueError, shapely.errors.GEOSException) as exc:
            raise ConfigError(where, f"is not a valid polygon: {exc}") from None

    def geometry(self, geom: Any, where: str, allowed: tuple[str, ...]) -> BaseGeometry:
        if not isinstance(geom, dict):
            raise ConfigError(where, f"needs a geometry ({' or '.join(allowed)})")
        kind, coords = geom.get("type"), geom.get("coordinates")
        if kind not in allowed:
            raise ConfigError(where, f"geometry must be {' or '.join(allowed)}, got {_short(kind)}")
        if kind == "Point":
            return shapely.Point(self.position(coords, where))
        if kind == "Polygon":
            shape: BaseGeometry = self.polygon(coords, where)
        else:
            if not isinstance(coords, list) or not coords:
                raise ConfigError(where, "MultiPolygon coordinates must be a non-empty list")
            shape = MultiPolygon([self.polygon(p, where) for p in coords])
        if not shape.is_valid:
            raise ConfigError(where, f"is not a valid polygon: {shapely.is_valid_reason(shape)}")
        if shape.area <= 0:
            raise ConfigError(where, "has no area")
        return shape


def read_geojson(path: str | Path) -> RawSite:
    """Parse and check a site file; ConfigError naming the feature (or ``map``) otherwise."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("map", f"file not found: {p}")
    try:
        doc = jsonlimits.load_file(p, "map", max_bytes=MAX_FILE_BYTES, max_depth=MAX_DEPTH)
    except jsonlimits.JSONLimitError as exc:
        raise ConfigError("map", f"{p.name} is not GeoJSON: {exc.detail}") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise ConfigError("map", f"{p.name} must hold a GeoJSON FeatureCollection")
    features = doc.get("features")
    if not isinstance(features, list):
        raise ConfigError("map.features", "must be a list of features")
    if len(features) > MAX_FEATURES:
        raise ConfigError("map.features", f"{len(features)} features (at most {MAX_FEATURES})")
    return _collect(features)


def _collect(features: list[Any]) -> RawSite:
    reader = _Reader()
    areas: list[tuple[str, BaseGeometry]] = []
    site = RawSite((0.0, 0.0, 0.0, 0.0), "")
    for i, feat in enumerate(features):
        if not isinstance(feat, dict) or feat.get("type") != "Feature":
            raise ConfigError(f"features[{i}]", "must be a GeoJSON Feature object")
        props = feat.get("properties")
        props = props if isinstance(props, dict) else {}
        kind = props.get("kind")
        if kind not in KINDS:
            raise ConfigError(
                feature_label(i, None, props),
                f"properties.kind must be one of {', '.join(KINDS)}, got {_short(kind)}",
            )
        where = feature_label(i, kind, props)
        geom = feat.get("geometry")
        if kind in ("area", "obstacle"):
            allowed = ("Polygon",) if kind == "area" else ("Polygon", "MultiPolygon")
            shape = reader.geometry(geom, where, allowed)
            (areas if kind == "area" else site.obstacles).append((where, shape))
            continue
        pt = reader.geometry(geom, where, ("Point",))
        x, y = pt.x, pt.y
        if kind == "poi":
            data = props.get("data", DEFAULT_DATA)
            data = number(data, where, "data", MAX_DATA)
            if data < 0:
                raise ConfigError(where, f"data must be >= 0, got {data!r}")
            site.pois.append((where, x, y, data))
        elif kind == "start":
            if site.start is not None:
                raise ConfigError(where, f"a second start point (the first is {site.start[0]})")
            site.start = (where, x, y)
        else:
            if len(site.stations) >= MAX_STATIONS:
                raise ConfigError(where, f"more than {MAX_STATIONS} stations")
            site.stations.append((where, x, y))
    if len(areas) != 1:
        named = ", ".join(a[0] for a in areas[:3])
        raise ConfigError(
            "map.features", f"needs exactly one area Polygon, found {len(areas)} {named}".strip()
        )
    site.area_label, area = areas[0]
    if isinstance(area, Polygon) and area.interiors:
        raise ConfigError(site.area_label, "the area must be a rectangle without holes")
    env = area.envelope
    if abs(env.area - area.area) > 1.0e-9 * env.area:
        raise ConfigError(site.area_label, "the area must be an axis-aligned rectangle")
    x0, y0, x1, y1 = area.bounds
    site.area = (x0, y0, x1, y1)
    return site
