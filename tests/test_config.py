"""Config loading names the bad field for unknown keys, wrong types and unreadable files."""

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from chainsense.config import check_number, from_mapping, is_integer, is_number, load_file
from chainsense.errors import ConfigError
from chainsense.marl.config import load_train_config


@dataclass(frozen=True)
class Example:
    size: int = 3
    rate: float = 0.5
    mode: Literal["a", "b"] = "a"
    shape: tuple[int, int] = (1, 2)

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise ConfigError("size", "must be positive")


def test_valid_mapping_builds_dataclass() -> None:
    ex = from_mapping(Example, {"size": 4, "rate": 1, "shape": [3, 4]})
    assert ex == Example(size=4, rate=1.0, shape=(3, 4))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"bogus": 1}, "world.bogus"),
        ({"size": "3"}, "world.size"),
        ({"size": True}, "world.size"),
        ({"mode": "c"}, "world.mode"),
        ({"shape": [1]}, "world.shape"),
        ({"size": 0}, "world.size"),
    ],
)
def test_bad_values_name_the_field(data: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_mapping(Example, data, section="world")
    assert info.value.field == field


def test_load_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_file(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("size = = 3")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_file(bad)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00 not text")
    with pytest.raises(ConfigError, match=r"cannot parse binary\.toml"):
        load_file(binary)
    good = tmp_path / "good.yaml"
    good.write_text("world:\n  size: 5\n")
    assert load_file(good) == {"world": {"size": 5}}


def test_load_train_config_section_override_and_bad_fields(tmp_path: Path) -> None:
    assert load_train_config(None).algo == "maddpg"
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text("[train]\nalgo = 'iddpg'\ntau = 0.05\n")
    cfg = load_train_config(cfg_file)
    assert (cfg.algo, cfg.tau) == ("iddpg", 0.05)
    assert load_train_config(cfg_file, "maddpg").algo == "maddpg"  # the CLI flag wins
    cfg_file.write_text("train = 3\n")
    with pytest.raises(ConfigError) as info:
        load_train_config(cfg_file)
    assert info.value.field == "train"
    cfg_file.write_text("[train]\ntua = 0.05\n")
    with pytest.raises(ConfigError) as info:
        load_train_config(cfg_file)
    assert info.value.field == "train.tua"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (0.5, True),
        (1, True),
        (np.float32(0.25), True),
        (np.int64(0), True),
        (True, False),
        (np.bool_(True), False),
        ("0.5", False),
        (None, False),
        (float("nan"), False),
        (float("inf"), False),
        (-0.1, False),
        (1.5, False),
    ],
)
def test_check_number_rejects_flags_text_nan_and_out_of_range(value: object, ok: bool) -> None:
    if ok:
        check_number("rate", value, 0.0, 1.0)
        return
    with pytest.raises(ConfigError) as err:
        check_number("rate", value, 0.0, 1.0)
    assert err.value.field == "rate"
    assert "must be a number in [0, 1]" in str(err.value)


def test_number_and_integer_tests_treat_bools_as_neither() -> None:
    assert is_number(1.0) and is_number(1) and is_integer(1) and is_integer(np.int32(7))
    assert not is_number(False) and not is_integer(True) and not is_integer(1.0)
