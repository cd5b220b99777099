"""Availability experiment parts that need no database or chain: config, metrics, the flood."""

from __future__ import annotations

import dataclasses
import json
import math
import socket
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from chainsense.devnet import free_ports
from chainsense.errors import ConfigError
from chainsense.experiments import ddos
from chainsense.experiments.ddos_systems import ATTACKS, SYSTEMS
from chainsense.experiments.flood import (
    Flood,
    FloodSpec,
    Target,
    mysql_handshake_response,
    source_address,
)
from chainsense.stats import percentile


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("levels", {"levels": ()}),
        ("levels[1]", {"levels": (0.0, -5.0)}),
        ("levels[0]", {"levels": (1e9,)}),
        ("repetitions", {"repetitions": 0}),
        ("duration_s", {"duration_s": 600}),
        ("warmup_s", {"warmup_s": 6.0}),
        ("legit_rate", {"legit_rate": 0}),
        ("query_timeout_s", {"query_timeout_s": 0}),
        ("records", {"records": 0}),
        ("attack_processes", {"attack_processes": 100}),
        ("systems", {"systems": ("oracle",)}),
        ("systems", {"systems": ()}),
        ("systems", {"systems": ("geth", "geth")}),
        ("attacks", {"attacks": ("smurf",)}),
        ("attacks", {"attacks": ()}),
        ("attacks", {"attacks": ("connect", "connect")}),
        ("attack_sources", {"attack_sources": 1, "attack_processes": 2}),
        ("attack_sources", {"attack_sources": 10_000}),
        ("sealers", {"sealers": 0}),
        ("followers", {"followers": -1}),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field, kwargs) -> None:
    with pytest.raises(ConfigError) as err:
        ddos.DdosConfig(**kwargs)
    assert err.value.field == field


def test_presets_are_valid_and_full_covers_the_papers_levels() -> None:
    assert ddos.PRESETS["full"].levels == (0.0, 100.0, 500.0, 1000.0, 5000.0)
    quick = ddos.PRESETS["quick"]
    assert quick.levels[0] == 0.0  # a no-attack baseline first
    # CI's quick run compares all four systems under the connection and the expensive flood
    assert set(quick.systems) == set(SYSTEMS) and {"connect", "expensive"} <= set(quick.attacks)
    assert set(ddos.PRESETS["full"].attacks) == set(ATTACKS)


def test_schedule_runs_the_baseline_once_per_system_and_repetition() -> None:
    cfg = ddos.DdosConfig(levels=(0.0, 10.0, 20.0), repetitions=2, systems=("mariadb", "geth"))
    schedule = ddos._schedule(cfg)
    assert len(schedule) == cfg.trial_count == 2 * 2 * (1 + 2 * 2)
    baseline = [s for s in schedule if s[1] == 0]
    assert {s[2] for s in baseline} == {"none"} and len(baseline) == 4
    assert all(s[2] in cfg.attacks for s in schedule if s[1] > 0)
    assert len(set(schedule)) == len(schedule)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"protocol": "mysql", "port": 3306, "host": "10.0.0.1"}, "target.host"),
        ({"protocol": "mysql", "port": 3306, "host": "localhost"}, "target.host"),
        ({"protocol": "mysql", "port": 0}, "target.port"),
        ({"protocol": "smtp", "port": 25}, "target.protocol"),
    ],
)
def test_flood_targets_only_loopback(kwargs, field) -> None:
    with pytest.raises(ConfigError) as err:
        Target(**kwargs)
    assert err.value.field == field


def test_flood_spec_is_bounded() -> None:
    with pytest.raises(ConfigError):
        FloodSpec(rate=10**6, duration=1)
    with pytest.raises(ConfigError):
        FloodSpec(rate=10, duration=3600)
    with pytest.raises(ConfigError):
        FloodSpec(rate=10, duration=1, max_open=10**6)


