"""The one atomic write: whole files only, and secrets never readable under a wider mode."""

from __future__ import annotations

import stat
from pathlib import Path

from chainsense.files import atomic_write


def test_a_file_is_replaced_whole_and_no_temporary_is_left(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.json"
    atomic_write(path, "old")
    atomic_write(path, b"new\x00bytes")
    assert path.read_bytes() == b"new\x00bytes"
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]


def test_a_secret_gets_its_mode_before_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "ca.token"
    leftover = tmp_path / "ca.token.tmp"  # a crashed earlier write, readable by everyone
    leftover.write_text("stale")
    leftover.chmod(0o644)
    atomic_write(path, "s3cret\n", mode=0o600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "s3cret\n"
    assert not leftover.exists()
