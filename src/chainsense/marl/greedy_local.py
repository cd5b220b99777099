"""``greedy-local``: the greedy heuristic restricted to what a learned MT knows.

The fair heuristic opponent of the learned fleets. Each MT decides alone from its own
observation vector (the ``rich`` observation: its position, energy, the other MTs' offsets, the
coarse map of remaining data and the fine window around it, both built from its belief when
observation is partial, so they hold exactly what the ledger has shared) and from a local
collision test of its next move (what the learners' proximity sensor tells them). It never reads
the world state's PoIs, data or obstacle map, and it does not know the other MTs' targets.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from flax import struct
from jax import Array

from chainsense.errors import ConfigError
from chainsense.marl.navigation import steer
from chainsense.marl.recharge import recharge_goal
from chainsense.sim.params import WorldParams
from chainsense.sim.state import WorldState

_LEAN = 0.3  # how much an MT prefers cells in its own sector


def _cell_centres(n: int, size: Array) -> Array:
    """[n*n, 2] centres of an n x n grid over the area, row-major with row = y cell."""
    idx = jnp.arange(n * n)
    return (jnp.stack([idx % n, idx // n], axis=1).astype(jnp.float32) + 0.5) * (size / n)


@struct.dataclass
class GreedyLocalPolicy:
    """Per MT: the grid cell (fine cells around it, coarse cells beyond) with the most data it
    believes remains, per slot needed to get there; cells another MT is nearer to count half
    (it will probably take them). Moves straight there, turning to the nearest heading whose
    move is free when the straight one is blocked. Where MTs can recharge, it goes back to the
    station in its observation by the greedy's own rule."""

    headings: int = struct.field(pytree_node=False, default=24)

    def act(self, key: Array, obs: Array, state: WorldState, params: WorldParams) -> Array:
        """Physical actions [M,2] from each MT's own observation row."""
        del key
        p = params
        if p.observation != "rich":
            raise ConfigError("observation", "greedy-local reads the 'rich' observation")
        m, g, n = p.num_mts, p.obs_grid, p.local_grid
        size = jnp.array([p.width, p.height], jnp.float32)
        pos = obs[:, 0:2] * size  # [M,2]
        first = 4 + 2 * (m - 1)
        offsets = obs[:, 4:first].reshape(m, m - 1, 2) * size  # others, relative to me
        coarse = obs[:, first : first + g * g]  # [M,g*g]
        window = obs[:, first + g * g : first + g * g + n * n]  # [M,n*n]
        fine_n = g * p.fine_factor
        cell = size / fine_n
        mc = jnp.clip(jnp.floor(pos / cell), 0, fine_n - 1)  # the MT's fine cell
        dxy = jnp.stack([jnp.arange(n * n) % n, jnp.arange(n * n) // n], axis=1) - n // 2
        near_centres = (mc[:, None, :] + dxy[None].astype(jnp.float32) + 0.5) * cell  # [M,n*n,2]
        far_centres = jnp.broadcast_to(_cell_centres(g, size), (m, g * g, 2))
        # both maps are normalised to data per area (a cell's data over its share of the area),
        # so a fine cell near the MT and a coarse one far away compare as they are
        values = jnp.concatenate([window, coarse], axis=1)
        centres = jnp.concatenate([near_centres, far_centres], axis=1)  # [M,N,2]
        inside = jnp.all((centres >= 0) & (centres <= size), axis=-1)
        dist = jnp.sqrt(jnp.sum((centres - pos[:, None, :]) ** 2, axis=-1))
        others = pos[:, None, :] + offsets  # [M,M-1,2] absolute
        d_other = jnp.sqrt(
            jnp.sum((centres[:, :, None, :] - others[:, None, :, :]) ** 2, axis=-1)
        )  # [M,N,M-1]
        # another MT nearer to a cell will probably take it; at equal distance (MTs start
        # together) the one listed first in the observation, i.e. of a lower index, does
        earlier = jnp.arange(m - 1)[None, :] < jnp.arange(m)[:, None]  # [M,M-1]
        nearer = (d_other < dist[..., None]) | (
            (d_other <= dist[..., None] + 1e-6) & earlier[:, None, :]
        )
        contested = jnp.any(nearer, axis=-1) if m > 1 else False
        slots = jnp.ceil(jnp.maximum(dist - p.max_move, 0.0) / p.max_move)
        # MTs that start together (or meet) would choose alike: each leans a little towards its
        # own sector of the compass (MT i: angle 2 pi i / M), so the fleet fans out
        to_cell = centres - pos[:, None, :]
        angle = jnp.arctan2(to_cell[..., 1], to_cell[..., 0])
        sector = 2.0 * math.pi * jnp.arange(m)[:, None] / m
        lean = 1.0 + _LEAN * jnp.cos(angle - sector) if m > 1 else 1.0
        score = values * lean * jnp.where(contested, 0.5, 1.0) / (1.0 + slots)
        score = jnp.where(inside & (values > 0), score, -1.0)
        best = jnp.argmax(score, axis=1)
        goal = jnp.take_along_axis(centres, best[:, None, None], axis=1)[:, 0]
        idle = jnp.take_along_axis(score, best[:, None], axis=1)[:, 0] <= 0
        if p.charging:  # the station it sees in its observation, by the greedy's own rule
            station = pos + obs[:, -2:] * size
            energy = obs[:, 2] * p.initial_energy
            goal, idle = recharge_goal(pos, energy, station[:, None, :], state.t, p, goal, idle)
        to_goal = goal - pos
        length = jnp.minimum(jnp.sqrt(jnp.sum(to_goal**2, axis=1)), p.max_move)
        theta0 = jnp.arctan2(to_goal[:, 1], to_goal[:, 0])
        # the local collision test needs the obstacles the MT's proximity sensor reads
        theta, free = steer(state.mt_pos, theta0, length, goal, state.obstacles, p, self.headings)
        length = jnp.where(idle | ~free, 0.0, length)
        return jnp.stack([jnp.mod(theta, 2.0 * math.pi), length], axis=1)
