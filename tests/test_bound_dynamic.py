"""benchmarks/bound_dynamic.py: the computed bound on collected / generated must hold for what
a policy really collects, and its two parts must count what they claim to."""

import importlib
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from bench_scripts import BENCHMARKS, run_script
from chainsense.marl.evaluate import evaluate
from chainsense.marl.policies import GreedyPolicy
from chainsense.sim.params import WorldParams, preset


@pytest.fixture
def bound(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("bound_dynamic")


def test_counts_a_cluster_a_disk_holds_and_a_move_brings_into_range(bound: ModuleType) -> None:
    """Five PoIs within 0.02 of each other and one 3 away: one disk holds the five (never the
    sixth, even widened by the grid's margin), and one move can bring all five into range."""
    # an area whose grid cells are not square
    p = WorldParams(width=10.05, height=6.0, num_pois=6, num_obstacles=0, num_mts=1)
    cluster = [[5.0, 3.0], [5.01, 3.0], [5.0, 3.01], [4.99, 3.0], [5.0, 2.99]]
    pos = np.array([*cluster, [8.0, 3.0]], np.float32)
    assert bound.coverage_counts(pos, p) == (5, 5)
    spread = np.array([[1.0 + 3.0 * i, 1.0] for i in range(3)], np.float32)  # 3 apart
    assert bound.coverage_counts(spread, p.replace(num_pois=3)) == (1, 1)


def test_the_fastest_pois_get_the_latest_last_slots(bound: ModuleType) -> None:
    """One MT meeting one PoI per slot: the fastest PoI can be met in the last slot (1 slot's
    data lost), the next in the one before (2), and so on, capped at the episode."""
    rates = np.array([0.1, 0.3, 0.0, 0.2])
    assert bound.uncollected_bound(rates, 1, 1, 1, 10) == pytest.approx(
        0.3 * 1 + 0.2 * 2 + 0.1 * 3 + 0.0 * 4
    )
    assert bound.uncollected_bound(rates, 1, 1, 1, 2) == pytest.approx(0.3 + 0.2 * 2 + 0.1 * 2)
    assert bound.uncollected_bound(rates, 2, 1, 2, 10) == pytest.approx(0.6)  # 4 in the last


def test_the_bound_holds_for_greedy_on_every_map(tmp_path: Path) -> None:
    out = tmp_path / "bound.json"
    world = ["--world", "data_rate=0.01", "--world", "buffer_capacity=1.0"]
    res = run_script("bound_dynamic", "--preset", "small", *world, "--maps", "3",
                     "--first-map", "500", "--json", str(out))  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = json.loads(out.read_text())["maps"]
    assert [r["map"] for r in rows] == [500, 501, 502]
    p = preset("small").replace(data_rate=0.01, buffer_capacity=1.0)
    for row in rows:
        got = evaluate(GreedyPolicy(), p, [row["map"]]).mean
        assert got["slots"] < p.num_slots  # `small`'s MTs run out of energy: a short episode
        assert 0 < got["data_collection_ratio"] <= row["collected_over_generated_at_most"] < 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "paper"], "data does not keep arriving"),
        (["--maps", "0"], "--maps"),
        (["--spacing", "0"], "--spacing"),
    ],
)
def test_refuses_a_world_without_arrivals_and_bad_counts(args: list[str], message: str) -> None:
    res = run_script("bound_dynamic", *args)
    assert res.returncode != 0 and message in res.stderr
