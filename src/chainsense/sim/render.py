"""Pictures of the world: a map PNG and an animated GIF of a recorded episode (matplotlib, Agg).

Trajectories come from ``marl.evaluate.rollout(..., record=True)``, which records MT positions
[T+1,M,2] and the remaining data of every PoI per slot. A real site (``sim.sites.Site``) passed as
``site`` adds its original obstacle outlines over the boxes they were decomposed into, its
charging stations and the start point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Rectangle

from chainsense.errors import ConfigError
from chainsense.sim.params import WorldParams
from chainsense.sim.state import WorldState


def _draw_static(ax: Axes, state: WorldState, params: WorldParams) -> None:
    ax.set_xlim(0, params.width)
    ax.set_ylim(0, params.height)
    ax.set_aspect("equal")
    for x0, y0, x1, y1 in np.asarray(state.obstacles).reshape(-1, 4):
        if x1 > x0 and y1 > y0 and x1 > 0:
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, color="0.35", zorder=2))
    for x, y in np.asarray(state.stations).reshape(-1, 2):  # charging stations and their reach
        ax.add_patch(Circle((x, y), params.charge_radius, color="tab:green", alpha=0.25, zorder=2))
        ax.plot(x, y, marker="P", color="tab:green", markersize=9, zorder=4)


class SiteDrawing(Protocol):
    """What a picture needs of a real site (``sim.sites.Site`` is one); world units."""

    @property
    def outlines(self) -> tuple[np.ndarray, ...]:
        """Closed rings [N,2] of the original obstacles."""
        ...

    @property
    def stations(self) -> np.ndarray:
        """Charging stations [S,2]."""
        ...

    @property
    def start(self) -> tuple[float, float]:
        """Where the MTs start."""
        ...


def _draw_site(ax: Axes, site: SiteDrawing) -> None:
    """Outlines of the real obstacles over their boxes, stations and start, with legend labels."""
    ax.add_patch(Rectangle((0, 0), 0, 0, color="0.35", label="obstacle boxes"))
    for n, ring in enumerate(site.outlines):
        label = "real outline" if n == 0 else None
        ax.plot(ring[:, 0], ring[:, 1], "-", color="crimson", lw=0.9, zorder=2.5, label=label)
    st = np.asarray(site.stations).reshape(-1, 2)
    if len(st):
        ax.plot(st[:, 0], st[:, 1], "P", color="green", ms=9, mec="black", zorder=6)
        ax.add_line(Line2D([], [], ls="", marker="P", color="green", mec="black", label="station"))
    ax.plot(*site.start, "^", color="gold", ms=10, mec="black", zorder=6, label="start")


def _draw_heat(ax: Axes, state: WorldState, params: WorldParams, cells: int = 16) -> None:
    pos = np.asarray(state.poi_pos)
    visits = np.asarray(state.visits, dtype=float)
    heat, _, _ = np.histogram2d(
        pos[:, 0],
        pos[:, 1],
        bins=cells,
        range=[[0, params.width], [0, params.height]],
        weights=visits,
    )
    im = ax.imshow(
        heat.T,
        origin="lower",
        extent=(0, params.width, 0, params.height),
        cmap="Oranges",
        alpha=0.55,
        zorder=0,
    )
    plt.colorbar(im, ax=ax, fraction=0.046, pad=0.10, label="visits h(k) per cell")


def plot_map(
    state: WorldState,
    params: WorldParams,
    path: str | Path,
    positions: np.ndarray | None = None,
    heat: bool = False,
    title: str | None = None,
    site: SiteDrawing | None = None,
) -> Path:
    """Save a PNG: PoIs shaded by remaining data, obstacles, MT trajectories, optional visit heat.

    ``positions`` [T+1,M,2] draws each MT's path (start marked o, end marked *); ``heat`` adds a
    heat map of the visit counts h(k) summed over a 16 x 16 grid; ``site`` draws a real site's
    obstacle outlines over their boxes, its stations and the start.
    """
    if positions is not None and np.asarray(positions).ndim != 3:
        raise ConfigError(
            "positions", f"must have shape [T+1, M, 2], got {np.asarray(positions).shape}"
        )
    fig, ax = plt.subplots(figsize=(6.4, 6.0))
    _draw_static(ax, state, params)
    if site is not None:
        _draw_site(ax, site)
    if heat:
        _draw_heat(ax, state, params)
    pos = np.asarray(state.poi_pos)
    sc = ax.scatter(
        pos[:, 0],
        pos[:, 1],
        c=np.asarray(state.poi_data),
        cmap="Blues",
        vmin=0.0,
        vmax=1.0,
        s=14,
        edgecolors="0.3",
        linewidths=0.3,
        zorder=3,
    )
    plt.colorbar(sc, ax=ax, fraction=0.046, pad=0.02, label="remaining data")
    if positions is not None:
        traj = np.asarray(positions)
        for m in range(traj.shape[1]):
            color = f"C{(m + 1) % 10}"
            ax.plot(
                traj[:, m, 0], traj[:, m, 1], "-", color=color, lw=1.2, zorder=4, label=f"MT {m}"
            )
            ax.plot(*traj[0, m], "o", color=color, zorder=5)
            ax.plot(*traj[-1, m], "*", color=color, ms=12, zorder=5)
    if site is not None:  # a site's map is full: the legend goes below it
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=4, fontsize=8)
    elif positions is not None:
        ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title or f"t = {int(state.t)}")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


class RecordedEpisode(Protocol):
    """What an animation needs of a recorded rollout (``marl.evaluate.Rollout`` is one)."""

    final_state: WorldState
    positions: np.ndarray | None  # [T+1, M, 2]
    data_history: np.ndarray | None  # [T+1, K]


def animate_episode(
    rollout: RecordedEpisode,
    params: WorldParams,
    path: str | Path,
    fps: int = 10,
    max_frames: int = 120,
    site: SiteDrawing | None = None,
) -> Path:
    """Save a GIF of a recorded rollout (``positions`` and ``data_history`` must be present);
    ``site`` adds a real site's outlines, stations and start."""
    if rollout.positions is None or rollout.data_history is None:
        raise ConfigError("rollout", "record the rollout (record=True) before animating it")
    if fps < 1:
        raise ConfigError("fps", f"must be >= 1, got {fps!r}")
    if max_frames < 2:
        raise ConfigError("max_frames", f"must be >= 2, got {max_frames!r}")
    traj, data = np.asarray(rollout.positions), np.asarray(rollout.data_history)
    state = rollout.final_state
    last = int(state.t)
    frames = np.unique(np.linspace(0, last, min(max_frames, last + 1)).round().astype(int))
    fig, ax = plt.subplots(figsize=(5.2, 5.2))
    _draw_static(ax, state, params)
    if site is not None:
        _draw_site(ax, site)
    pos = np.asarray(state.poi_pos)
    sc = ax.scatter(pos[:, 0], pos[:, 1], c=data[0], cmap="Blues", vmin=0, vmax=1, s=12, zorder=3)
    lines = [
        ax.plot([], [], "-", color=f"C{(m + 1) % 10}", lw=1.2, zorder=4)[0]
        for m in range(traj.shape[1])
    ]
    heads = [
        ax.plot([], [], "o", color=f"C{(m + 1) % 10}", zorder=5)[0] for m in range(traj.shape[1])
    ]
    disc = [
        plt.Circle((0, 0), params.sensing_range, fill=False, ls=":", color=f"C{(m + 1) % 10}")
        for m in range(traj.shape[1])
    ]
    for c in disc:
        ax.add_patch(c)
    title = ax.set_title("")

    def draw(i: int) -> list[Any]:
        t = int(frames[i])
        sc.set_array(data[t])
        for m in range(traj.shape[1]):
            lines[m].set_data(traj[: t + 1, m, 0], traj[: t + 1, m, 1])
            heads[m].set_data([traj[t, m, 0]], [traj[t, m, 1]])
            disc[m].center = (float(traj[t, m, 0]), float(traj[t, m, 1]))
        collected = 1.0 - data[t].sum() / max(float(data[0].sum()), 1e-9)
        title.set_text(f"slot {t} / {params.num_slots}   collected {collected:.0%}")
        return [sc, *lines, *heads, *disc, title]

    anim = FuncAnimation(fig, draw, frames=len(frames), blit=False)
    out = Path(path)
    anim.save(out, writer=PillowWriter(fps=fps))
    plt.close(fig)
    return out
