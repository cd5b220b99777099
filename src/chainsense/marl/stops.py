"""What the planner routes over: sensing stops, what each is worth, and what passing costs.

Host-side NumPy for ``marl.planner``. Three estimates tie the routing model to the world's rules
(``sim.world``):

* **Stops** (:func:`cover_stops`): a greedy set cover of the PoIs that hold (or will hold) data.
* **Worth and dwell** (:func:`stop_table`): a PoI gives up ``collect_fraction`` of its quota
  base per slot (its initial data; the buffer's capacity where data keeps arriving). Where
  data keeps arriving, a full-information planner knows every PoI's rate, so a stop is worth
  the data its PoIs are expected to hold when an MT can get there (``data + rate * eta``,
  bounded by the buffer), not the data they hold now.
* **Passing** (:func:`passing_energy`): sensing is automatic, so an MT on its way senses every
  PoI within range of where each slot ends and pays for it. On the paper's map that is about
  four times the move cost per slot; a plan that ignores it runs out of energy far from a
  station. The estimate samples the field of per-slot sensing cost along the straight segment
  (one sample per full slot of travel, the end excluded: that is the stop's own sensing) and
  scales it to the slots the obstacle-aware path takes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chainsense.marl.paths import inside_boxes
from chainsense.sim.params import WorldParams

VALUE_FLOOR = 1.0e-3  # a PoI's least value, as a share of its quota base: no dust is left
_FIELD_CELL = 0.25  # resolution of the passing-cost field
_ROW_BLOCK = 64  # arcs' rows sampled at once (bounds memory)


def cover_stops(
    poi_pos: np.ndarray, has_data: np.ndarray, boxes: np.ndarray, params: WorldParams, **kw: float
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy set cover: stop positions [N,2] and each PoI's stop [K] (-1: none / no data).

    ``kw``: ``cover`` (coverage radius / sensing range), ``margin`` (clearance from boxes).
    """
    radius = kw.get("cover", 0.97) * params.sensing_range
    margin = kw.get("margin", 0.05)
    step = 0.7 * radius
    gx = np.arange(step / 2, params.width, step)
    gy = np.arange(step / 2, params.height, step)
    grid = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
    cand = np.concatenate([poi_pos[has_data], grid])
    cand = cand[~inside_boxes(cand, boxes, margin)]
    targets = np.flatnonzero(has_data)
    d2 = np.sum((cand[:, None, :] - poi_pos[None, targets, :]) ** 2, axis=-1)
    cov = d2 <= radius**2  # [cand, targets]
    gain = cov.sum(axis=1).astype(np.int64)
    left = np.ones(len(targets), bool)
    stop_of = np.full(len(poi_pos), -1, np.int64)
    stops = []
    while len(cand) and gain.max() > 0:
        c = int(np.argmax(gain))
        new = cov[c] & left
        stop_of[targets[new]] = len(stops)
        stops.append(cand[c])
        left &= ~new
        gain -= cov[:, new].sum(axis=1)
    return np.array(stops, np.float64).reshape(-1, 2), stop_of


def expected_data(
    data: np.ndarray, rate: np.ndarray, eta: np.ndarray, params: WorldParams
) -> np.ndarray:
    """[K] data a PoI holds ``eta`` slots from now: what it holds plus what arrives, bounded by
    its buffer (data that keeps arriving; else what it holds)."""
    if not params.dynamic:
        return data
    return np.minimum(data + rate * eta, params.buffer_capacity)


@dataclass(frozen=True)
class StopTable:
    """Per stop: slots parked, value (prize), sensing energy (an upper bound); per PoI: slots."""

    dwell: np.ndarray  # [N] int
    value: np.ndarray  # [N]
    sense: np.ndarray  # [N]
    need: np.ndarray  # [K] slots PoI k is served from its stop (0: no stop)


