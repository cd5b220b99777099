"""Failure slots and episodes (``marl.failures``) as ``evaluate`` reports them."""

import jax.numpy as jnp
import numpy as np
from flax import struct

from chainsense.marl.evaluate import evaluate
from chainsense.marl.policies import GreedyPolicy
from chainsense.sim.params import preset

SMALL = preset("small")


@struct.dataclass
class Heading:
    """Every MT moves the full max_move at a fixed heading (0: stand still)."""

    theta: float
    length: float

    def act(self, key, obs, state, params):
        del key, obs, state
        return jnp.broadcast_to(jnp.array([self.theta, self.length]), (params.num_mts, 2))


def test_standing_still_is_parked_and_a_failure() -> None:
    tb = evaluate(Heading(0.0, 0.0), SMALL, range(4))
    parked = tb.per_episode["parked_slots"]
    # both MTs stand still for all 50 slots; only slots that still collect are not parked
    assert np.all(parked > 0.5 * 2 * SMALL.num_slots)
    assert np.all(tb.per_episode["stuck_slots"] == 0)
    np.testing.assert_array_equal(tb.per_episode["failure"], 1.0)


def test_walking_into_the_edge_is_stuck_and_counted_like_collisions() -> None:
    tb = evaluate(Heading(np.pi, SMALL.max_move), SMALL, range(4))  # west, full moves
    np.testing.assert_array_equal(tb.per_episode["stuck_slots"], tb.per_episode["collisions"])
    assert np.all(tb.per_episode["stuck_slots"] > 20)
    np.testing.assert_array_equal(tb.per_episode["failure"], 1.0)


def test_greedy_has_few_failures() -> None:
    tb = evaluate(GreedyPolicy(), SMALL, range(10))
    assert tb.mean["failure"] <= 0.2
    assert tb.mean["stuck_slots"] == 0.0


def test_recharging_at_a_station_is_not_parking() -> None:
    charging = preset("charging")  # greedy spends about a third of the slots at stations
    tb = evaluate(GreedyPolicy(), charging, range(10000, 10004))
    charge_slots = tb.per_episode["energy_charged"] / charging.charge_rate
    assert np.all(charge_slots > 100)
    assert np.all(tb.per_episode["parked_slots"] < 0.1 * charge_slots)
    assert tb.mean["failure"] <= 0.5
