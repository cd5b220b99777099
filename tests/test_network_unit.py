"""Network layer without starting geth: specs, genesis, the network file, refusal of bad input."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chainsense import devnet as nw
from chainsense.devnet import processes
from chainsense.devnet.genesis import (
    STARTUP_GRACE_PER_NODE_S,
    STARTUP_GRACE_S,
    first_block_due,
    first_block_not_before,
)
from chainsense.devnet.geth import genesis_gas_limit, node_argv
from chainsense.errors import ChainsenseError, ConfigError


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("sealers", {"sealers": 0}),
        ("sealers", {"sealers": 17}),
        ("followers", {"followers": -1}),
        ("period", {"period": 0}),
        ("chain_id", {"chain_id": 1}),  # mainnet: never
        ("chain_id", {"chain_id": 11155111}),
        ("chain_id", {"chain_id": 2**40}),
        ("gas_limit", {"gas_limit": 10}),
    ],
)
def test_spec_rejects_bad_values_naming_the_field(field, kwargs) -> None:
    with pytest.raises(ConfigError) as err:
        nw.NetworkSpec(**kwargs)
    assert err.value.field == field


def test_clique_genesis_lists_signers_in_extradata_and_funds_accounts() -> None:
    signers = ["0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20]
    g = nw.clique_genesis(nw.NetworkSpec(period=2, chain_id=4242), signers, ["0x" + "aa" * 20])
    extra = bytes.fromhex(g["extradata"][2:])
    assert len(extra) == 32 + 20 * 3 + 65
    assert extra[32 : 32 + 60] == bytes.fromhex("11" * 20 + "22" * 20 + "33" * 20)
    assert g["config"]["clique"]["period"] == 2
    assert g["config"]["chainId"] == 4242
    # 1.13 Clique refuses Shanghai/Cancun: the genesis must stop at London.
    assert "shanghaiTime" not in g["config"] and "cancunTime" not in g["config"]
    assert int(g["alloc"]["aa" * 20]["balance"], 16) == 1_000_000 * 10**18


def test_genesis_holds_the_first_block_back_until_every_node_can_be_up() -> None:
    # Clique seals block 1 no earlier than one period after the genesis timestamp: the grace
    # must cover `geth init` and the start of every node, so it grows with the node count.
    now = 1_800_000_000.0
    four, twelve = first_block_not_before(4, now), first_block_not_before(12, now)
    assert four >= now + STARTUP_GRACE_S + 4 * STARTUP_GRACE_PER_NODE_S - 1
    assert twelve - four == pytest.approx(8 * STARTUP_GRACE_PER_NODE_S, abs=1)
    assert first_block_not_before(4) > time.time()
    g = nw.clique_genesis(nw.NetworkSpec(), ["0x" + "11" * 20], [], timestamp=four)
    assert int(g["timestamp"], 16) == four


def test_the_wait_for_block_1_does_not_count_against_the_start_timeout(tmp_path: Path) -> None:
    # `up` waits its timeout from the moment block 1 is due, so a many-node hold cannot eat it
    g = nw.clique_genesis(nw.NetworkSpec(), ["0x" + "11" * 20], [], timestamp=1_800_000_040)
    (tmp_path / "genesis.json").write_text(json.dumps(g), encoding="utf-8")
    assert first_block_due(tmp_path, now=1_800_000_000.0) == 40.0
    assert first_block_due(tmp_path, now=1_800_000_100.0) == 0.0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[1, 2]", "not a JSON object"),
        ("{", "malformed"),
        (" " * (2 << 20), "larger than"),
        ('{"timestamp": "soon"}', "timestamp is not a hex quantity"),
        ('{"timestamp": 12}', "timestamp is not a hex quantity"),
    ],
)
def test_a_bad_genesis_is_refused_naming_what_is_wrong(tmp_path: Path, text: str, needle) -> None:
    (tmp_path / "genesis.json").write_text(text, encoding="utf-8")
    with pytest.raises(ChainsenseError, match=needle):
        first_block_due(tmp_path)


def test_a_node_takes_its_gas_ceiling_from_the_genesis_reader(tmp_path: Path) -> None:
    g = nw.clique_genesis(nw.NetworkSpec(), ["0x" + "11" * 20], [], timestamp=1_800_000_040)
    (tmp_path / "genesis.json").write_text(json.dumps(g), encoding="utf-8")
    assert genesis_gas_limit(tmp_path) == int(g["gasLimit"], 16)
    del g["gasLimit"]
    (tmp_path / "genesis.json").write_text(json.dumps(g), encoding="utf-8")
    with pytest.raises(ChainsenseError, match="gasLimit"):
        genesis_gas_limit(tmp_path)


def test_free_ports_are_distinct_bindable_and_no_outgoing_connection_can_take_them() -> None:
    ports = nw.free_ports(12)
    assert len(set(ports)) == 12
    low, _ = processes.ephemeral_range()
    assert all(20_000 <= p < low for p in ports)  # above Ray's workers, below outgoing ones
    socks = []
    try:
        for p in ports:  # every one binds
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", p))
    finally:
        for s in socks:
            s.close()


def test_free_ports_fall_back_to_the_kernels_where_the_range_leaves_too_few(monkeypatch) -> None:
    monkeypatch.setattr(processes, "ephemeral_range", lambda: (20_010, 60_999))
    ports = nw.free_ports(3)
    assert len(set(ports)) == 3
    assert all(p >= 1024 for p in ports)


def _node(name: str, role: str = "sealer") -> nw.NodeInfo:
    return nw.NodeInfo(name, role, "http://127.0.0.1:1", 0, name, "enode://x", 1, 2, 3)  # type: ignore[arg-type]


def test_network_file_roundtrip_keeps_relative_paths(tmp_path: Path) -> None:
    info = nw.NetworkInfo(
        directory=tmp_path,
        chain_id=99,
        period=1,
        nodes=(_node("sealer-1"), _node("follower-1", "follower")),
        faucet_keyfile=tmp_path / "faucet.key",
        faucet_address="0x" + "ab" * 20,
        extra={"poa": True},
    )
    nw.save(info)
    raw = json.loads((tmp_path / "network.json").read_text())
    assert raw["faucet"]["keyfile"] == "faucet.key"
    assert raw["nodes"][1]["role"] == "follower" and raw["nodes"][0]["datadir"] == "sealer-1"
    back = nw.load(tmp_path)
    assert back.nodes == info.nodes and back.chain_id == 99 and back.extra["poa"] is True
    assert back.endpoints("follower") == ["http://127.0.0.1:1"]
    with pytest.raises(ChainsenseError, match="no node named"):
        back.node("sealer-9")


@pytest.mark.parametrize(
    "content", ["{", "[]", '{"chain_id": 1}', '{"chain_id": 1, "nodes": [], "faucet": {}}']
)
def test_load_rejects_malformed_files(tmp_path: Path, content: str) -> None:
    (tmp_path / "network.json").write_text(content)
    with pytest.raises(ChainsenseError):
        nw.load(tmp_path)


def test_load_missing_directory_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ChainsenseError, match="network up"):
        nw.load(tmp_path / "nope")


def test_up_refuses_a_non_empty_directory_and_leaves_it_alone(tmp_path: Path) -> None:
    if not nw.geth_available():
        pytest.skip("geth not installed")
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(ChainsenseError, match="not empty"):
        nw.up(tmp_path, nw.NetworkSpec())
    assert [p.name for p in tmp_path.iterdir()] == ["precious.txt"]


def test_pid_alive_refuses_a_pid_that_is_not_the_node(tmp_path: Path) -> None:
    assert nw.pid_alive(os.getpid())
    # Our own pid is alive but is not a geth running on that datadir: never signal it.
    assert not nw.pid_alive(os.getpid(), tmp_path / "sealer-1")
    assert not nw.pid_alive(0)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not nw.pid_alive(proc.pid)


def test_find_geth_rejects_a_wrong_binary(tmp_path: Path) -> None:
    fake = tmp_path / "geth"
    fake.write_text("#!/bin/sh\necho 'Version: 1.14.0-stable'\n")
    fake.chmod(0o755)
    with pytest.raises(ChainsenseError, match=r"1\.13"):
        nw.find_geth(fake)
    with pytest.raises(ChainsenseError, match="not found"):
        nw.find_geth(tmp_path / "missing")


def test_cli_status_on_missing_network_exits_2(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "chainsense", "network", "status", "--dir", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "network up" in out.stderr and "Traceback" not in out.stderr


def test_cli_up_rejects_bad_sealers_before_starting_anything(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "chainsense", "network", "up", "--dir", str(tmp_path / "n"),
         "--sealers", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert out.returncode == 2 and "sealers" in out.stderr
    assert not (tmp_path / "n").exists()


def test_network_file_reader_refuses_binary_garbage(tmp_path: Path) -> None:
    (tmp_path / "network.json").write_bytes(b"\xff\xfe\x00 not text")
    with pytest.raises(ChainsenseError, match=r"network file: network\.json is not JSON"):
        nw.load(tmp_path)


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ('{"chain_id": "1", "nodes": [{"rpc": "http://127.0.0.1:1"}]}', "chain_id"),
        ('{"chain_id": 1, "nodes": [{"rpc": "ftp://x"}]}', r"nodes\[0\]\.rpc"),
        ('{"chain_id": 1, "nodes": [{"rpc": "http://a", "role": "miner"}]}', r"nodes\[0\]\.role"),
        ('{"chain_id": 1, "nodes": [{"rpc": "http://a", "pid": "7"}]}', r"nodes\[0\]\.pid"),
        ('{"chain_id": 1, "nodes": [{"rpc": "http://a"}], "faucet": []}', "faucet"),
    ],
)
def test_network_file_reader_names_the_bad_field(tmp_path: Path, content: str, field: str) -> None:
    (tmp_path / "network.json").write_text(content)
    with pytest.raises(ChainsenseError, match=field):
        nw.load(tmp_path)


def test_a_hand_written_network_file_needs_only_chain_id_and_rpc(tmp_path: Path) -> None:
    (tmp_path / "network.json").write_text(
        '{"chain_id": 7, "nodes": [{"rpc": "http://127.0.0.1:1", "role": "sealer"}]}'
    )
    info = nw.load(tmp_path)
    assert info.chain_id == 7 and info.sealers == 1 and info.faucet_keyfile is None


def test_sealers_keep_the_genesis_gas_limit_and_every_node_a_large_pool(tmp_path: Path) -> None:
    genesis = nw.clique_genesis(nw.NetworkSpec(gas_limit=250_000_000), ["0x" + "11" * 20], [])
    (tmp_path / "genesis.json").write_text(json.dumps(genesis))
    sealer = _node("sealer-1", "sealer")
    sealer = nw.NodeInfo(**{**sealer.__dict__, "address": "0x" + "11" * 20})
    argv = node_argv(Path("geth"), tmp_path, sealer, 1337)
    assert argv[argv.index("--miner.gaslimit") + 1] == "250000000"
    follower = node_argv(Path("geth"), tmp_path, _node("follower-1", "follower"), 1337)
    assert "--miner.gaslimit" not in follower
    for flags in (argv, follower):
        assert flags[flags.index("--txpool.globalslots") + 1] == "32768"
    (tmp_path / "genesis.json").write_text(json.dumps({"gasLimit": 7}))
    with pytest.raises(ChainsenseError, match="gasLimit"):
        node_argv(Path("geth"), tmp_path, sealer, 1337)
