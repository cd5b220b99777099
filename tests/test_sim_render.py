"""Rendering guards: a bad argument names itself and writes no file."""

import jax
import numpy as np
import pytest
from PIL import Image

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


def test_animate_and_plot_write_real_pictures(tmp_path, recorded):
    gif = animate_episode(recorded, SMALL, tmp_path / "e.gif", fps=5, max_frames=4)
    png = plot_map(recorded.final_state, SMALL, tmp_path / "m.png", recorded.positions)
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == 4  # max_frames of the 51 slots
        assert im.info["duration"] == pytest.approx(200, abs=10)  # 5 frames per second
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB"), dtype=np.int16))
    assert np.abs(frames[0] - frames[-1]).sum() > 0  # the MTs moved and the data shrank
    with Image.open(png) as im:
        pixels = np.asarray(im.convert("RGB"))
    assert im.format == "PNG" and min(pixels.shape[:2]) >= 300
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # drawn, not a blank canvas
