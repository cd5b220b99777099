"""Model selection on validation maps: the kept fleet is the best-scoring one, its checkpoint
reproduces that score, the last fleet stays available to resume from, bad settings are refused."""

import dataclasses
from pathlib import Path

import jax
import numpy as np
import pytest

from chainsense.cli import main
from chainsense.errors import ConfigError
from chainsense.marl import algos, checkpoint, selection, session
from chainsense.marl.config import TrainConfig
from chainsense.marl.evaluate import evaluate
from chainsense.marl.learned import LearnedPolicy
from chainsense.sim.params import preset

SMALL = preset("small")
CFG = TrainConfig(algo="mappo", num_envs=32, chunk_iters=4, select_every=1, select_episodes=6)


def _score(learner: object, cfg: TrainConfig = CFG) -> float:
    table = evaluate(
        LearnedPolicy(learner.actor, cfg), SMALL, selection.Selection(cfg, SMALL).seeds
    )
    return table.mean["energy_efficiency"]


def test_keeps_the_best_of_several_learners_and_schedules_by_env_steps() -> None:
    cfg = TrainConfig(algo="mappo", select_every=100, select_episodes=6)
    chooser = selection.Selection(cfg, SMALL)
    learners = [algos.init_learner(jax.random.PRNGKey(i), cfg, SMALL) for i in range(4)]
    scores = [_score(lr, cfg) for lr in learners]
    assert len(set(scores)) > 1  # random actors differ, else the test proves nothing
    assert chooser.due(0)
    for i, lr in enumerate(learners):
        assert chooser.consider(lr, 100 * i + 5) == pytest.approx(scores[i])
    best = int(np.argmax(scores))
    assert chooser.best_score == pytest.approx(max(scores))
    assert chooser.best_env_steps == 100 * best + 5
    assert [s for s, _ in chooser.history] == [5, 105, 205, 305]
    kept = jax.tree_util.tree_leaves(chooser.best_learner.actor)
    want = jax.tree_util.tree_leaves(learners[best].actor)
    assert all(np.array_equal(a, b) for a, b in zip(kept, want, strict=True))
    assert not chooser.due(399) and chooser.due(400)  # every 100 env steps after the last
    # validation maps are neither the benchmark's held-out maps nor a short range after them
    assert min(chooser.seeds) == selection.VALIDATION_FIRST_MAP > 10_000 + 1024


def test_training_keeps_the_validated_fleet_and_the_last_one_to_resume(tmp_path: Path) -> None:
    res = session.run(CFG, SMALL, seed=0, steps=algos.steps_per_chunk(CFG) * 6, out_dir=tmp_path)
    sel = res.selection
    scores = [v for _, v in sel["history"]]
    assert len(scores) == 6  # every chunk (select_every = 1 env step), the last one included
    assert sel["best_score"] == max(scores)
    assert sel["best_env_steps"] == sel["history"][int(np.argmax(scores))][0]
    # what training returns and what fleet.msgpack holds reproduce the validation score
    assert _score(res.learner) == pytest.approx(sel["best_score"], rel=1e-6)
    saved = checkpoint.load(tmp_path / "fleet.msgpack")
    assert _score(saved.learner) == pytest.approx(sel["best_score"], rel=1e-6)
    last = checkpoint.load(tmp_path / "fleet_last.msgpack")
    assert last.progress["env_steps"] == res.env_steps
    assert _score(last.learner) == pytest.approx(scores[-1], rel=1e-6)
    validated = [r["validation"] for r in res.rows]
    np.testing.assert_allclose(validated, scores)  # every row scored, the last included
    log = (tmp_path / "train_log.csv").read_text().splitlines()
    assert log[0].split(",")[-1] == "validation" and len(log) == 7
    # resuming may change how a fleet is chosen (not what is trained)
    more = session.run(
        _no_select(CFG),
        SMALL,
        seed=0,
        steps=algos.steps_per_chunk(CFG),
        resume=tmp_path / "fleet_last.msgpack",
    )
    assert more.selection == {} and more.env_steps == res.env_steps + algos.steps_per_chunk(CFG)


