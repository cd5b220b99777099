"""A new network's shape and birth: the spec, keys, Clique genesis, node configs, ``geth init``."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_keys import keys

from chainsense import jsonlimits
from chainsense.devnet.netfile import (
    FAUCET_KEYFILE,
    CaInfo,
    NetworkInfo,
    NodeInfo,
    OrgInfo,
    Role,
    loopback_or_ip,
)
from chainsense.devnet.processes import free_ports
from chainsense.errors import ChainsenseError, ConfigError

_PUBLIC_TESTNETS = (5, 11155111, 17000)  # Goerli, Sepolia, Holesky: never reuse their ids

# How long after ``geth init`` a new network's first block may be sealed: every node must be up,
# sealing and peered by then. A sealer that seals block 1 before the others accept blocks (geth
# discards propagated blocks until its own miner has started) and before the handshakes carry
# that block's weight leaves each sealer on a block 1 of its own; with 3 signers none may sign
# block 2 on its own block and nothing ever triggers a sync: the network deadlocks at height 1.
STARTUP_GRACE_S = 5.0
STARTUP_GRACE_PER_NODE_S = 1.0


def first_block_not_before(nodes: int, now: float | None = None) -> int:
    """The genesis timestamp (unix s) for ``nodes`` nodes about to be initialised and started;
    Clique seals block 1 no earlier than this plus one period."""
    now = time.time() if now is None else now
    return int(now + STARTUP_GRACE_S + STARTUP_GRACE_PER_NODE_S * nodes)


@dataclass(frozen=True)
class NetworkSpec:
    """Shape of a network: how many sealers and followers, block period, chain id, funds.

    With ``orgs`` > 0 it is a consortium: every organisation runs one sealer (a genesis signer)
    and ``followers`` followers on its own host (``hosts``, default 127.0.0.1 for all) and holds
    a CA key; ``sealers`` is then ignored. ``standby`` sealers run with a key but are not
    signers until the signers vote them in (``devnet.clique``).
    """

    sealers: int = 3
    followers: int = 1
    orgs: int = 0
    standby: int = 0
    hosts: tuple[str, ...] = ()
    period: int = 1
    chain_id: int = 1337
    faucet_balance_eth: int = 1_000_000
    # about 5,000 records a block at the ~58.5k gas of a stored record with one CA (3,900 at
    # 3-of-3's ~77k; geth's default 30M would cap one-second blocks at about 500 records/s);
    # the sealers' gas ceiling follows it (devnet.geth)
    gas_limit: int = 300_000_000

    @property
    def signers(self) -> int:
        """Genesis signers: one per organisation, or ``sealers``."""
        return self.orgs or self.sealers

    def __post_init__(self) -> None:
        if not 1 <= self.sealers <= 16:
            raise ConfigError("sealers", f"must be in 1..16, got {self.sealers}")
        if not 0 <= self.orgs <= 16:
            raise ConfigError("orgs", f"must be in 0..16, got {self.orgs}")
        if self.signers == 2:
            raise ConfigError(
                "orgs" if self.orgs else "sealers",
                "2 signers cannot be relied on to make progress under Clique (each may seal "
                "at most one of every 2 blocks, so one absent sealer or two blocks of one "
                "height halt the chain); use 1 or at least 3",
            )
        if not 0 <= self.standby <= 4:
            raise ConfigError("standby", f"must be in 0..4, got {self.standby}")
        if self.hosts and len(self.hosts) != self.orgs:
            raise ConfigError(
                "hosts", f"needs one address per organisation ({self.orgs}), got {len(self.hosts)}"
            )
        for h in self.hosts:
            try:
                loopback_or_ip(h, "hosts")
            except ChainsenseError as exc:
                raise ConfigError("hosts", f"{h[:40]!r} is not an IP address") from exc
        if not 0 <= self.followers <= 16:
            raise ConfigError("followers", f"must be in 0..16, got {self.followers}")
        # Period 0 would seal only when transactions arrive, so "blocks are being sealed" never
        # holds for an idle network; the paper's chain seals at a fixed rate.
        if not 1 <= self.period <= 60:
            raise ConfigError("period", f"must be in 1..60 seconds, got {self.period}")
        if not 1 < self.chain_id < 2**32 or self.chain_id in _PUBLIC_TESTNETS:
            raise ConfigError(
                "chain_id",
                f"must be a private id in 2..2^32-1 (not a public testnet's: "
                f"{', '.join(map(str, _PUBLIC_TESTNETS))}), got {self.chain_id}",
            )
        if not 1 <= self.faucet_balance_eth <= 10**12:
            raise ConfigError(
                "faucet_balance_eth", f"must be in 1..1e12, got {self.faucet_balance_eth}"
            )
        if not 5_000_000 <= self.gas_limit <= 1_000_000_000:
            raise ConfigError("gas_limit", f"must be in 5e6..1e9, got {self.gas_limit}")


def write_private(path: Path, text: str) -> None:
    """Write a secret file readable by the owner only (created 0600, never world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


#: the largest genesis.json read back (a Clique genesis of any network here is a few kB)
GENESIS_MAX_BYTES = 1 << 20


def read_genesis(directory: Path) -> dict[str, Any]:
    """The genesis.json of the network in ``directory``: read within bounds and checked to be
    an object, the one reader of the fields that `up`, a node's flags and `join` need."""
    path = directory / "genesis.json"
    try:
        genesis = jsonlimits.load_file(path, "genesis", max_bytes=GENESIS_MAX_BYTES)
    except jsonlimits.JSONLimitError as exc:
        raise ChainsenseError(f"genesis: {exc}") from exc
    if not isinstance(genesis, dict):
        raise ChainsenseError(f"genesis: {path.name} is not a JSON object")
    return genesis


def genesis_hex(genesis: dict[str, Any], field: str, default: str | None = None) -> int:
    """The hex quantity ``field`` of a genesis (``default`` where absent), or an error naming it."""
    value = genesis.get(field, default)
    try:
        return int(value, 16)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ChainsenseError(f"genesis: {field} is not a hex quantity ({value!r:.40})") from exc


def first_block_due(directory: Path, now: float | None = None) -> float:
    """Seconds until the network in ``directory`` may seal block 1 (0 once it may): the wait
    for it, which grows with the node count, does not count against a start-up timeout."""
    timestamp = genesis_hex(read_genesis(directory), "timestamp", "0x0")
    now = time.time() if now is None else now
    return max(0.0, timestamp - now)


def clique_genesis(
    spec: NetworkSpec, signers: list[str], funded: list[str], timestamp: int = 0
) -> dict[str, Any]:
    """A Clique genesis sealed by ``signers`` (London rules: 1.13 Clique refuses Shanghai);
    ``timestamp`` holds back block 1 until one period after it (``first_block_not_before``)."""
    extra = "0x" + "00" * 32 + "".join(a.lower().removeprefix("0x") for a in signers) + "00" * 65
    balance = hex(spec.faucet_balance_eth * 10**18)
    return {
        "config": {
            "chainId": spec.chain_id,
            "homesteadBlock": 0,
            "eip150Block": 0,
            "eip155Block": 0,
            "eip158Block": 0,
            "byzantiumBlock": 0,
            "constantinopleBlock": 0,
            "petersburgBlock": 0,
            "istanbulBlock": 0,
            "berlinBlock": 0,
            "londonBlock": 0,
            "clique": {"period": spec.period, "epoch": 30000},
        },
        "timestamp": hex(timestamp),
        "difficulty": "0x1",
        "gasLimit": hex(spec.gas_limit),
        "extradata": extra,
        "alloc": {a.lower().removeprefix("0x"): {"balance": balance} for a in funded},
    }


def enode_url(nodekey: bytes, port: int, host: str = "127.0.0.1") -> str:
    pub = keys.PrivateKey(nodekey).public_key.to_hex().removeprefix("0x")
    return f"enode://{pub}@{host}:{port}?discport=0"


@dataclass(frozen=True)
class _Planned:
    """A node to create: its name, data directory, role, host, organisation, signer or not."""

    name: str
    datadir: str
    role: Role
    host: str = "127.0.0.1"
    org: str | None = None
    signer: bool = False


def _plan(spec: NetworkSpec) -> list[_Planned]:
    if not spec.orgs:
        plan = [_Planned(f"sealer-{i + 1}", f"sealer-{i + 1}", "sealer", signer=True)
                for i in range(spec.sealers)]  # fmt: skip
        plan += [_Planned(f"sealer-{spec.sealers + i + 1}", f"sealer-{spec.sealers + i + 1}",
                          "sealer") for i in range(spec.standby)]  # fmt: skip
        return plan + [_Planned(f"follower-{i + 1}", f"follower-{i + 1}", "follower")
                       for i in range(spec.followers)]  # fmt: skip
    plan = []
    for i in range(spec.orgs):
        org, host = f"org-{i + 1}", spec.hosts[i] if spec.hosts else "127.0.0.1"
        extra = sum(1 for k in range(spec.standby) if k % spec.orgs == i)
        for j in range(1 + extra):
            plan.append(_Planned(f"{org}-sealer-{j + 1}", f"{org}/sealer-{j + 1}", "sealer",
                                 host, org, signer=j == 0))  # fmt: skip
        for j in range(spec.followers):
            plan.append(_Planned(f"{org}-follower-{j + 1}", f"{org}/follower-{j + 1}",
                                 "follower", host, org))  # fmt: skip
    return plan


def _ports(plan: list[_Planned], orgs: int) -> dict[str, Iterator[int]]:
    """Distinct free ports per host: three per node and one per organisation's CA service."""
    need: dict[str, int] = {}
    for p in plan:
        need[p.host] = need.get(p.host, 0) + 3 + (1 if p.signer and orgs else 0)
    return {host: iter(free_ports(n, host)) for host, n in need.items()}


def _orgs(
    directory: Path, spec: NetworkSpec, nodes: list[NodeInfo], ports: dict[str, Iterator[int]]
) -> tuple[OrgInfo, ...]:
    """Each organisation's CA key (0600 in its directory) and its CA service's planned port."""
    orgs = []
    for i in range(spec.orgs):
        name, host = f"org-{i + 1}", spec.hosts[i] if spec.hosts else "127.0.0.1"
        ca = Account.create()
        (directory / name).mkdir(mode=0o700, exist_ok=True)
        write_private(directory / name / "ca.key", "0x" + bytes(ca.key).hex() + "\n")
        mine = [n for n in nodes if n.org == name]
        orgs.append(
            OrgInfo(
                name=name,
                host=host,
                sealers=tuple(n.name for n in mine if n.role == "sealer"),
                followers=tuple(n.name for n in mine if n.role == "follower"),
                ca=CaInfo(ca.address, f"{name}/ca.key", host, next(ports[host])),
            )
        )
    return tuple(orgs)


def write_p2p_config(datadir: Path, node: NodeInfo, peers: list[str], max_peers: int) -> None:
    """The node's ``config.toml``: no discovery, listen on its host, dial ``peers`` (enodes)."""
    (datadir / "config.toml").write_text(
        "[Node.P2P]\n"
        f"MaxPeers = {max_peers}\n"
        "NoDiscovery = true\n"
        f'ListenAddr = "{node.host}:{node.p2p_port}"\n'
        f"StaticNodes = [{', '.join(json.dumps(p) for p in peers)}]\n"
        "TrustedNodes = []\n",
        encoding="utf-8",
    )


def geth_init(geth: Path, datadir: Path, genesis: Path, name: str) -> None:
    out = subprocess.run(
        [str(geth), "--datadir", str(datadir), "init", str(genesis)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0:
        raise ChainsenseError(f"network: geth init of {name} failed: {out.stderr.strip()[-400:]}")


def prepare(directory: Path, spec: NetworkSpec, geth: Path) -> NetworkInfo:
    """Generate keys, genesis and per-node config, then ``geth init`` every data directory."""
    faucet = Account.create()
    write_private(directory / FAUCET_KEYFILE, "0x" + bytes(faucet.key).hex() + "\n")
    plan = _plan(spec)
    accounts = {p.name: Account.create() for p in plan if p.role == "sealer"}
    nodekeys = [secrets.token_bytes(32) for _ in plan]
    nodes: list[NodeInfo] = []
    ports = _ports(plan, spec.orgs)
    for i, p in enumerate(plan):
        http_port, p2p_port, auth_port = (next(ports[p.host]) for _ in range(3))
        nodes.append(
            NodeInfo(
                name=p.name,
                role=p.role,
                rpc=f"http://{p.host}:{http_port}",
                pid=0,
                datadir=p.datadir,
                enode=enode_url(nodekeys[i], p2p_port, p.host),
                http_port=http_port,
                p2p_port=p2p_port,
                authrpc_port=auth_port,
                address=accounts[p.name].address if p.name in accounts else None,
                host=p.host,
                org=p.org,
            )
        )
    orgs = _orgs(directory, spec, nodes, ports)
    for i, node in enumerate(nodes):
        datadir = directory / node.datadir
        (datadir / "geth").mkdir(parents=True)
        write_private(datadir / "geth" / "nodekey", nodekeys[i].hex())
        peers = [n.enode for n in nodes if n.name != node.name]
        write_p2p_config(datadir, node, peers, len(nodes) + 4)
        if node.role == "sealer":
            account = accounts[node.name]
            password = secrets.token_urlsafe(24)
            write_private(datadir / "password.txt", password + "\n")
            (datadir / "keystore").mkdir(mode=0o700)
            # scrypt n=2^14 (geth's "light" strength): these keys guard a loopback test network.
            blob = Account.encrypt(account.key, password, kdf="scrypt", iterations=1 << 14)
            write_private(
                datadir / "keystore" / f"{account.address.lower()}.json", json.dumps(blob)
            )
    # The genesis last, just before `geth init` and the start: its timestamp holds block 1 back
    # until every node can be up (STARTUP_GRACE_S).
    signers = [accounts[p.name].address for p in plan if p.signer]
    genesis = clique_genesis(
        spec, signers, [faucet.address, *signers], first_block_not_before(len(nodes))
    )
    (directory / "genesis.json").write_text(json.dumps(genesis, indent=2) + "\n", encoding="utf-8")
    for node in nodes:
        geth_init(geth, directory / node.datadir, directory / "genesis.json", node.name)
    return NetworkInfo(
        directory=directory,
        chain_id=spec.chain_id,
        period=spec.period,
        nodes=tuple(nodes),
        faucet_keyfile=directory / FAUCET_KEYFILE,
        faucet_address=faucet.address,
        # Hints for clients: Clique headers carry 97 bytes of extraData (web3.py needs its
        # ExtraDataToPOAMiddleware), and 1.13 Clique stops at London rules, so contracts must be
        # compiled for an EVM without PUSH0 (Vyper/solc evm_version "paris" or older).
        extra={"geth": "v1.13.15", "sealers": signers, "poa": True, "evm_version": "paris"},
        orgs=orgs,
    )
