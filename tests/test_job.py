"""End to end: ``chainsense run`` on a small world stores and verifies every collection event."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from chainsense.chain.keys import KeyPair, save_key
from chainsense.devnet import netfile
from chainsense.errors import ChainsenseError, ConfigError
from chainsense.job.options import JobOptions
from chainsense.job.orgs import organisation_ca_keys
from chainsense.job.run import run_job
from chainsense.job.summary import JobResult
from chainsense.ledger.batch import read_bundle
from chainsense.ledger.config import LedgerConfig
from chainsense.ledger.merkle import verify as verify_proof
from chainsense.ledger.records import Domain
from chainsense.marl.evaluate import evaluate, rollout
from chainsense.marl.policies import GreedyPolicy
from chainsense.sim.params import preset
from chainsense.sim.sites import load_site
from chromium import render_dom


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory: pytest.TempPathFactory) -> JobResult:
    out = tmp_path_factory.mktemp("run-batch")
    opts = JobOptions(
        params=preset("small"),
        policy="greedy",
        ledger=LedgerConfig(mode="batch", batch_size=64),
        episodes=2,
        out=out,
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
        ({"ledger": {"mode": "stream"}}, "mode"),
        ({"ledger": {"batch_size": 0}}, "batch_size"),
        ({"episodes": 0}, "episodes"),
        ({"policy": "greedy", "checkpoint": Path("fleet.msgpack")}, "checkpoint"),
        ({"ledger": {"backend": "rpc", "rpc": ("ftp://x",)}}, "rpc[0]"),
        ({"orgs": 0}, "orgs"),
        ({"orgs": 17}, "orgs"),
        ({"orgs": 2, "ledger": {"threshold": 3}}, "threshold"),
        ({"ledger": {"threshold": 2}}, "threshold"),
    ],
)
def test_bad_options_name_the_field(change: dict, field: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        if "ledger" in change:
            change = {**change, "ledger": LedgerConfig(**change["ledger"])}
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


def test_a_consortium_of_three_organisations_with_k_2(tmp_path: Path) -> None:
    """`run --orgs 3 --threshold 2` on the embedded chain: three real CA services, every record
    countersigned by two of them, and the report shows the CA set, k and the revocations."""
    opts = JobOptions(
        params=preset("small"),
        policy="greedy",
        ledger=LedgerConfig(mode="record", threshold=2),
        episodes=1,
        out=tmp_path,
        orgs=3,
    )
    result = run_job(opts)
    lg = result.ledger
    assert lg.all_accounted and lg.records_on_chain == lg.events > 0
    assert (len(lg.cas), lg.threshold, lg.revoked) == (3, 2, ())
    summary = json.loads(result.files["summary"].read_text())
    assert summary["ledger"]["threshold"] == 2 and len(summary["ledger"]["cas"]) == 3
    html = result.files["report"].read_text()
    assert "2 of 3" in html and all(ca in html for ca in lg.cas) and "revoked MTs" in html


def _consortium_file(directory: Path, keys: list[KeyPair]) -> netfile.NetworkInfo:
    """A network file as ``network up --orgs N`` writes it: one sealer and one CA per org."""
    nodes, orgs = [], []
    for i, key in enumerate(keys):
        save_key(directory / f"ca{i}.key", key)
        nodes.append(netfile.NodeInfo(f"sealer-{i}", "sealer", f"http://127.0.0.1:{8545 + i}"))
        ca = netfile.CaInfo(key.address, f"ca{i}.key", "127.0.0.1", 8600 + i)
        orgs.append(netfile.OrgInfo(f"org-{i}", "127.0.0.1", (f"sealer-{i}",), (), ca))
    info = netfile.NetworkInfo(directory, 1337, 1, tuple(nodes), None, "0x" + "11" * 20)
    info = dataclasses.replace(info, orgs=tuple(orgs))
    netfile.save(info)
    return info


def test_network_file_organisations_bring_their_ca_keys(tmp_path: Path) -> None:
    keys = [KeyPair.derive("net", i, "ca") for i in range(3)]
    info = _consortium_file(tmp_path, keys)
    cfg = LedgerConfig(backend="network", network=str(tmp_path))
    assert organisation_ca_keys(cfg) == keys
    assert organisation_ca_keys(LedgerConfig()) == []
    (tmp_path / "ca1.key").unlink()
    save_key(tmp_path / "ca1.key", keys[0])  # org-1's file now holds org-0's key
    with pytest.raises(ConfigError, match=r"network\.orgs\[1\]\.ca\.key_file: holds"):
        organisation_ca_keys(cfg)
    data = json.loads(info.file.read_text())
    del data["orgs"][0]["ca"]
    info.file.write_text(json.dumps(data))
    with pytest.raises(ChainsenseError, match=r"orgs\[0\] must be an object with a ca object"):
        organisation_ca_keys(cfg)


@pytest.mark.slow
def test_record_mode_and_report_renders(tmp_path: Path) -> None:
    opts = JobOptions(
        params=preset("small"),
        policy="random",
        ledger=LedgerConfig(mode="record"),
        episodes=2,
        out=tmp_path,
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


KILL_AT_ANCHOR = textwrap.dedent(
    """
    import os, signal, sys
    from chainsense.ledger.contract import Ledger

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)  # the certified bundle is on disk, the root is not

    Ledger.anchor_batch = die
    from chainsense.cli import main
    main(sys.argv[1:])
    """
)

COUNT_CERTIFICATIONS = textwrap.dedent(
    """
    import json, sys
    from chainsense.ledger.ca import CertificateAuthority

    certify = CertificateAuthority.countersign_batch

    def counted(self, items, submitter):
        with open(sys.argv[1], "a") as fh:
            fh.write(json.dumps([items[0][0].mt, items[0][0].nonce]) + "\\n")
        return certify(self, items, submitter)

    CertificateAuthority.countersign_batch = counted
    from chainsense.cli import main
    main(sys.argv[2:])
    """
)


@pytest.mark.slow
def test_run_killed_between_bundle_and_anchor_resumes_without_certifying_again(
    tmp_path: Path,
) -> None:
    """``chainsense run`` dies (SIGKILL) right after writing its first certified bundle; the same
    command again anchors that bundle as it is and finishes the run, every record verified."""
    from test_ledger_support import Anvil

    out = tmp_path / "run"
    node = Anvil().start()
    try:
        args = ["run", "--preset", "small", "--policy", "greedy", "--episodes", "1",
                "--batch-size", "64", "--rpc", node.url, "--out", str(out)]  # fmt: skip
        killed = subprocess.run(
            [sys.executable, "-c", KILL_AT_ANCHOR, *args],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        pending = read_bundle(out / "ledger" / "batch-00000.json")
        assert pending.root_id == 0 and pending.size == 64
        log = tmp_path / "certified.jsonl"
        again = subprocess.run(
            [sys.executable, "-c", COUNT_CERTIFICATIONS, str(log), *args],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        node.stop()
    assert again.returncode == 0, again.stderr[-3000:]
    first = pending.entries[0].record
    certified = [tuple(json.loads(line)) for line in log.read_text().splitlines()]
    assert (first.mt, first.nonce) not in certified  # batch 0 was not certified again
    anchored = read_bundle(out / "ledger" / "batch-00000.json")
    assert anchored.root_id == 1
    assert (anchored.root, anchored.ca_signature) == (pending.root, pending.ca_signature)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ledger"]["all_accounted"] is True
    assert summary["ledger"]["records_on_chain"] == summary["ledger"]["events"] > 64


SITE_FILE = Path(__file__).resolve().parents[1] / "examples" / "sites" / "industrial_yard.geojson"


def test_run_on_a_site_plays_the_episode_and_the_comparison_on_its_map(tmp_path: Path) -> None:
    """``chainsense run --map``: the recorded episode and every compared one are on the site."""
    site = load_site(SITE_FILE, preset("small"))
    opts = JobOptions(
        params=site.params,
        policy="greedy",
        ledger=LedgerConfig(mode="batch", batch_size=256),
        episodes=2,
        out=tmp_path / "run",
        site=site,
    )
    result = run_job(opts)
    assert result.ledger.all_accounted and result.ledger.events > 0
    on_site = rollout(GreedyPolicy(), site.params, jax.random.PRNGKey(0), world_map=site.map)
    drawn = rollout(GreedyPolicy(), site.params, jax.random.PRNGKey(0))
    assert result.episode_metrics == pytest.approx(on_site.metrics)
    assert result.episode_metrics != pytest.approx(drawn.metrics)
    expected = evaluate(GreedyPolicy(), site.params, [0, 1], "greedy", site.map)
    for metric, values in expected.per_episode.items():
        np.testing.assert_allclose(result.comparison[0].per_episode[metric], values, rtol=1e-6)


def test_run_options_refuse_params_that_are_not_the_sites(tmp_path: Path) -> None:
    site = load_site(SITE_FILE, preset("small"))
    with pytest.raises(ConfigError) as info:
        JobOptions(params=preset("small"), site=site, out=tmp_path / "out")
    assert info.value.field == "map"
    assert not (tmp_path / "out").exists()


def test_cli_run_refuses_a_bad_site_in_one_line_before_any_work(tmp_path: Path) -> None:
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": []}')
    out = subprocess.run(
        [sys.executable, "-m", "chainsense", "run", "--preset", "small", "--policy", "greedy",
         "--map", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr[-2000:]
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "map.features" in lines[0] and "area" in lines[0], out.stderr
    assert not (tmp_path / "o").exists()
