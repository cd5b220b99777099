"""The world's state and what one slot reports: fixed-size arrays only, a pytree for JAX.

Scenario arrays have size 0 when their scenario is off (a static property of the params), so
the ``paper`` world carries and computes nothing for them.
"""

from __future__ import annotations

from flax import struct
from jax import Array


@struct.dataclass
class WorldState:
    """Everything about one world at the start of slot ``t``."""

    mt_pos: Array  # [M,2] float32
    energy: Array  # [M] remaining energy
    poi_pos: Array  # [K,2]
    poi_init: Array  # [K] initial data
    poi_data: Array  # [K] remaining data
    visits: Array  # [K] int32, h_t(k): slots in which PoI k was served
    obstacles: Array  # [C,4] (x0, y0, x1, y1)
    roadmap: Array  # [4C,4C] shortest paths between the obstacles' corners (sim.roadmap), fixed
    t: Array  # int32 scalar: slots elapsed
    collisions: Array  # [M] int32, cumulative refused moves
    collected: Array  # [M] cumulative data collected
    energy_spent: Array  # [M] cumulative energy spent
    done: Array  # bool scalar
    # charging (S = params.num_stations)
    stations: Array  # [S,2]
    charged: Array  # [M] cumulative energy recharged
    # data that keeps arriving ([K] when params.dynamic, else [0])
    poi_rate: Array  # data generated per slot
    generated: Array  # cumulative data generated (beyond the initial data)
    lost: Array  # cumulative data lost to buffer overflow
    birth: Array  # mean slot of birth of the data in the buffer (the buffer is well mixed)
    age_sum: Array  # scalar: sum over collected data of its age in slots
    # partial observation ([M,K] and [D,M,K] when params.partial, else size 0)
    belief: Array  # what each MT believes remains at every PoI
    shared: Array  # ring of the last D slots' collections, D = share_delay (> 0 only)
    # [M,K] bool where data also keeps arriving, else [M,0]: the PoIs each MT knows were served
    # (by itself, or by others as the ledger delivers): a refilled buffer looks unserved otherwise
    known_served: Array


@struct.dataclass
class StepInfo:
    """What happened in one slot, per MT (the ledger turns ``collected_per_poi`` into records)."""

    collected_per_poi: Array  # [M,K] data MT m took from PoI k this slot
    collected: Array  # [M] b_t^m
    moved: Array  # [M] distance actually moved
    collision: Array  # [M] bool: move refused
    energy_used: Array  # [M] phi_t^m
    fairness: Array  # scalar omega_t after this slot
    charged: Array  # [M] energy recharged this slot