def stop_table(
    stops: np.ndarray,
    stop_of: np.ndarray,
    poi_pos: np.ndarray,
    expected: np.ndarray,
    base: np.ndarray,
    weight: np.ndarray,
    params: WorldParams,
    cap: int | None,
) -> StopTable:
    """Dwell, value and sensing energy of every stop from each PoI's ``expected`` data.

    A PoI needs ``ceil(expected / quota)`` slots (at most ``cap``); a stop dwells as long as its
    slowest PoI and is worth the data its PoIs give in that time (at least ``VALUE_FLOOR`` of
    each base, so crumbs are fetched), times each PoI's ``weight``. Its sensing energy counts
    every PoI within the full sensing range.
    """
    quota = np.maximum(params.collect_fraction * base, 1.0e-12)
    need = np.where((stop_of >= 0) & (expected > 0), np.ceil(expected / quota - 1.0e-6), 0.0)
    if cap is not None:
        need = np.minimum(need, cap)
    n = len(stops)
    dwell = np.ones(n, np.int64)
    value = np.zeros(n)
    for k in np.flatnonzero(stop_of >= 0):
        dwell[stop_of[k]] = max(dwell[stop_of[k]], int(need[k]))
        got = min(expected[k], need[k] * quota[k])
        value[stop_of[k]] += max(got, VALUE_FLOOR * base[k]) * weight[k]
    near = np.sum((stops[:, None] - poi_pos[None]) ** 2, -1) <= params.sensing_range**2 * 1.0001
    take = np.minimum(expected[None], dwell[:, None] * quota[None])
    sense = params.sense_cost * np.sum(np.where(near, take, 0.0), axis=1)
    return StopTable(dwell, value, sense, need.astype(np.int64))


def sensing_field(
    poi_pos: np.ndarray, take: np.ndarray, params: WorldParams
) -> tuple[np.ndarray, float]:
    """Energy the world's sensing takes in one slot ending at each cell centre ([GY,GX] grid of
    ``_FIELD_CELL``) from PoIs that give up ``take`` per slot; and the cell size."""
    gx = np.arange(_FIELD_CELL / 2, params.width, _FIELD_CELL)
    gy = np.arange(_FIELD_CELL / 2, params.height, _FIELD_CELL)
    field = np.zeros((len(gy), len(gx)))
    r2 = params.sensing_range**2
    live = np.flatnonzero(take > 0)
    for k0 in range(0, len(live), 256):
        ks = live[k0 : k0 + 256]
        dx2 = (gx[None, :] - poi_pos[ks, 0:1]) ** 2  # [k,GX]
        dy2 = (gy[None, :] - poi_pos[ks, 1:2]) ** 2  # [k,GY]
        inside = dy2[:, :, None] + dx2[:, None, :] <= r2  # [k,GY,GX]
        field += np.tensordot(take[ks], inside, axes=1)
    return params.sense_cost * field, _FIELD_CELL


def passing_energy(
    points: np.ndarray, travel_slots: np.ndarray, field: np.ndarray, params: WorldParams
) -> np.ndarray:
    """[P,P] sensing energy expected on the way from point i to point j: the mean of ``field``
    along the straight segment times the slots spent travelling (all but the arrival slot)."""
    n = len(points)
    span = np.hypot(params.width, params.height)
    samples = max(2, int(np.ceil(span / params.max_move)))
    frac = (np.arange(samples) + 0.5) / samples  # points along each segment
    gy, gx = field.shape
    out = np.zeros((n, n))
    for r in range(0, n, _ROW_BLOCK):
        a = points[r : r + _ROW_BLOCK, None, None, :]
        b = points[None, :, None, :]
        pos = a + (b - a) * frac[None, None, :, None]  # [rows,P,samples,2]
        ix = np.clip((pos[..., 0] / _FIELD_CELL).astype(np.int64), 0, gx - 1)
        iy = np.clip((pos[..., 1] / _FIELD_CELL).astype(np.int64), 0, gy - 1)
        out[r : r + _ROW_BLOCK] = field[iy, ix].mean(axis=2)
    with np.errstate(invalid="ignore"):
        on_way = np.where(np.isfinite(travel_slots), np.maximum(travel_slots - 1.0, 0.0), 0.0)
    return out * on_way
