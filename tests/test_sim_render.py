"""Rendering guards: a bad argument names itself and writes no file."""

import jax
import pytest

from chainsense.errors import ConfigError
from chainsense.marl.evaluate import rollout
from chainsense.marl.policies import GreedyPolicy
from chainsense.sim.params import preset
from chainsense.sim.render import animate_episode, plot_map

SMALL = preset("small")


@pytest.fixture(scope="module")
def recorded():
    return rollout(GreedyPolicy(), SMALL, jax.random.PRNGKey(0), record=True)


@pytest.mark.parametrize(("fps", "max_frames", "field"), [(0, 120, "fps"), (10, 1, "max_frames")])
def test_animate_names_the_bad_argument(tmp_path, recorded, fps, max_frames, field):
    gif = tmp_path / "e.gif"
    with pytest.raises(ConfigError) as info:
        animate_episode(recorded, SMALL, gif, fps=fps, max_frames=max_frames)
    assert info.value.field == field
    assert not gif.exists()


def test_plot_map_reports_the_wrong_positions_shape(tmp_path, recorded):
    png = tmp_path / "m.png"
    with pytest.raises(ConfigError, match=r"positions: .*got \(") as info:
        plot_map(recorded.final_state, SMALL, png, recorded.positions[:, 0])
    assert info.value.field == "positions"
    assert not png.exists()


def test_animate_and_plot_write_files(tmp_path, recorded):
    gif = animate_episode(recorded, SMALL, tmp_path / "e.gif", fps=5, max_frames=4)
    png = plot_map(recorded.final_state, SMALL, tmp_path / "m.png", recorded.positions)
    assert gif.stat().st_size > 0 and png.stat().st_size > 0