def test_percentile_nearest_rank() -> None:
    xs = [float(i) for i in range(1, 101)]
    assert percentile(xs, 50) == 50.0
    assert percentile(xs, 99) == 99.0
    assert percentile([3.0], 99) == 3.0
    assert math.isnan(percentile([], 50))


def _closed_port() -> int:
    return free_ports(1)[0]


def test_classify_outcomes() -> None:
    assert ddos.classify(lambda: (1, "a"), (1, "a"), 1.0)[0] == "success"
    assert ddos.classify(lambda: (1, "b"), (1, "a"), 1.0)[:3:2] == ("failure", "wrong-answer")

    def refused() -> None:
        socket.create_connection(("127.0.0.1", _closed_port()), timeout=1.0)

    outcome, latency, reason = ddos.classify(refused, None, 1.0)
    assert (outcome, reason) == ("failure", "ConnectionRefusedError") and latency < 1.0

    def slow() -> int:
        time.sleep(0.3)
        return 1

    assert ddos.classify(slow, 1, 0.1)[0] == "timeout"

    def times_out() -> None:
        raise TimeoutError("timed out")

    assert ddos.classify(times_out, None, 5.0)[0] == "timeout"


def _trial(system: str, level: float, rep: int, s: int, f: int, t: int, p99: float) -> ddos.Trial:
    n = s + f + t
    return ddos.Trial(
        system, "connect", level, rep, n, s, f, t, s / n, f / n, t / n, 1.0, p99,
        0, 0, 0, 0, 0, level, 0, 10.0 + rep, 100.0, "",
    )  # fmt: skip


def test_summarize_means_and_sample_std() -> None:
    trials = [
        _trial("geth", 100, 0, 10, 0, 0, 5.0),
        _trial("geth", 100, 1, 8, 2, 0, 7.0),
        _trial("mariadb", 100, 0, 5, 5, 0, math.nan),
    ]
    by = {(s.system, s.level): s for s in ddos.summarize(trials)}
    g = by[("geth", 100)]
    assert g.reps == 2 and g.attempts == 20
    assert g.success_mean == pytest.approx(0.9) and g.success_std == pytest.approx(0.1414, abs=1e-3)
    assert g.p99_ms_mean == pytest.approx(6.0)
    assert g.server_cpu_pct == pytest.approx(10.5) and g.server_rss_mib == 100.0
    m = by[("mariadb", 100)]
    assert m.success_std == 0.0 and math.isnan(m.p99_ms_mean)
    table = ddos.markdown_table(list(by.values()))
    assert "| geth | connect | 100 |" in table and table.count("\n") == 4


def test_plot_writes_png(tmp_path: Path) -> None:
    trials = [
        _trial(s, lv, r, 9, 1, 0, 3.0)
        for s in ("geth", "mariadb")
        for lv in (0, 50)
        for r in (0, 1)
    ]
    trials += [dataclasses.replace(t, attack="expensive") for t in trials if t.level > 0]
    trials = [dataclasses.replace(t, attack="none") if t.level == 0 else t for t in trials]
    summary = ddos.summarize(trials)
    assert {s.attack for s in summary} == {"none", "connect", "expensive"}
    path = ddos.plot(summary, tmp_path / "p.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mysql_handshake_response_layout() -> None:
    body = mysql_handshake_response("flood", "chainsense")
    caps, max_packet, charset = struct.unpack("<IIB", body[:9])
    assert caps & 0x200 and caps & 0x8  # protocol 4.1, connect with database
    assert max_packet == 1 << 24 and charset == 33
    assert body[9:32] == bytes(23)
    assert body[32:].split(b"\0")[0] == b"flood"
    assert body.endswith(b"chainsense\0")


class _RpcHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits = 0
    sources: ClassVar[set[str]] = set()
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        req = json.loads(body)
        with _RpcHandler.lock:
            _RpcHandler.hits += 1
            _RpcHandler.sources.add(self.client_address[0])
        out = json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": "0x1"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: object) -> None:
        pass


def test_flood_against_a_real_loopback_server_is_bounded_and_stops() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RpcHandler)
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []})
        target = Target("jsonrpc", server.server_address[1], request=body)
        spec = FloodSpec(rate=60, duration=1.0, processes=2, hold_s=0.1, timeout_s=2.0, sources=5)
        t0 = time.monotonic()
        flood = Flood([target], spec).start()
        procs = list(flood._procs)
        stats = flood.join()
        assert time.monotonic() - t0 < 20
        # rate x duration attempts, never more; on a loaded machine a few may be skipped late
        assert stats.launched + stats.skipped == 60 and stats.launched >= 45
        assert stats.answered == stats.launched == _RpcHandler.hits
        assert stats.rejected == stats.timed_out == 0
        # every attacker ended by itself (none had to be killed) and cleanly
        assert not any(p.is_alive() for p in procs)
        assert flood.killed == 0 and flood.exitcodes == [0, 0]
        # the attacks came from their own loopback addresses, never the legitimate 127.0.0.1
        assert _RpcHandler.sources == {source_address(i) for i in range(5)}
    finally:
        server.shutdown()
        server.server_close()


