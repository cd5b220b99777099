"""Test helper: load a page in a real headless Chromium (Debian's package) and dump its DOM."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest


def render_dom(html_file: Path) -> str:
    """Load ``html_file`` in headless Chromium with networking disabled and return the DOM."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (scripts/install-system-packages.sh)")
        pytest.skip("chromium not installed (bash scripts/install-system-packages.sh)")
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [
                exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", f"--user-data-dir={profile}",
                "--proxy-server=127.0.0.1:9", "--virtual-time-budget=5000",
                "--dump-dom", html_file.resolve().as_uri(),
            ],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout
