"""benchmarks/bench_weights.py: greedy's rule at fixed score weights on validation maps, each
point next to greedy on the same maps."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bench_scripts import run_script
from chainsense.marl.evaluate import evaluate
from chainsense.marl.policies import GreedyPolicy, WeightedGreedyPolicy
from chainsense.marl.recharge import EARLY_RULE, ENDGAME_RULE
from chainsense.marl.registry import baseline
from chainsense.sim.params import preset


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return run_script("bench_weights", *args)


def test_scores_every_point_beside_greedy_on_the_same_maps(tmp_path: Path) -> None:
    out = tmp_path / "w.json"
    res = _bench("--preset", "small", "--maps", "3", "--first-map", "400", "1,1", "30,1.5,2",
                 "1,1,2,0.01", "1,1,0,0,6,0.01", "--json", str(out))  # fmt: skip
    assert res.returncode == 0, res.stderr
    rep = json.loads(out.read_text())
    assert rep["maps"] == [400, 401, 402] and rep["preset"] == "small"
    small, seeds = preset("small"), range(400, 403)
    greedy = evaluate(GreedyPolicy(), small, seeds).mean
    assert rep["greedy"]["energy_efficiency"] == pytest.approx(greedy["energy_efficiency"])
    point = rep["points"][1]
    assert point["weights"] == [30.0, 1.5, 2.0, 0.0, 0.0, 1.0, 0.0]  # no isolation, territory 1
    want = evaluate(WeightedGreedyPolicy(30.0, 1.5, False, 2.0), small, seeds).mean
    assert point["mean"]["energy_efficiency"] == pytest.approx(want["energy_efficiency"])
    assert point["x_greedy"]["energy_efficiency"] == pytest.approx(
        want["energy_efficiency"] / greedy["energy_efficiency"]
    )
    assert "x greedy" in res.stdout
    jain = rep["points"][2]
    assert jain["weights"] == [1.0, 1.0, 2.0, 0.01, 0.0, 1.0, 0.0]
    with_jain = WeightedGreedyPolicy(backlog_weight=2.0, jain_weight=0.01)
    want = evaluate(with_jain, small, seeds).mean
    assert jain["mean"]["energy_efficiency"] == pytest.approx(want["energy_efficiency"])
    assert "1, 1, 2, 0.01" in res.stdout
    route = rep["points"][3]
    assert route["weights"] == [1.0, 1.0, 0.0, 0.0, 6.0, 0.01, 0.0]
    with_route = WeightedGreedyPolicy(isolation_weight=6.0, territory_weight=0.01)
    want = evaluate(with_route, small, seeds).mean
    assert route["mean"]["energy_efficiency"] == pytest.approx(want["energy_efficiency"])
    assert "1, 1, 0, 0, 6, 0.01" in res.stdout
    # the best point map by map, with hindsight
    per_map = [
        evaluate(policy, small, seeds).per_episode["energy_efficiency"]
        for policy in [
            WeightedGreedyPolicy(),
            WeightedGreedyPolicy(30.0, 1.5, False, 2.0),
            with_jain,
            with_route,
        ]
    ]
    hindsight = float(np.mean(np.max(np.stack(per_map), axis=0)))
    assert rep["hindsight_efficiency"] == pytest.approx(hindsight)
    assert "best point per map" in res.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["1"], "FAIRNESS,POWER"),
        (["a,b"], "FAIRNESS,POWER"),
        (["1,nan"], "finite"),
        (["1,1,2,3,4,0.5,7,8"], "FAIRNESS,POWER"),
        (["1,1,0,0,0,1,-0.1"], "travel in"),
        (["1,1,0,0,0,1,11"], "travel in"),
        (["1,1,0,0,-1"], "isolation in"),
        (["1,1,0,0,21"], "isolation in"),
        (["1,1,0,0,6,0"], "territory in"),
        (["1,1,0,0,6,2"], "territory in"),
        (["1,1,-1"], "backlog in"),
        (["1,1,2,-1"], "jain in"),
        (["1,1,2,11"], "jain in"),
        (["1,1,2,0.01", "--belief", "--world", "observe_radius=2"], "JAIN"),
        (["1,99"], "power in"),
        (["1,1/2,0.4"], "FULL in"),
        (["1,1/1,0.4,2"], "BELOW in"),
        (["1,1/1,0.4,0.4,1"], "/FULL,PER_SLOT_LEFT[,BELOW]"),
        (["1,1/1"], "/FULL,PER_SLOT_LEFT"),
        (["1,1/1,-1"], "per_slot_left"),
        (["1,1", "--maps", "0"], "--maps"),
        (["1,1", "--world", "num_mts=0"], "--world"),
        (["1,1", "--grid", "0.001"], "--grid"),
        (["1,1", "--grid", "nan"], "--grid"),
        (["1,1", "--grid", "0.02"], "--grid"),
    ],
)
def test_bad_points_and_counts_are_refused_by_name(args: list[str], needle: str) -> None:
    res = _bench("--preset", "small", *args)
    assert res.returncode != 0
    assert needle in res.stderr


def test_a_point_with_a_recharge_rule_scores_that_rule() -> None:
    res = _bench("--preset", "charging", "--maps", "1", "--first-map", "400", "1,1/1,0.4")
    assert res.returncode == 0, res.stderr
    charging, seeds = preset("charging"), range(400, 401)
    want = evaluate(WeightedGreedyPolicy(recharge=ENDGAME_RULE), charging, seeds).mean
    assert "1, 1, 0 / 1, 0.4" in res.stdout
    assert f"{want['energy_efficiency']:10.4f}" in res.stdout


def test_a_point_with_an_early_return_scores_that_rule() -> None:
    """``/1,0.4,0.4`` is the endgame rule that also goes back below 40% of the battery."""
    res = _bench("--preset", "charging", "--maps", "1", "--first-map", "400", "1,1/1,0.4,0.4")
    assert res.returncode == 0, res.stderr
    want = evaluate(WeightedGreedyPolicy(recharge=EARLY_RULE), preset("charging"), [400]).mean
    assert "1, 1, 0 / 1, 0.4, 0.4" in res.stdout
    assert f"{want['energy_efficiency']:10.4f}" in res.stdout


def test_a_grid_is_scored_as_greedy_grid_scores_it(tmp_path: Path) -> None:
    """``--grid 0.125 1,1,2`` is the registry's greedy-grid on the same maps, to the digit."""
    out = tmp_path / "g.json"
    res = _bench("--preset", "small", "--maps", "2", "--first-map", "400", "--grid", "0.125",
                 "1,1,2", "--json", str(out))  # fmt: skip
    assert res.returncode == 0, res.stderr
    rep = json.loads(out.read_text())
    assert rep["grid"] == 0.125
    want = evaluate(baseline("greedy-grid"), preset("small"), range(400, 402)).mean
    got = rep["points"][0]["mean"]
    assert got["energy_efficiency"] == pytest.approx(want["energy_efficiency"], rel=1e-6)


def test_a_travel_point_is_scored_as_greedy_travel_scores_it(tmp_path: Path) -> None:
    """``--grid 0.125 1,1,0,0.03,0,1,0.3/1,0.4`` is the registry's greedy-travel, to the digit
    (on `small`, where the recharge rule has no station to send an MT to)."""
    out = tmp_path / "t.json"
    res = _bench("--preset", "small", "--maps", "2", "--first-map", "400", "--grid", "0.125",
                 "1,1,0,0.03,0,1,0.3/1,0.4", "--json", str(out))  # fmt: skip
    assert res.returncode == 0, res.stderr
    point = json.loads(out.read_text())["points"][0]
    assert point["weights"][-1] == 0.3
    want = evaluate(baseline("greedy-travel"), preset("small"), range(400, 402)).mean
    assert point["mean"]["energy_efficiency"] == pytest.approx(want["energy_efficiency"], rel=1e-6)
