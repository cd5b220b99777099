"""A computed upper bound on the collected / generated ratio where data keeps arriving, per map.

Data a PoI generates after the last slot in which any MT sensed it is never collected, and the
fleet can only have sensed few PoIs in the last W slots: an MT's positions in W consecutive
slots are at most ``max_move`` apart one after the other, so the PoIs within ``sensing_range``
of them are at most ``n_disk + (W - 1) * n_lune``. ``n_disk`` is the most PoIs any sensing disk
holds and ``n_lune`` the most that one move of at most ``max_move`` can bring into range (the
disk it ends in less the disk it started from), both maximised over the map's continuous plane
on a grid whose spacing is made up for by widening the one disk and narrowing the other (so the
counts can only be over-estimates). Given those counts, the least data left uncollected gives
the latest last-sensing slots to the fastest PoIs (rearrangement), which is the bound.

It holds for every policy, whatever it knows, and for an episode of any length (one ends early
when every MT is out of energy): the largest bound over the lengths is printed. It is loose: it
lets the fleet meet every PoI in its last few slots, and takes nothing from the quota that caps
a slot's take or from the overflow. So it can show a target out of reach only when it falls
below it.

    python benchmarks/bound_dynamic.py --preset dynamic --maps 20 --first-map 10000
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import jax
import numpy as np

from bench_learning import world_params, write_report
from chainsense.sim.params import WorldParams
from chainsense.sim.world import episode_start

_SLACK = 1e-6  # float32 positions compared in float64: a margin for the rounding


def grid_points(params: WorldParams, spacing: float) -> tuple[np.ndarray, float, float]:
    """[G,2] grid over the area (edges included) at steps (sx, sy) of at most ``spacing``: every
    point of the area is within half a cell's diagonal of one."""
    nx = max(2, math.ceil(params.width / spacing) + 1)
    ny = max(2, math.ceil(params.height / spacing) + 1)
    gx, gy = np.meshgrid(np.linspace(0.0, params.width, nx), np.linspace(0.0, params.height, ny))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    return grid, params.width / (nx - 1), params.height / (ny - 1)


