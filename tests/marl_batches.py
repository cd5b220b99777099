"""A random MADDPG minibatch of fixed small shapes, shared by the network and update tests."""

import jax
import jax.numpy as jnp

from chainsense.marl import maddpg, networks

M, OD, SD, N = 3, 11, 17, 8  # agents, observation dim, critic state dim, batch size


def random_batch(key: jax.Array) -> maddpg.Transition:
    """Normal-distributed observations/states/rewards, actions inside the unit disk, no ends."""
    k = jax.random.split(key, 6)
    return maddpg.Transition(
        obs=jax.random.normal(k[0], (N, M, OD)),
        cstate=jax.random.normal(k[1], (N, SD)),
        action=networks.clip_to_disk(jax.random.normal(k[2], (N, M, 2))),
        reward=jax.random.normal(k[3], (N, M)),
        next_obs=jax.random.normal(k[4], (N, M, OD)),
        next_cstate=jax.random.normal(k[5], (N, SD)),
        done=jnp.zeros((N,)),
    )
