"""Consortium networks without starting geth: specs, the orgs of the network file, vote refusals,
and a bundle from elsewhere refused for every kind of hostile content before anything starts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chainsense import devnet as nw
from chainsense.devnet.bundle import validate
from chainsense.devnet.clique import check_change
from chainsense.errors import ChainsenseError, ConfigError
from network_cli import network_cli

SIGNERS = ["0x" + c * 40 for c in "123"]


@pytest.mark.parametrize(
    ("field", "kwargs", "words"),
    [
        ("sealers", {"sealers": 2}, "2 signers"),
        ("orgs", {"orgs": 2}, "2 signers"),
        ("orgs", {"orgs": 17}, "0..16"),
        ("standby", {"standby": 5}, "0..4"),
        ("hosts", {"orgs": 3, "hosts": ("127.0.0.2",)}, "one address per organisation"),
        ("hosts", {"orgs": 1, "hosts": ("example.org",)}, "not an IP address"),
    ],
)
def test_spec_refuses_consortia_that_cannot_progress_or_bind(field, kwargs, words) -> None:
    with pytest.raises(ConfigError, match=words) as err:
        nw.NetworkSpec(**kwargs)
    assert err.value.field == field


def test_a_consortium_has_one_signer_per_org_whatever_sealers_says() -> None:
    assert nw.NetworkSpec(orgs=3, sealers=1).signers == 3
    assert nw.NetworkSpec(sealers=5).signers == 5


def _sealer(name: str, address: str, org: str | None = None) -> nw.NodeInfo:
    return nw.NodeInfo(name, "sealer", "http://127.0.0.1:1", 0, name, address=address, org=org)


def _info(tmp_path: Path) -> nw.NetworkInfo:
    nodes = tuple(_sealer(f"sealer-{i + 1}", a) for i, a in enumerate(SIGNERS))
    return nw.NetworkInfo(tmp_path, 1337, 1, nodes, None, "")


@pytest.mark.parametrize(
    ("current", "address", "add", "words"),
    [
        (SIGNERS, "0x1234", True, "20-byte hex address"),
        (SIGNERS, "1" * 42, True, "20-byte hex address"),
        (SIGNERS, SIGNERS[0].upper().replace("0X", "0x"), True, "already a signer"),
        (SIGNERS, "0x" + "9" * 40, False, "is not a signer"),
        (SIGNERS[:1], SIGNERS[0], False, "last signer"),
        (SIGNERS, SIGNERS[2], False, "2 signers"),
        (SIGNERS[:1], SIGNERS[1], True, "2 signers"),
        # No signer node of this network runs here, so no majority can vote.
        (SIGNERS, "0x" + "9" * 40, True, "more than half"),
    ],
)
def test_votes_that_cannot_pass_or_would_stall_are_refused_with_the_reason(
    tmp_path: Path, current: list[str], address: str, add: bool, words: str
) -> None:
    with pytest.raises(ChainsenseError, match=words):
        check_change(_info(tmp_path), current, address, add)


def test_clique_quorum_is_floor_half_plus_one() -> None:
    assert [nw.quorum(n) for n in (1, 3, 4, 5, 7)] == [1, 2, 3, 3, 4]


def _private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)


def _bundle(tmp_path: Path) -> Path:
    """A well-formed bundle as `network export` writes it (keys are placeholders: join validates
    the layout and permissions before geth ever reads them)."""
    b = tmp_path / "bundle"
    enode = "enode://" + "ab" * 64 + "@127.0.0.3:30303?discport=0"
    node = {
        "name": "org-2-sealer-1", "role": "sealer", "rpc": "http://127.0.0.3:8545",
        "datadir": "org-2/sealer-1", "enode": enode,
        "http_port": 8545, "p2p_port": 30303, "authrpc_port": 8551, "address": SIGNERS[1],
        "host": "127.0.0.3", "org": "org-2",
    }  # fmt: skip
    org = {
        "name": "org-2", "host": "127.0.0.3", "sealers": ["org-2-sealer-1"], "followers": [],
        "ca": {"address": SIGNERS[0], "key_file": "org-2/ca.key", "host": "127.0.0.3",
               "port": 9000},
    }  # fmt: skip
    peers = ["enode://" + "cd" * 64 + "@127.0.0.2:30303?discport=0"]
    _private(b / "org-2/sealer-1/geth/nodekey", "00" * 32)
    _private(b / "org-2/sealer-1/password.txt", "pw\n")
    _private(b / f"org-2/sealer-1/keystore/{SIGNERS[1]}.json", "{}")
    _private(b / "org-2/ca.key", "0x" + "11" * 32)
    genesis = nw.clique_genesis(nw.NetworkSpec(), SIGNERS, [])
    (b / "genesis.json").write_text(json.dumps(genesis))
    net = {"chain_id": 1337, "nodes": [node], "orgs": [org], "static_peers": peers}
    (b / "network.json").write_text(json.dumps(net))
    return b


def _edit(b: Path, change) -> None:  # type: ignore[no-untyped-def]
    data = json.loads((b / "network.json").read_text())
    change(data)
    (b / "network.json").write_text(json.dumps(data))


def test_a_well_formed_bundle_validates(tmp_path: Path) -> None:
    info, peers = validate(_bundle(tmp_path))
    assert info.orgs[0].ca.port == 9000 and info.nodes[0].host == "127.0.0.3"
    assert len(peers) == 1


HOSTILE = {
    "world-readable node key": (
        lambda b: (b / "org-2/sealer-1/geth/nodekey").chmod(0o644),
        "node key nodekey is readable by others",
    ),
    "group-readable CA key": (lambda b: (b / "org-2/ca.key").chmod(0o640), "CA key"),
    "key replaced by a symlink": (
        lambda b: (
            (b / "org-2/sealer-1/password.txt").unlink(),
            os.symlink("/etc/hostname", b / "org-2/sealer-1/password.txt"),
        ),
        "password file",
    ),
    "datadir escaping the bundle": (
        lambda b: _edit(b, lambda d: d["nodes"][0].update(datadir="../../etc")),
        r"nodes\[0\]\.datadir",
    ),
    "CA key outside the bundle": (
        lambda b: _edit(b, lambda d: d["orgs"][0]["ca"].update(key_file="../ca.key")),
        "outside the bundle",
    ),
    "host name instead of an IP": (
        lambda b: _edit(b, lambda d: d["nodes"][0].update(host="evil.example")),
        r"nodes\[0\]\.host",
    ),
    "port out of range": (
        lambda b: _edit(b, lambda d: d["nodes"][0].update(p2p_port=70000)),
        r"nodes\[0\]\.p2p_port",
    ),
    "peer that is not an enode": (
        lambda b: _edit(b, lambda d: d.update(static_peers=["enode://x@h:1 --http.api admin"])),
        r"static_peers\[0\]",
    ),
    "too many peers": (
        lambda b: _edit(b, lambda d: d.update(static_peers=d["static_peers"] * 65)),
        "at most 64",
    ),
    "two organisations": (
        lambda b: _edit(b, lambda d: d.update(orgs=d["orgs"] * 2)),
        "exactly one organisation",
    ),
    "genesis of another chain": (
        lambda b: _edit(b, lambda d: d.update(chain_id=4242)),
        "chainId",
    ),
    "genesis that is not Clique": (
        lambda b: (b / "genesis.json").write_text('{"config": {"chainId": 1337}}'),
        "not a Clique genesis",
    ),
    "oversized genesis": (
        lambda b: (b / "genesis.json").write_text(" " * (2 << 20)),
        "genesis",
    ),
    "oversized network file": (
        lambda b: (b / "network.json").write_text(" " * (2 << 20)),
        "network file",
    ),
    "sealer without an address": (
        lambda b: _edit(b, lambda d: d["nodes"][0].pop("address")),
        "no 0x signer address",
    ),
    "two nodes on one port": (
        lambda b: _edit(b, lambda d: d["nodes"][0].update(p2p_port=8545)),
        "share a data directory or a port",
    ),
    "missing keystore": (
        lambda b: (b / f"org-2/sealer-1/keystore/{SIGNERS[1]}.json").unlink(),
        "exactly one keystore",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_bundles_are_refused_naming_the_problem(tmp_path: Path, case: str) -> None:
    b = _bundle(tmp_path)
    spoil, words = HOSTILE[case]
    spoil(b)
    before = sorted(p.relative_to(b) for p in b.rglob("*"))
    with pytest.raises(ChainsenseError, match=words):
        nw.join(b)
    assert sorted(p.relative_to(b) for p in b.rglob("*")) == before  # nothing written


def test_export_refuses_a_network_without_orgs_and_an_unknown_org(tmp_path: Path) -> None:
    nw.save(_info(tmp_path))
    with pytest.raises(ChainsenseError, match="no organisations"):
        nw.export(tmp_path, "org-1", tmp_path / "out")
    b = _bundle(tmp_path)
    with pytest.raises(ChainsenseError, match="no organisation named 'org-9'"):
        nw.export(b, "org-9", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_refusals_exit_2_naming_the_reason_and_touch_nothing(tmp_path: Path) -> None:
    up = network_cli("up", "--orgs", "2", "--dir", str(tmp_path / "n"))
    assert up.returncode == 2 and "orgs" in up.stderr and "2 signers" in up.stderr
    assert not (tmp_path / "n").exists()
    hosts = network_cli(
        "up", "--orgs", "3", "--hosts", "a.example,b,c", "--dir", str(tmp_path / "n")
    )
    assert hosts.returncode == 2 and "hosts" in hosts.stderr
    assert not (tmp_path / "n").exists()
    neither = network_cli("propose", "0x" + "1" * 40, "--dir", str(tmp_path))
    assert neither.returncode == 2 and "--add or --remove" in neither.stderr
    b = _bundle(tmp_path)
    (b / "org-2/ca.key").chmod(0o644)
    join = network_cli("join", str(b))
    assert join.returncode == 2 and "CA key" in join.stderr and "Traceback" not in join.stderr
    for out in (up, hosts, neither, join):
        assert "Traceback" not in out.stderr


def test_in_a_bundle_only_the_organisations_own_running_signer_can_vote(tmp_path: Path) -> None:
    info = _info(tmp_path)
    bundle = nw.NetworkInfo(tmp_path, 1337, 1, info.nodes[:1], None, "", {"bundle_of": "org-1"})
    with pytest.raises(ChainsenseError, match="no signer of this organisation runs here"):
        check_change(bundle, [*SIGNERS, "0x" + "4" * 40], "0x" + "9" * 40, True)
    with pytest.raises(ChainsenseError, match="2 signers"):  # still refused in a bundle
        check_change(bundle, SIGNERS, SIGNERS[2], False)
    with pytest.raises(ConfigError, match="address"):
        nw.withdraw(tmp_path, "0xnope")
