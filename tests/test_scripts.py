"""The set-up scripts: no pipeline that can fail on SIGPIPE under ``set -o pipefail``.

``cmd | head -2`` (or ``| grep -q``) lets the reader exit before ``cmd`` has written all its
output; ``cmd`` then dies of SIGPIPE and, under pipefail, the whole pipeline fails although
everything worked (scripts/install-geth.sh failed about one run in five that way).
"""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted([*REPO.glob("scripts/*.sh"), REPO / ".ci" / "run"])
# a pipe into a reader that may stop early: head, grep -q/-m, sed NUMq
_EARLY_EXIT = re.compile(
    r"\|\s*(head\b|grep\s+(-\w*[qm]\w*\b|--quiet|--max-count)|sed\s+-n\s+'?\d+q)"
)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_no_pipe_into_a_reader_that_exits_early(script: Path) -> None:
    text = script.read_text()
    if "pipefail" not in text:
        return
    bad = [
        f"{script.name}:{n}: {line.strip()}"
        for n, line in enumerate(text.splitlines(), 1)
        if not line.lstrip().startswith("#") and _EARLY_EXIT.search(line)
    ]
    assert not bad, "SIGPIPE under pipefail:\n" + "\n".join(bad)


def test_install_geth_reports_the_version_whatever_the_timing(tmp_path) -> None:
    """Runs install-geth.sh's own last line against a fake geth that writes its version in
    pieces (as the real one can): with `| head -2` it failed every time."""
    fake = tmp_path / "geth"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        "printf 'Geth\\nVersion: 1.13.15-stable\\nGit Commit: x\\n'\n"
        "sleep 0.2\n"
        "printf 'Architecture: amd64\\nGo Version: go1.22\\n'\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    script = (REPO / "scripts" / "install-geth.sh").read_text().splitlines()
    last = [line for line in script if line.strip()][-1]
    assert '"$bin" version' in last, last
    check = next(line for line in script if line.startswith("if [ -x"))
    body = f"set -euo pipefail\nbin={fake}\nversion=v1.13.15\n{last}\n{check}\n  echo current\nfi\n"
    proc = subprocess.run(["bash", "-c", body], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["Geth", "Version: 1.13.15-stable", "current"]
