"""The CLI shell: help, version, and user mistakes ending in exit code 2 without a traceback."""

import subprocess
import sys


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chainsense", *args], capture_output=True, text=True, timeout=120
    )


def test_help_lists_usage() -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    assert "Usage" in out.stdout


def test_version() -> None:
    out = run_cli("--version")
    assert out.returncode == 0
    assert out.stdout.startswith("chainsense ")


def test_unknown_command_exits_2_without_traceback() -> None:
    out = run_cli("no-such-command")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
