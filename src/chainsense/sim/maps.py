"""PoI and obstacle layouts: seeded generation in JAX, and maps saved to / loaded from files.

Generation is pure JAX (``generate_map``) so that ``reset`` can draw a fresh map per world inside
``jit``/``vmap``. Rejection sampling runs in a ``lax.while_loop``: obstacles never cover the MTs'
start point, PoIs never lie inside (or on the edge of) an obstacle. An obstacle that cannot be
placed after ``_OBSTACLE_TRIES`` draws becomes *inactive*: an empty box outside the area.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from chainsense.errors import ChainsenseError, ConfigError
from chainsense.sim.params import WorldParams

_OBSTACLE_TRIES = 64
_START_CLEARANCE = 0.5
INACTIVE_BOX = (-2.0, -2.0, -2.0, -2.0)


@dataclass(frozen=True)
class WorldMap:
    """A concrete layout: PoI positions [K,2], initial data [K], obstacles [C,4] (x0,y0,x1,y1),
    charging stations [S,2] and the PoIs' data generation rates [K] (both may be empty)."""

    poi_pos: np.ndarray
    poi_data: np.ndarray
    obstacles: np.ndarray
    stations: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    poi_rate: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))


class MapArrays(NamedTuple):
    """A generated map as device arrays (see :class:`WorldMap` for the shapes)."""

    poi_pos: Array
    poi_data: Array
    obstacles: Array
    stations: Array
    poi_rate: Array


def map_arrays(world_map: WorldMap) -> MapArrays:
    """A concrete map as float32 device arrays (empty stations and rates keep their shapes)."""
    return MapArrays(
        *(jnp.asarray(a, jnp.float32) for a in (world_map.poi_pos, world_map.poi_data)),
        jnp.asarray(world_map.obstacles, jnp.float32).reshape(-1, 4),
        jnp.asarray(world_map.stations, jnp.float32).reshape(-1, 2),
        jnp.asarray(world_map.poi_rate, jnp.float32).reshape(-1),
    )


def _inside_boxes(points: Array, boxes: Array) -> Array:
    """[N] bool: point lies in (or on the edge of) any of the closed boxes [C,4]."""
    x, y = points[:, 0:1], points[:, 1:2]
    hit = (x >= boxes[None, :, 0]) & (x <= boxes[None, :, 2])
    hit &= (y >= boxes[None, :, 1]) & (y <= boxes[None, :, 3])
    return jnp.any(hit, axis=1)


def _generate_obstacles(key: Array, params: WorldParams) -> Array:
    c = params.num_obstacles
    lo, hi = params.obstacle_min_size, params.obstacle_max_size
    size = jnp.array([params.width, params.height], jnp.float32)
    start = jnp.array(params.start, jnp.float32)

    def draw(k: Array) -> Array:
        ks, kp = jax.random.split(k)
        wh = jax.random.uniform(ks, (c, 2), jnp.float32, lo, hi)
        xy = jax.random.uniform(kp, (c, 2), jnp.float32) * (size - wh)
        return jnp.concatenate([xy, xy + wh], axis=1)

    def bad(boxes: Array) -> Array:
        grown = boxes + jnp.array([-1.0, -1.0, 1.0, 1.0]) * _START_CLEARANCE
        return (
            (start[0] >= grown[:, 0])
            & (start[0] <= grown[:, 2])
            & (start[1] >= grown[:, 1])
            & (start[1] <= grown[:, 3])
        )

    def cond(carry: tuple[Array, Array]) -> Array:
        boxes, i = carry
        return jnp.any(bad(boxes)) & (i < _OBSTACLE_TRIES)

    def body(carry: tuple[Array, Array]) -> tuple[Array, Array]:
        boxes, i = carry
        fresh = draw(jax.random.fold_in(key, i))
        return jnp.where(bad(boxes)[:, None], fresh, boxes), i + 1

    boxes, _ = jax.lax.while_loop(cond, body, (draw(jax.random.fold_in(key, 0)), jnp.int32(1)))
    return jnp.where(bad(boxes)[:, None], jnp.array(INACTIVE_BOX, jnp.float32), boxes)


