"""``coverage``: the classical coverage path (a boustrophedon "lawnmower") as a baseline.

The fleet shares one closed tour of the area: lanes parallel to the x axis, as few as cover the
whole height with the sensing disks (an even number, so that the tour closes along the left
edge), walked alternately east and west. The MTs are spread evenly along it and each walks it at
full speed, heading for a goal point that moves on by one ``max_move`` whenever the MT has
reached it. It reads no data at all unless it dwells: with ``dwell`` finite, an MT stays while
staying would sense at least that much data (the true data, as ``greedy`` reads it).

Why it is here: where energy binds (``energy``, ``large``) the efficiency is mostly Jain's index
of the visits, and a tour that passes every PoI once at full speed serves them most evenly for
the energy; it is the first opponent a reviewer of a crowdsensing fleet asks about
(docs/learning.md, sixteenth part).

The progress along the tour is memory the rollout carries (``marl.memory``): per MT, the
tour position of its goal and the slots since the goal last moved on. A goal point inside (or
within ``BOX_MARGIN`` of) an obstacle is passed over, and a goal the MT has not reached within
``PATIENCE`` slots is given up for the next, so no MT waits forever behind a wall. Where MTs
recharge, ``recharge`` (``marl.recharge``) sends them to a station as it sends greedy, and the
tour waits for them.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from flax import struct
from jax import Array

from chainsense.config import is_number
from chainsense.errors import ConfigError
from chainsense.marl.navigation import head_for
from chainsense.marl.recharge import GREEDY_RULE, RechargeRule, recharge_need
from chainsense.sim.boxes import points_in_boxes
from chainsense.sim.params import WorldParams
from chainsense.sim.state import StepInfo, WorldState
from chainsense.sim.world import quota_base

#: a goal point this close to an obstacle (or inside it) is passed over
BOX_MARGIN = 0.3
#: slots an MT may take to reach its goal point before the goal moves on without it
PATIENCE = 20
#: an MT within this share of ``max_move`` of its goal point has reached it
REACHED = 0.5


def tour(width: float, height: float, sensing_range: float) -> tuple[np.ndarray, np.ndarray]:
    """The closed boustrophedon tour: its vertices [V,2] (the last is the first again) and the
    tour length at each vertex [V]. Lanes lie ``height / n`` apart, n the fewest lanes whose
    disks of radius ``sensing_range`` cover the height, made even so that the last lane ends on
    the west side and the tour closes straight down the west edge; each lane ends as far inside
    the area as still keeps the corners between lane ends within sensing range."""
    n = max(2, math.ceil(height / (2.0 * sensing_range) - 1.0e-9))
    n += n % 2
    spacing = height / n
    # a lane's end as far in as still covers the area's corner beside it
    inset = min(math.sqrt(max(sensing_range**2 - (spacing / 2) ** 2, 0.0)), width / 2)
    west, east = inset, width - inset
    vertices: list[tuple[float, float]] = []
    for lane in range(n):
        y = spacing * (lane + 0.5)
        vertices += [(west, y), (east, y)] if lane % 2 == 0 else [(east, y), (west, y)]
    vertices.append(vertices[0])
    points = np.asarray(vertices, np.float32)
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    return points, np.concatenate([[0.0], np.cumsum(steps)]).astype(np.float32)


def point_on_tour(s: Array, points: Array, length: Array) -> Array:
    """[M,2] the points at tour positions ``s`` [M] (taken modulo the tour's length)."""
    s = jnp.mod(s, length[-1])
    i = jnp.clip(jnp.searchsorted(length, s, side="right") - 1, 0, points.shape[0] - 2)
    f = ((s - length[i]) / jnp.maximum(length[i + 1] - length[i], 1.0e-6))[:, None]
    return points[i] * (1.0 - f) + points[i + 1] * f


def near_boxes(goal: Array, boxes: Array, margin: float = BOX_MARGIN) -> Array:
    """[M] whether each goal point lies within ``margin`` of an obstacle (x0, y0, x1, y1)."""
    grown = boxes + margin * jnp.array([-1.0, -1.0, 1.0, 1.0], boxes.dtype)
    return jnp.any(points_in_boxes(goal, grown), axis=1)


@struct.dataclass
class CoveragePolicy:
    """The fleet on one boustrophedon tour (see the module docstring); a ``MemoryPolicy``."""

    dwell: float = struct.field(pytree_node=False, default=math.inf)
    recharge: RechargeRule = struct.field(pytree_node=False, default=GREEDY_RULE)

    def __post_init__(self) -> None:
        if not (is_number(self.dwell) and self.dwell > 0):
            raise ConfigError(
                "dwell", f"must be a positive number (inf: never), not {self.dwell!r}"
            )

    def act(self, key: Array, obs: Array, state: WorldState, params: WorldParams) -> Array:
        """Physical actions [M,2] as at the start of an episode (a rollout threads the memory:
        ``act_with_memory``)."""
        return self.act_with_memory(key, obs, state, params, self.initial_memory(params))

    def initial_memory(self, params: WorldParams) -> Array:
        """[M,2]: each MT's goal position on the tour (the MTs evenly spread) and 0 slots."""
        _, length = tour(params.width, params.height, params.sensing_range)
        m = params.num_mts
        spread = np.arange(m, dtype=np.float32) * (float(length[-1]) / m)
        return jnp.stack([jnp.asarray(spread), jnp.zeros((m,), jnp.float32)], axis=1)

    def act_recurrent(
        self, key: Array, obs: Array, state: WorldState, params: WorldParams, memory: Array
    ) -> tuple[Array, Array]:
        """Physical actions [M,2] and the tour progress after moving the goals on."""
        del key, obs
        p = params
        points, length = (jnp.asarray(a) for a in tour(p.width, p.height, p.sensing_range))
        s, waited = memory[:, 0], memory[:, 1]
        goal = point_on_tour(s, points, length)
        reached = jnp.sqrt(jnp.sum((goal - state.mt_pos) ** 2, axis=1)) <= REACHED * p.max_move
        stay = reached & (self._here(state, p) >= self.dwell)
        on = (reached & ~stay) | near_boxes(goal, state.obstacles) | (waited >= PATIENCE)
        waited = jnp.where(on | stay, 0.0, waited + 1.0)
        idle = stay
        if p.charging:  # the tour waits while the recharge rule holds the MT
            go, charging, station = recharge_need(
                state.mt_pos, state.energy, state.stations, state.t, p, self.recharge
            )
            on &= ~(go | charging)
            waited = jnp.where(go | charging, 0.0, waited)
            idle = jnp.where(go, False, idle | charging)
        s = s + jnp.where(on, p.max_move, 0.0)
        goal = point_on_tour(s, points, length)
        if p.charging:
            goal = jnp.where(go[:, None], station, goal)
        actions = head_for(state, goal, idle, p)
        return actions, jnp.stack([jnp.mod(s, length[-1]), waited], axis=1)

    def act_with_memory(
        self, key: Array, obs: Array, state: WorldState, params: WorldParams, memory: Array
    ) -> Array:
        """Physical actions [M,2] (see :meth:`act_recurrent`)."""
        return self.act_recurrent(key, obs, state, params, memory)[0]

    def remember(self, memory: Array, actions: Array, info: StepInfo, params: WorldParams) -> Array:
        """The progress is moved on while acting; the slot's outcome adds nothing."""
        del actions, info, params
        return memory

    def _here(self, state: WorldState, p: WorldParams) -> Array:
        """[M] the data each MT would sense by staying where it is (0 when it never dwells)."""
        if math.isinf(self.dwell):
            return jnp.zeros((p.num_mts,), jnp.float32)
        quota = jnp.minimum(p.collect_fraction * quota_base(state, p), state.poi_data)
        d = state.poi_pos[None, :, :] - state.mt_pos[:, None, :]
        in_range = (d[..., 0] ** 2 + d[..., 1] ** 2) <= p.sensing_range**2
        return in_range.astype(jnp.float32) @ quota
