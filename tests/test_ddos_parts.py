"""Parts of the availability experiment's systems that need no server: the HAProxy front's
config and limits, the failover client's order and benching, the /proc sampler."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from chainsense.devnet import free_ports
from chainsense.errors import ConfigError
from chainsense.experiments.ddos_clients import FailoverSqlClient
from chainsense.experiments.ddos_trial import classify
from chainsense.experiments.haproxy import FrontLimits, front_config, haproxy_binary
from chainsense.experiments.procstats import UsageSampler, cpu_seconds, rss_mib


def test_front_config_carries_the_limits_and_listens_on_loopback_only() -> None:
    text = front_config(4000, 5000, FrontLimits(rate_per_s=7, concurrent=3, server_maxconn=9))
    assert "bind 127.0.0.1:4000" in text and "server db1 127.0.0.1:5000 maxconn 9" in text
    assert "sc0_conn_rate gt 7" in text and "sc0_conn_cur gt 3" in text
    assert "track-sc0 src" in text and "timeout queue 1000ms" in text


@pytest.mark.skipif(haproxy_binary() is None, reason="haproxy not installed")
def test_front_config_is_valid_for_the_installed_haproxy(tmp_path) -> None:
    cfg = tmp_path / "h.cfg"
    cfg.write_text(front_config(4000, 5000, FrontLimits()))
    out = subprocess.run([haproxy_binary(), "-c", "-f", str(cfg)], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rate_per_s": 0}, "front.rate_per_s"),
        ({"concurrent": -1}, "front.concurrent"),
        ({"server_maxconn": 10**6}, "front.server_maxconn"),
        ({"queue_len": -5}, "front.queue_len"),
        ({"queue_timeout_s": 0}, "front.queue_timeout_s"),
    ],
)
def test_front_limits_are_validated_naming_the_field(kwargs, field) -> None:
    with pytest.raises(ConfigError) as err:
        FrontLimits(**kwargs)
    assert err.value.field == field


def test_failover_client_with_every_member_down_fails_fast_and_benches_them() -> None:
    ports = free_ports(3)  # nothing listens: connections are refused at once
    client = FailoverSqlClient(ports, timeout=2.0)
    outcome, latency, _ = classify(lambda: client.query(1), None, 2.0)
    assert outcome == "failure" and latency < 2.0
    now = time.monotonic()
    assert all(until > now for until in client._down_until)


def test_failover_client_rotates_its_first_choice_and_puts_benched_members_last() -> None:
    client = FailoverSqlClient([1, 2, 3], timeout=1.0)
    assert [client._order()[0] for _ in range(4)] == [0, 1, 2, 0]
    client._down_until[2] = time.monotonic() + 60
    assert client._order() == [1, 0, 2]  # 2 is benched: tried last, not skipped


def test_usage_sampler_reads_cpu_and_memory_and_ignores_gone_processes() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    try:
        assert cpu_seconds(gone.pid) is None and rss_mib(gone.pid) is None
        with UsageSampler([busy.pid, gone.pid], interval=0.05) as sampler:
            time.sleep(0.6)
        assert sampler.usage.cpu_pct > 5 and sampler.usage.rss_mib > 1
        assert rss_mib(os.getpid()) > 1
    finally:
        busy.kill()
        busy.wait()