def coverage_counts(
    poi_pos: np.ndarray, params: WorldParams, spacing: float = 0.1
) -> tuple[int, int]:
    """(n_disk, n_lune): over-estimates of the most PoIs one sensing disk holds and of the most
    one move can bring into range, on this map."""
    pos = poi_pos.astype(np.float64)
    grid, sx, sy = grid_points(params, spacing)
    eps = math.hypot(sx, sy) / 2.0 + _SLACK  # a point to its nearest grid point, at most
    r, move = params.sensing_range, params.max_move
    outer = (r + eps) ** 2
    inner = max(r - eps, 0.0) ** 2
    n_disk = 0
    n_lune = 0
    # every grid vector from the end point's grid point to the start point's: the two points
    # are at most `move` apart and each within eps of its grid point
    reach = move + 2 * eps
    kx, ky = math.ceil(reach / sx), math.ceil(reach / sy)
    ox, oy = np.meshgrid(np.arange(-kx, kx + 1) * sx, np.arange(-ky, ky + 1) * sy)
    offsets = np.stack([ox.ravel(), oy.ravel()], axis=1)
    offsets = offsets[np.hypot(offsets[:, 0], offsets[:, 1]) <= reach]
    for chunk in np.array_split(grid, max(1, len(grid) // 2048)):
        d = chunk[:, None, :] - pos[None, :, :]
        within = (d[..., 0] ** 2 + d[..., 1] ** 2) <= outer  # [g, K]
        width = int(within.sum(axis=1).max(initial=0))  # the most PoIs a widened disk holds
        n_disk = max(n_disk, width)
        if width == 0:
            continue
        # each grid point's PoIs in its widened disk, padded with far-away points
        order = np.argsort(~within, axis=1, kind="stable")[:, :width]
        near = np.where(
            np.take_along_axis(within, order, axis=1)[..., None], pos[order], np.inf
        )  # [g, width, 2]
        starts = chunk[:, None, :] + offsets[None, :, :]  # [g, O, 2]
        dd = near[:, None, :, :] - starts[:, :, None, :]  # [g, O, width, 2]
        still = (dd[..., 0] ** 2 + dd[..., 1] ** 2) <= inner
        new = np.isfinite(near[:, None, :, 0]) & ~still
        n_lune = max(n_lune, int(new.sum(axis=2).max(initial=0)))
    return n_disk, n_lune


def last_sensing_ages(
    rates: np.ndarray, n_disk: int, n_lune: int, num_mts: int
) -> tuple[np.ndarray, np.ndarray]:
    """The PoIs' rates, fastest first, and the fewest slots W before the end in which each can
    have been sensed last, when a fleet senses at most ``num_mts * (n_disk + (W - 1) * n_lune)``
    PoIs in its last W slots: the fastest get the latest slots (rearrangement)."""
    fastest = np.sort(rates.astype(np.float64))[::-1]
    rank = np.arange(1, len(fastest) + 1)
    ages = 1 + np.maximum(0, np.ceil((rank / num_mts - n_disk) / max(n_lune, 1e-9)))
    return fastest, ages


def uncollected_bound(
    rates: np.ndarray, n_disk: int, n_lune: int, num_mts: int, num_slots: int
) -> float:
    """The least data generated after its PoI's last sensing slot in an episode of
    ``num_slots`` slots (see :func:`last_sensing_ages`)."""
    fastest, ages = last_sensing_ages(rates, n_disk, n_lune, num_mts)
    return float(np.sum(np.minimum(ages, num_slots) * fastest))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="dynamic")
    ap.add_argument("--world", action="append", default=[], help="world KEY=VALUE (repeatable)")
    ap.add_argument("--maps", type=int, default=20)
    ap.add_argument("--first-map", type=int, default=10_000, help="the held-out maps' first seed")
    ap.add_argument("--spacing", type=float, default=0.1, help="grid spacing of the maxima")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if not 1 <= args.maps <= 10_000:
        raise SystemExit(f"--maps must be in [1, 10000], got {args.maps}")
    if not 0.01 <= args.spacing <= 1.0:
        raise SystemExit(f"--spacing must be in [0.01, 1], got {args.spacing}")
    params = world_params(args.preset, args.world)
    if not params.dynamic:
        raise SystemExit(f"preset {args.preset!r}: data does not keep arriving (data_rate = 0)")
    rows = []
    header = ("map", "n_disk", "n_lune", "total", "uncollected >=", "bound")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (6, 6, 6, 8, 14, 7), strict=True)))
    for seed in range(args.first_map, args.first_map + args.maps):
        state, _ = episode_start(jax.random.PRNGKey(seed), params)  # the map evaluations play
        rates = np.asarray(state.poi_rate)
        n_disk, n_lune = coverage_counts(np.asarray(state.poi_pos), params, args.spacing)
        # an episode ends early when every MT is out of energy: the bound holds for any length
        fastest, ages = last_sensing_ages(rates, n_disk, n_lune, params.num_mts)
        slots = np.arange(1, params.num_slots + 1)
        lefts = np.sum(np.minimum(ages[None, :], slots[:, None]) * fastest[None, :], axis=1)
        totals = float(np.sum(state.poi_init)) + float(np.sum(rates)) * slots
        worst = int(np.argmax(1.0 - lefts / totals))
        left, total = float(lefts[worst]), float(totals[worst])
        bound = 1.0 - left / total
        rows.append(
            {
                "map": seed,
                "n_disk": n_disk,
                "n_lune": n_lune,
                "total": total,
                "uncollected_at_least": left,
                "collected_over_generated_at_most": bound,
            }
        )
        figures = f"{total:8.1f} {left:14.2f} {bound:7.4f}"
        print(f"{seed:>6} {n_disk:>6} {n_lune:>6} {figures}", flush=True)
    mean = float(np.mean([r["collected_over_generated_at_most"] for r in rows]))
    print(f"mean bound on collected / generated over {args.maps} maps: {mean:.4f}")
    write_report(
        {
            "preset": args.preset,
            "world": args.world,
            "spacing": args.spacing,
            "maps": rows,
            "mean_bound": mean,
        },
        args.json,
    )


if __name__ == "__main__":
    main()