def _no_select(cfg: TrainConfig) -> TrainConfig:
    return dataclasses.replace(cfg, select_every=0)


def test_without_selection_the_last_fleet_is_kept(tmp_path: Path) -> None:
    cfg = _no_select(CFG)
    res = session.run(cfg, SMALL, seed=0, steps=algos.steps_per_chunk(cfg) * 2, out_dir=tmp_path)
    assert res.selection == {}
    assert not (tmp_path / "fleet_last.msgpack").exists()
    assert all(np.isnan(r["validation"]) for r in res.rows)


def test_the_eval_noise_that_scores_best_on_the_validation_maps_is_saved(tmp_path: Path) -> None:
    noises = (0.0, 0.3, 1.0)
    cfg = dataclasses.replace(_no_select(CFG), select_noise=noises)
    res = session.run(cfg, SMALL, seed=0, steps=algos.steps_per_chunk(cfg) * 2, out_dir=tmp_path)
    scores = dict(res.selection["noise_scores"])
    assert set(scores) == set(noises)
    want = {n: _score(res.learner, dataclasses.replace(cfg, eval_noise=n)) for n in noises}
    assert scores == pytest.approx(want, rel=1e-6)  # each scored on the validation maps
    assert len(set(scores.values())) > 1  # the noise matters, else the choice proves nothing
    best = max(scores, key=scores.get)
    assert res.cfg.eval_noise == best
    saved = checkpoint.load(tmp_path / "fleet.msgpack")
    assert saved.cfg.eval_noise == best
    # the noise is how the fleet acts, not how it trained: resuming is allowed
    more = session.run(cfg, SMALL, seed=0, steps=1, resume=tmp_path / "fleet.msgpack")
    assert more.env_steps > saved.progress["env_steps"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("select_noise", (0.1, -0.1)),
        ("select_noise", (0.1,) * 9),
        ("select_every", -1),
        ("select_every", 10**13),
        ("select_episodes", 0),
        ("select_episodes", 5000),
    ],
)
def test_bad_selection_settings_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        TrainConfig(algo="mappo", **{field: value})


def test_cli_train_keeps_and_reports_the_validated_fleet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([
            "train", "--algo", "mappo", "--preset", "small", "--steps", "50000",
            "--select-every", "20000", "--eval-episodes", "2", "--no-compare",
            "--out", str(tmp_path),
        ])  # fmt: skip
    out = capsys.readouterr().out
    assert info.value.code in (0, None), out
    flat = " ".join(out.split())  # the console may wrap lines at any width
    assert "kept the fleet of env step" in flat and "validation maps" in flat
    assert (tmp_path / "fleet.msgpack").is_file() and (tmp_path / "fleet_last.msgpack").is_file()


def test_selection_by_the_collection_ratio_scores_that_metric(tmp_path: Path) -> None:
    """With select_metric = data_collection_ratio every validation score is the fleet's mean
    collection ratio on the validation maps, and the report names that metric."""
    cfg = dataclasses.replace(CFG, select_metric="data_collection_ratio")
    res = session.run(cfg, SMALL, seed=0, steps=algos.steps_per_chunk(cfg) * 2, out_dir=tmp_path)
    assert res.selection["metric"] == "data_collection_ratio"
    table = evaluate(
        LearnedPolicy(res.learner.actor, cfg), SMALL, selection.Selection(cfg, SMALL).seeds
    )
    want = table.mean["data_collection_ratio"]
    assert res.selection["best_score"] == pytest.approx(want, rel=1e-6)
    assert 0 < want <= 1 and want != pytest.approx(_score(res.learner), rel=1e-3)


def test_an_unknown_selection_metric_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="select_metric"):
        TrainConfig.from_dict({"algo": "mappo", "select_metric": "return"})
