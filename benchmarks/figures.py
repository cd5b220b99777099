"""What every plot script of ``benchmarks/`` shares: naming a report on the command line and
writing the figure it draws."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure


def labelled(item: str) -> tuple[Path, str | None]:
    """``FILE=LABEL`` as the file and its label (None for a bare ``FILE``)."""
    path, sep, label = item.partition("=")
    return Path(path), (label or None) if sep else None


def save_figure(fig: Figure, out: Path, dpi: int = 110) -> Path:
    """Lay ``fig`` out tightly and write it to ``out`` (its folder made if missing), saying so."""
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    print(f"wrote {out}")
    return out