class _ChunkedHandler(BaseHTTPRequestHandler):
    """Answers as geth's HTTP server does for a large result: chunked transfer encoding."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "result": ["0x" + "ab" * 64] * 300}).encode()
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(0, len(body), 4096):
            piece = body[i : i + 4096]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *args: object) -> None:
        pass


def test_flood_reads_chunked_answers_as_answered() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChunkedHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = Target("jsonrpc", server.server_address[1], request='{"method": "eth_getLogs"}')
        stats = Flood([target], FloodSpec(rate=20, duration=0.5, processes=1, hold_s=0)).start()
        result = stats.join()
        assert result.launched >= 5 and result.answered == result.launched
    finally:
        server.shutdown()
        server.server_close()


def test_flood_on_a_closed_port_counts_rejections() -> None:
    target = Target("mysql", _closed_port(), request="SELECT 1")
    stats = Flood([target], FloodSpec(rate=40, duration=0.5, processes=1)).start().join()
    assert stats.launched + stats.skipped == 20 and stats.launched >= 10
    assert stats.rejected == stats.launched and stats.answered == 0


def test_attack_sources_are_disjoint_per_process_and_bounded() -> None:
    spec = FloodSpec(rate=10, duration=1, processes=3, sources=7)
    shares = [spec.source_addresses(i) for i in range(3)]
    flat = [a for share in shares for a in share]
    assert sorted(flat) == sorted(source_address(i) for i in range(7)) and len(set(flat)) == 7
    assert all(share for share in shares) and "127.0.0.1" not in flat
    assert FloodSpec(rate=10, duration=1, processes=2).source_addresses(1) == ["127.0.0.3"]
    for bad in ({"sources": 1, "processes": 2}, {"sources": 10_000}):
        with pytest.raises(ConfigError) as err:
            FloodSpec(rate=10, duration=1, **bad)
        assert err.value.field == "sources"
    with pytest.raises(ConfigError):
        source_address(200)


def test_zero_rate_starts_no_process() -> None:
    flood = Flood([Target("mysql", 3306)], FloodSpec(rate=0, duration=1)).start()
    assert flood._procs == [] and flood.join().launched == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--preset", "huge"], "--preset"), (["--levels", "1,x"], "--levels"),
     (["--levels", "-5"], "levels[0]"), (["--repetitions", "0"], "repetitions"),
     (["--systems", "mariadb,oracle"], "--systems: unknown 'oracle'"),
     (["--systems", ","], "--systems"), (["--attack", "smurf"], "--attack: unknown 'smurf'"),
     (["--sources", "100000"], "--sources")],
)  # fmt: skip
def test_cli_rejects_bad_options_with_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "chainsense", "experiment", "ddos", "--out", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr
    assert needle in out.stderr and "Traceback" not in out.stderr