def _generate_points(key: Array, boxes: Array, params: WorldParams, k: int) -> Array:
    """``k`` uniform points in the area, none in or on an obstacle (rejection sampling)."""
    size = jnp.array([params.width, params.height], jnp.float32)

    def draw(kk: Array) -> Array:
        return jax.random.uniform(kk, (k, 2), jnp.float32) * size

    def cond(carry: tuple[Array, Array]) -> Array:
        pos, _ = carry
        return jnp.any(_inside_boxes(pos, boxes))

    def body(carry: tuple[Array, Array]) -> tuple[Array, Array]:
        pos, i = carry
        fresh = draw(jax.random.fold_in(key, i))
        return jnp.where(_inside_boxes(pos, boxes)[:, None], fresh, pos), i + 1

    pos, _ = jax.lax.while_loop(cond, body, (draw(jax.random.fold_in(key, 0)), jnp.int32(1)))
    return pos


def generate_map(key: Array, params: WorldParams) -> MapArrays:
    """A map drawn from ``key``; jit-able. Data ~ U[0,1] per PoI; stations uniform in free
    space; generation rates ~ U[0, 2 * data_rate] per PoI when the data keeps arriving.

    The three draws of the paper's map come first from the same keys as always, so adding
    stations or rates never changes a map's PoIs and obstacles.
    """
    k_obs, k_poi, k_data = jax.random.split(key, 3)
    if params.num_obstacles:
        boxes = _generate_obstacles(k_obs, params)
    else:
        boxes = jnp.zeros((0, 4), jnp.float32)
    pos = _generate_points(k_poi, boxes, params, params.num_pois)
    data = jax.random.uniform(k_data, (params.num_pois,), jnp.float32)
    if params.dynamic and params.buffer_capacity < 1.0:  # a buffer never starts over-full
        data = data * params.buffer_capacity
    k_station, k_rate = jax.random.split(jax.random.fold_in(key, 7))
    if params.num_stations:
        stations = _generate_points(k_station, boxes, params, params.num_stations)
    else:
        stations = jnp.zeros((0, 2), jnp.float32)
    if params.dynamic:
        rates = jax.random.uniform(k_rate, (params.num_pois,), jnp.float32) * 2 * params.data_rate
    else:
        rates = jnp.zeros((0,), jnp.float32)
    return MapArrays(pos, data, boxes, stations, rates)


def make_map(seed: int, params: WorldParams) -> WorldMap:
    """A concrete (numpy) map generated from an integer seed."""
    arrays = jax.jit(generate_map, static_argnums=1)(jax.random.PRNGKey(seed), params)
    return WorldMap(*(np.asarray(a) for a in arrays))


def validate_map(world_map: WorldMap, params: WorldParams) -> WorldMap:
    """Check shapes and geometry against ``params``; ConfigError naming the bad part otherwise."""
    pos = np.asarray(world_map.poi_pos, dtype=np.float32)
    data = np.asarray(world_map.poi_data, dtype=np.float32)
    boxes = np.asarray(world_map.obstacles, dtype=np.float32).reshape(-1, 4)
    k, c = params.num_pois, params.num_obstacles
    if pos.shape != (k, 2):
        raise ConfigError(
            "map.poi_pos", f"must have shape ({k}, 2) for num_pois={k}, got {pos.shape}"
        )
    if data.shape != (k,):
        raise ConfigError("map.poi_data", f"must have shape ({k},), got {data.shape}")
    if boxes.shape != (c, 4):
        raise ConfigError(
            "map.obstacles", f"must have shape ({c}, 4) for num_obstacles={c}, got {boxes.shape}"
        )
    for name, arr in (("poi_pos", pos), ("poi_data", data), ("obstacles", boxes)):
        if not np.all(np.isfinite(arr)):
            raise ConfigError(f"map.{name}", "holds a non-finite value")
    if np.any(data < 0):
        raise ConfigError("map.poi_data", "must be >= 0 everywhere")
    inside = (pos[:, 0] >= 0) & (pos[:, 0] <= params.width)
    inside &= (pos[:, 1] >= 0) & (pos[:, 1] <= params.height)
    if not np.all(inside):
        raise ConfigError("map.poi_pos", f"PoI {int(np.argmin(inside))} lies outside the area")
    if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
        raise ConfigError("map.obstacles", "each box must be (x0, y0, x1, y1) with x0<=x1, y0<=y1")
    if c:
        in_box = np.asarray(_inside_boxes(jnp.asarray(pos), jnp.asarray(boxes)))
        if np.any(in_box):
            raise ConfigError(
                "map.poi_pos", f"PoI {int(np.argmax(in_box))} lies inside an obstacle"
            )
        start = jnp.asarray([params.start], jnp.float32)
        if bool(_inside_boxes(start, jnp.asarray(boxes))[0]):
            raise ConfigError("map.obstacles", "an obstacle covers the MTs' start point")
        if start_enclosed(boxes, params):
            raise ConfigError(
                "map.obstacles",
                "the obstacles enclose the MTs' start point: the MTs could never reach the "
                "area's edge",
            )
    stations, rates = _validate_scenario_parts(world_map, params, boxes)
    return WorldMap(pos, data, boxes, stations, rates)


