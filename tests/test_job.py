"""End to end: ``chainsense run`` on a small world stores and verifies every collection event."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from chainsense.errors import ConfigError
from chainsense.job import JobOptions, JobResult, run_job
from chainsense.ledger.batch import read_bundle
from chainsense.ledger.merkle import verify as verify_proof
from chainsense.ledger.records import Domain
from chainsense.sim.params import preset
from chromium import render_dom


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory: pytest.TempPathFactory) -> JobResult:
    out = tmp_path_factory.mktemp("run-batch")
    opts = JobOptions(
        params=preset("small"), policy="greedy", mode="batch", batch_size=64, episodes=2, out=out
    )
    return run_job(opts)


def test_every_collection_event_is_on_chain_and_verifies(batch_run: JobResult) -> None:
    lg = batch_run.ledger
    assert lg.events > 0
    assert lg.records_on_chain == lg.events
    assert lg.verified == lg.events
    assert lg.verify_failures == []
    assert lg.tamper_detected
    assert lg.all_accounted
    assert lg.transactions == -(-lg.events // 64)  # one anchor per batch of 64
    assert sum(lg.per_mt.values()) == lg.events


def test_summary_and_report_are_written(batch_run: JobResult) -> None:
    summary = json.loads(batch_run.files["summary"].read_text())
    assert summary["ledger"]["all_accounted"] is True
    assert summary["ledger"]["records_on_chain"] == batch_run.ledger.events
    assert 0.0 <= summary["episode_metrics"]["data_collection_ratio"] <= 1.0
    assert [r["policy"] for r in summary["comparison"]] == ["greedy", "random"]
    html = batch_run.files["report"].read_text()
    assert 'data-status="PASS"' in html
    assert html.count("<img") >= 4  # map, animation, metrics, ledger


def test_tampered_bundle_record_is_detected(batch_run: JobResult) -> None:
    """Independently of the job's own check: a record edited in its bundle fails its proof."""
    bundle_file = sorted((batch_run.options.out / "ledger").glob("batch-*.json"))[0]
    bundle = read_bundle(bundle_file)
    domain = Domain(chain_id=bundle.chain_id, contract=bundle.contract)
    entry = bundle.entries[0]
    forged = dataclasses.replace(entry.record, reading=entry.record.reading + 1)
    assert verify_proof(bundle.root, entry.record.digest(domain), entry.proof)
    assert not verify_proof(bundle.root, forged.digest(domain), entry.proof)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"policy": "bogus"}, "policy"),
        ({"mode": "stream"}, "mode"),
        ({"batch_size": 0}, "batch_size"),
        ({"episodes": 0}, "episodes"),
        ({"policy": "greedy", "checkpoint": Path("fleet.msgpack")}, "checkpoint"),
        ({"network": Path("net.json"), "rpc": ("http://127.0.0.1:8545",)}, "network"),
    ],
)
def test_bad_options_name_the_field(change: dict, field: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        JobOptions(params=preset("small"), out=tmp_path / "out", **change)
    assert info.value.field == field
    assert not (tmp_path / "out").exists()


def test_cli_bad_mode_exits_2_without_traceback(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "chainsense", "run", "--preset", "small", "--mode", "stream",
         "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2
    assert "mode" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_record_mode_and_report_renders(tmp_path: Path) -> None:
    opts = JobOptions(
        params=preset("small"), policy="random", mode="record", episodes=2, out=tmp_path
    )
    result = run_job(opts)
    lg = result.ledger
    assert lg.records_on_chain == lg.events == lg.transactions == lg.verified
    assert lg.all_accounted
    dom = render_dom(result.files["report"])
    assert 'data-figures-loaded="4"' in dom
    for table in ("summary", "comparison", "ledger", "timing"):
        assert f'id="{table}"' in dom


@pytest.mark.slow
def test_cli_run_against_a_real_anvil_node(tmp_path: Path) -> None:
    """``chainsense run --rpc URL``: the same job on a real JSON-RPC node, per-record mode."""
    from test_ledger_support import Anvil

    node = Anvil().start()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "chainsense", "run", "--preset", "small", "--policy", "greedy",
             "--mode", "record", "--episodes", "2", "--rpc", node.url, "--out", str(tmp_path)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        node.stop()
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    lg = summary["ledger"]
    assert lg["mode"] == "record"
    assert lg["records_on_chain"] == lg["events"] == lg["verified"] > 0
    assert lg["all_accounted"] is True
    assert "JSON-RPC" in out.stdout


def test_unreachable_rpc_node_fails_before_any_work(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "chainsense", "run", "--preset", "small", "--policy", "greedy",
         "--rpc", "http://127.0.0.1:9", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "o").exists()
