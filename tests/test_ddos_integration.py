"""The availability experiment's quick preset end to end with real MariaDB and geth servers.

Slow (~2-3 min): starts a 4-node geth network and a MariaDB server, floods both, checks the
invariants of what it measured and that every server is gone afterwards.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from chainsense.devnet import geth_available, pid_alive
from chainsense.experiments import ddos
from chainsense.experiments.sqlserver import mariadb_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not geth_available(), reason="geth 1.13 not installed"),
    pytest.mark.skipif(not mariadb_available(), reason="mariadb-server not installed"),
]


def test_quick_preset_invariants(tmp_path: Path) -> None:
    cfg = ddos.PRESETS["quick"]
    seen: list[tuple[str, int, int]] = []
    result = ddos.run(cfg, tmp_path / "out", progress=lambda d, i, n: seen.append((d, i, n)))

    # every server the run started is stopped
    assert result.server_pids and "mariadb" in result.server_pids
    assert not any(pid_alive(p) for p in result.server_pids.values())

    n_trials = len(cfg.levels) * cfg.repetitions * len(cfg.systems)
    assert len(result.trials) == n_trials and seen[-1][1:] == (n_trials, n_trials)
    for t in result.trials:
        assert t.attempts > 0
        assert t.successes + t.failures + t.timeouts == t.attempts
        for r in (t.success_ratio, t.failure_ratio, t.timeout_ratio):
            assert 0.0 <= r <= 1.0
        assert math.isclose(t.success_ratio + t.failure_ratio + t.timeout_ratio, 1.0)
        if t.level == 0:  # no attack: nothing launched, every legitimate query answered
            assert t.attack_launched == 0
            assert t.success_ratio == 1.0, t
        else:
            assert 0 < t.attack_launched <= t.level * cfg.duration_s
            assert t.attack_answered + t.attack_rejected + t.attack_timed_out == t.attack_launched
    # MariaDB's 151-connection limit is the documented weak point: at the highest level the
    # flood holds far more connections than that and legitimate clients are refused.
    top = max(cfg.levels)
    sql_top = [t for t in result.trials if t.system == "mariadb" and t.level == top]
    assert all(t.failure_ratio > 0 and "mysql1040" in t.failure_reasons for t in sql_top)

    for name in ("trials", "summary", "plot", "table", "config"):
        assert result.files[name].is_file()
    with result.files["trials"].open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == n_trials
    assert {r["system"] for r in rows} == {"mariadb", "geth"}
    assert result.files["plot"].read_bytes()[:4] == b"\x89PNG"
    assert "| mariadb |" in result.files["table"].read_text()