def _validate_scenario_parts(
    world_map: WorldMap, params: WorldParams, boxes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The stations [S,2] and generation rates [K] (or [0]) of a map, checked against params."""
    stations = np.asarray(world_map.stations, dtype=np.float32).reshape(-1, 2)
    if stations.shape[0] != params.num_stations:
        raise ConfigError(
            "map.stations",
            f"must hold {params.num_stations} stations (num_stations), got {stations.shape[0]}",
        )
    if not np.all(np.isfinite(stations)):
        raise ConfigError("map.stations", "holds a non-finite value")
    out = (stations[:, 0] < 0) | (stations[:, 0] > params.width)
    out |= (stations[:, 1] < 0) | (stations[:, 1] > params.height)
    if np.any(out):
        raise ConfigError("map.stations", f"station {int(np.argmax(out))} lies outside the area")
    if boxes.shape[0] and stations.shape[0]:
        in_box = np.asarray(_inside_boxes(jnp.asarray(stations), jnp.asarray(boxes)))
        if np.any(in_box):
            raise ConfigError(
                "map.stations", f"station {int(np.argmax(in_box))} lies inside an obstacle"
            )
    rates = np.asarray(world_map.poi_rate, dtype=np.float32).reshape(-1)
    want = params.num_pois if params.dynamic else 0
    if rates.size == 0 and want:  # a map saved without rates: none of its PoIs generate data
        rates = np.zeros((want,), np.float32)
    if params.dynamic and np.any(world_map.poi_data > params.buffer_capacity):
        raise ConfigError(
            "map.poi_data", f"must not exceed buffer_capacity ({params.buffer_capacity:g})"
        )
    if rates.shape != (want,):
        raise ConfigError("map.poi_rate", f"must have shape ({want},), got {rates.shape}")
    if not np.all(np.isfinite(rates)) or np.any(rates < 0):
        raise ConfigError("map.poi_rate", "must be finite and >= 0 everywhere")
    return stations, rates


_ENCLOSURE_MAX_CELLS = 16_000_000
#: what a map file holds; the last two (stations, rates) may be missing in older files
_MAP_FIELDS = ("poi_pos", "poi_data", "obstacles", "stations", "poi_rate")


def _touching_clusters(boxes: np.ndarray) -> np.ndarray:
    """[C] cluster label of each closed box: boxes that touch or overlap, directly or through
    others, share a label."""
    c = boxes.shape[0]
    rows, cols = [], []
    for lo in range(0, c, 512):
        b = boxes[lo : lo + 512]
        touch = (b[:, None, 0] <= boxes[None, :, 2]) & (boxes[None, :, 0] <= b[:, None, 2])
        touch &= (b[:, None, 1] <= boxes[None, :, 3]) & (boxes[None, :, 1] <= b[:, None, 3])
        i, j = np.nonzero(touch)
        rows.append(i + lo)
        cols.append(j)
    r, k = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(r.size, np.int8), (r, k)), shape=(c, c))
    return connected_components(graph, directed=False)[1]


def _enclosed_by(boxes: np.ndarray, start: tuple[float, float], w: float, h: float) -> bool:
    """Whether the closed boxes cut ``start`` off from the edge of [0, w] x [0, h].

    Exact: the box edges split the area into a grid of open cells, open segments and points,
    each wholly free or wholly covered; the free ones are labelled by 4-connectivity (a free
    segment joins the cells on both sides of it) and the start's component must contain a
    piece of the area's edge.
    """
    xs = np.unique(np.concatenate([[0.0, w], boxes[:, 0], boxes[:, 2]]))
    ys = np.unique(np.concatenate([[0.0, h], boxes[:, 1], boxes[:, 3]]))
    nx, ny = 2 * xs.size - 1, 2 * ys.size - 1
    if nx * ny > _ENCLOSURE_MAX_CELLS:
        raise ConfigError(
            "map.obstacles",
            f"{boxes.shape[0]} touching obstacles around the start point are too many to check "
            "that they leave it a way out",
        )
    cover = np.zeros((nx + 1, ny + 1), np.int32)
    x0, x1 = 2 * np.searchsorted(xs, boxes[:, 0]), 2 * np.searchsorted(xs, boxes[:, 2])
    y0, y1 = 2 * np.searchsorted(ys, boxes[:, 1]), 2 * np.searchsorted(ys, boxes[:, 3])
    np.add.at(cover, (x0, y0), 1)
    np.add.at(cover, (x1 + 1, y0), -1)
    np.add.at(cover, (x0, y1 + 1), -1)
    np.add.at(cover, (x1 + 1, y1 + 1), 1)
    free = np.cumsum(np.cumsum(cover, axis=0), axis=1)[:nx, :ny] == 0
    labels, _ = ndimage.label(free)

    def refined(v: float, grid: np.ndarray) -> int:
        i = int(np.searchsorted(grid, v))
        return 2 * i if i < grid.size and grid[i] == v else 2 * i - 1

    own = labels[refined(start[0], xs), refined(start[1], ys)]
    if own == 0:  # the start point is covered (validate_map reports that first)
        return True
    edge = np.concatenate([labels[0, :], labels[-1, :], labels[:, 0], labels[:, -1]])
    return not bool(np.any(edge == own))


def start_enclosed(boxes: np.ndarray, params: WorldParams) -> bool:
    """Whether the obstacles [C,4] cut the MTs' start point off from the area's edge.

    Only a group of touching boxes whose bounding box holds the start can enclose it (the rim
    of a pocket is connected), so each such group is checked on its own.
    """
    w, h = params.width, params.height
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    b = b[(b[:, 2] >= 0) & (b[:, 0] <= w) & (b[:, 3] >= 0) & (b[:, 1] <= h)]
    if b.shape[0] == 0:
        return False
    b = np.clip(b, 0.0, [w, h, w, h])
    sx, sy = (float(np.float32(v)) for v in params.start)
    labels = _touching_clusters(b)
    for label in np.unique(labels):
        group = b[labels == label]
        lo, hi = group[:, 0:2].min(axis=0), group[:, 2:4].max(axis=0)
        if lo[0] <= sx <= hi[0] and lo[1] <= sy <= hi[1] and _enclosed_by(group, (sx, sy), w, h):
            return True
    return False


def save_map(world_map: WorldMap, path: str | Path) -> None:
    """Write a map as JSON (``.json``) or numpy archive (``.npz``)."""
    p = Path(path)
    if p.suffix == ".json":
        payload = {
            "poi_pos": np.asarray(world_map.poi_pos).tolist(),
            "poi_data": np.asarray(world_map.poi_data).tolist(),
            "obstacles": np.asarray(world_map.obstacles).tolist(),
            "stations": np.asarray(world_map.stations).tolist(),
            "poi_rate": np.asarray(world_map.poi_rate).tolist(),
        }
        p.write_text(json.dumps(payload), encoding="utf-8")
    elif p.suffix == ".npz":
        with p.open("wb") as fh:
            np.savez(
                fh,
                poi_pos=world_map.poi_pos,
                poi_data=world_map.poi_data,
                obstacles=world_map.obstacles,
                stations=world_map.stations,
                poi_rate=world_map.poi_rate,
            )
    else:
        raise ConfigError("map", f"unsupported map file type {p.suffix!r} (use .json or .npz)")


def load_map(path: str | Path, params: WorldParams) -> WorldMap:
    """Read a map written by :func:`save_map` and validate it against ``params``."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("map", f"file not found: {p}")
    try:
        if p.suffix == ".json":
            raw = json.loads(p.read_text(encoding="utf-8"))
            if not isinstance(raw, dict):
                raise ConfigError("map", f"{p.name} must hold an object")
            fields = {n: raw.get(n) for n in _MAP_FIELDS}
        elif p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                fields = {n: z.get(n, None) for n in _MAP_FIELDS}
        else:
            raise ConfigError("map", f"unsupported map file type {p.suffix!r} (use .json or .npz)")
        for name in _MAP_FIELDS[:3]:
            if fields[name] is None:
                raise ConfigError(f"map.{name}", f"missing from {p.name}")
        world_map = WorldMap(
            np.asarray(fields["poi_pos"], dtype=np.float32),
            np.asarray(fields["poi_data"], dtype=np.float32),
            np.asarray(fields["obstacles"], dtype=np.float32).reshape(-1, 4),
            *(
                np.asarray([] if fields[n] is None else fields[n], dtype=np.float32)
                for n in _MAP_FIELDS[3:]
            ),
        )
    except ChainsenseError:
        raise
    except (ValueError, TypeError, OSError) as exc:
        raise ConfigError("map", f"cannot read {p.name}: {exc}") from exc
    return validate_map(world_map, params)
