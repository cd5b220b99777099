"""A new network's shape and birth: the spec, keys, Clique genesis, node configs, ``geth init``."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_keys import keys

from chainsense.devnet.netfile import FAUCET_KEYFILE, NetworkInfo, NodeInfo, Role
from chainsense.devnet.processes import free_ports
from chainsense.errors import ChainsenseError, ConfigError

_PUBLIC_TESTNETS = (5, 11155111, 17000)  # Goerli, Sepolia, Holesky: never reuse their ids


@dataclass(frozen=True)
class NetworkSpec:
    """Shape of a network: how many sealers and followers, block period, chain id, funds."""

    sealers: int = 3
    followers: int = 1
    period: int = 1
    chain_id: int = 1337
    faucet_balance_eth: int = 1_000_000
    # 1,250 records a block at the 240k gas of a stored record (125 at 30M a second would cap
    # the ledger at 125 records/s); the sealers' gas ceiling follows it (devnet.geth)
    gas_limit: int = 300_000_000

    def __post_init__(self) -> None:
        if not 1 <= self.sealers <= 16:
            raise ConfigError("sealers", f"must be in 1..16, got {self.sealers}")
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


def clique_genesis(spec: NetworkSpec, signers: list[str], funded: list[str]) -> dict[str, Any]:
    """A Clique genesis sealed by ``signers`` (London rules: 1.13 Clique refuses Shanghai)."""
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
        "difficulty": "0x1",
        "gasLimit": hex(spec.gas_limit),
        "extradata": extra,
        "alloc": {a.lower().removeprefix("0x"): {"balance": balance} for a in funded},
    }


def enode_url(nodekey: bytes, port: int) -> str:
    pub = keys.PrivateKey(nodekey).public_key.to_hex().removeprefix("0x")
    return f"enode://{pub}@127.0.0.1:{port}?discport=0"


def prepare(directory: Path, spec: NetworkSpec, geth: Path) -> NetworkInfo:
    """Generate keys, genesis and per-node config, then ``geth init`` every data directory."""
    faucet = Account.create()
    write_private(directory / FAUCET_KEYFILE, "0x" + bytes(faucet.key).hex() + "\n")
    names = [f"sealer-{i + 1}" for i in range(spec.sealers)]
    names += [f"follower-{i + 1}" for i in range(spec.followers)]
    ports = free_ports(3 * len(names))
    sealer_accounts = [Account.create() for _ in range(spec.sealers)]
    nodekeys = [secrets.token_bytes(32) for _ in names]
    nodes: list[NodeInfo] = []
    for i, name in enumerate(names):
        http_port, p2p_port, auth_port = ports[3 * i : 3 * i + 3]
        role: Role = "sealer" if i < spec.sealers else "follower"
        nodes.append(
            NodeInfo(
                name=name,
                role=role,
                rpc=f"http://127.0.0.1:{http_port}",
                pid=0,
                datadir=name,
                enode=enode_url(nodekeys[i], p2p_port),
                http_port=http_port,
                p2p_port=p2p_port,
                authrpc_port=auth_port,
                address=sealer_accounts[i].address if role == "sealer" else None,
            )
        )
    signers = [a.address for a in sealer_accounts]
    genesis = clique_genesis(spec, signers, [faucet.address, *signers])
    (directory / "genesis.json").write_text(json.dumps(genesis, indent=2) + "\n", encoding="utf-8")
    for i, node in enumerate(nodes):
        datadir = directory / node.datadir
        (datadir / "geth").mkdir(parents=True)
        write_private(datadir / "geth" / "nodekey", nodekeys[i].hex())
        peers = ", ".join(json.dumps(n.enode) for n in nodes if n.name != node.name)
        (datadir / "config.toml").write_text(
            "[Node.P2P]\n"
            f"MaxPeers = {len(nodes) + 4}\n"
            "NoDiscovery = true\n"
            f'ListenAddr = "127.0.0.1:{node.p2p_port}"\n'
            f"StaticNodes = [{peers}]\n"
            "TrustedNodes = []\n",
            encoding="utf-8",
        )
        if node.role == "sealer":
            account = sealer_accounts[i]
            password = secrets.token_urlsafe(24)
            write_private(datadir / "password.txt", password + "\n")
            (datadir / "keystore").mkdir(mode=0o700)
            # scrypt n=2^14 (geth's "light" strength): these keys guard a loopback test network.
            blob = Account.encrypt(account.key, password, kdf="scrypt", iterations=1 << 14)
            write_private(
                datadir / "keystore" / f"{account.address.lower()}.json", json.dumps(blob)
            )
        out = subprocess.run(
            [str(geth), "--datadir", str(datadir), "init", str(directory / "genesis.json")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0:
            raise ChainsenseError(
                f"network: geth init of {node.name} failed: {out.stderr.strip()[-400:]}"
            )
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
    )
