"""The availability experiment's quick preset end to end: all four systems started for real
(MariaDB as installed, defended behind HAProxy, replicated; a 4-node geth network), flooded with
the connection and the expensive attack.

Slow (about a minute): checks the invariants of what it measured, the documented contrasts,
and that every server and every attacker is gone afterwards.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import pytest

from chainsense.devnet import geth_available, pid_alive
from chainsense.experiments import ddos
from chainsense.experiments.haproxy import haproxy_binary
from chainsense.experiments.sqlserver import mariadb_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not geth_available(), reason="geth 1.13 not installed"),
    pytest.mark.skipif(not mariadb_available(), reason="mariadb-server not installed"),
    pytest.mark.skipif(haproxy_binary() is None, reason="haproxy not installed"),
]


def test_a_short_quick_run_keeps_its_invariants(tmp_path: Path) -> None:
    # the quick preset at its top level only and 3 s per trial: 12 trials instead of 20 of 5 s,
    # every server kind still started, flooded and stopped
    cfg = dataclasses.replace(ddos.PRESETS["quick"], levels=(0.0, 1000.0), duration_s=3.0)
    seen: list[tuple[str, int, int]] = []
    result = ddos.run(cfg, tmp_path / "out", progress=lambda d, i, n: seen.append((d, i, n)))

    # every server the run started is stopped: MariaDB (3 kinds), HAProxy, every geth node
    names = set(result.server_pids)
    sql = {"mariadb:mariadbd", "mariadb-defended:haproxy", "mariadb-replicated:mariadbd:2"}
    assert sql <= names
    assert sum(n.startswith("geth:") for n in names) == cfg.sealers + cfg.followers
    assert not any(pid_alive(p) for p in result.server_pids.values())

    assert len(result.trials) == cfg.trial_count and seen[-1][1:] == (cfg.trial_count,) * 2
    for t in result.trials:
        assert t.attempts > 0
        assert t.successes + t.failures + t.timeouts == t.attempts
        assert math.isclose(t.success_ratio + t.failure_ratio + t.timeout_ratio, 1.0)
        assert t.attackers_killed == 0  # every attacker process ended by itself
        assert t.server_rss_mib > 0 and t.server_cpu_pct >= 0
        if t.level == 0:  # no attack: nothing launched, every legitimate query answered
            assert t.attack == "none" and t.attack_launched == 0
            assert t.success_ratio == 1.0, t
        else:
            assert 0 < t.attack_launched <= t.level * cfg.duration_s
            assert t.attack_answered + t.attack_rejected + t.attack_timed_out == t.attack_launched
    top = max(cfg.levels)
    at_top = {(t.system, t.attack): t for t in result.trials if t.level == top}
    # MariaDB's 151-connection limit is the documented weak point under the lingering flood ...
    plain = at_top[("mariadb", "connect")]
    assert plain.failure_ratio > 0 and "mysql1040" in plain.failure_reasons
    # ... which the per-source front keeps away from the server: legitimate queries do better
    assert at_top[("mariadb-defended", "connect")].success_ratio > plain.success_ratio
    # the front refuses the attack sources far more often than the plain server does
    defended = at_top[("mariadb-defended", "connect")]
    assert defended.attack_rejected > defended.attack_answered

    for name in ("trials", "summary", "plot", "table", "config"):
        assert result.files[name].is_file()
    with result.files["trials"].open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == cfg.trial_count
    assert {r["system"] for r in rows} == set(cfg.systems)
    assert {r["attack"] for r in rows} == {"none", *cfg.attacks}
    assert result.files["plot"].read_bytes()[:4] == b"\x89PNG"
    assert "| mariadb-defended | expensive |" in result.files["table"].read_text()
