"""``chainsense network ...`` run as a subprocess, the way a user runs it (shared by the network
tests): a wide terminal so Rich does not fold the lines the tests read."""

from __future__ import annotations

import os
import subprocess
import sys


def network_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run ``chainsense network ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "chainsense", "network", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "250"},
    )
