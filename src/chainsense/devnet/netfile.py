"""The network file, ``<dir>/network.json``: the one description of a local network.

Written by ``chainsense network up`` and read by everything else: the launcher (pids, ports,
data directories), ``network status``, and the ledger client, which needs only the chain id, each
node's JSON-RPC URL and role, and the faucet key::

    {"chain_id": int, "period": int,
     "nodes": [{"name", "role": "sealer"|"follower", "rpc", "pid", "datadir", ...}],
     "faucet": {"keyfile": "faucet.key", "address": "0x..."}}

Paths in the file are relative to its directory, so a network directory can be moved while down.
Only ``chain_id`` and each node's ``rpc`` are required, so a file written by hand can describe
nodes started some other way.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from chainsense import jsonlimits
from chainsense.errors import ChainsenseError
from chainsense.files import atomic_write

NETWORK_FILE = "network.json"
FAUCET_KEYFILE = "faucet.key"
Role = Literal["sealer", "follower"]
_MAX_BYTES = 1 << 20  # a network of 32 nodes is a few kB


@dataclass(frozen=True)
class NodeInfo:
    """One node as recorded in the network file (paths relative to the network directory)."""

    name: str
    role: Role
    rpc: str
    pid: int = 0
    datadir: str = ""
    enode: str = ""
    http_port: int = 0
    p2p_port: int = 0
    authrpc_port: int = 0
    address: str | None = None  # signer address of a sealer

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class NetworkInfo:
    """The whole network: where it lives, its chain id, its nodes and the faucet key file."""

    directory: Path
    chain_id: int
    period: int
    nodes: tuple[NodeInfo, ...]
    faucet_keyfile: Path | None
    faucet_address: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def file(self) -> Path:
        return self.directory / NETWORK_FILE

    @property
    def sealers(self) -> int:
        return sum(1 for n in self.nodes if n.role == "sealer")

    def node(self, name: str) -> NodeInfo:
        for n in self.nodes:
            if n.name == name:
                return n
        raise ChainsenseError(f"node: no node named {name!r} (have {[n.name for n in self.nodes]})")

    def endpoints(self, role: Role | None = None) -> list[str]:
        return [n.rpc for n in self.nodes if role is None or n.role == role]


def network_file(directory: str | Path) -> Path:
    """The network file of a network directory (or the file itself)."""
    p = Path(directory)
    return p if p.name == NETWORK_FILE else p / NETWORK_FILE


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ChainsenseError(f"network file: {where} must be an integer, got {value!r}")
    return value


def _node(raw: Any, i: int) -> NodeInfo:
    where = f"nodes[{i}]"
    if not isinstance(raw, dict):
        raise ChainsenseError(f"network file: {where} must be an object")
    rpc = raw.get("rpc")
    if not isinstance(rpc, str) or not rpc.startswith(("http://", "https://")):
        raise ChainsenseError(f"network file: {where}.rpc must be an http(s) URL")
    role = raw.get("role", "follower")
    if role not in ("sealer", "follower"):
        raise ChainsenseError(f"network file: {where}.role must be sealer or follower")
    name = raw.get("name", rpc)
    address = raw.get("address")
    if not isinstance(name, str) or not (address is None or isinstance(address, str)):
        raise ChainsenseError(f"network file: {where}.name and .address must be strings")
    ints = {
        k: _int(raw[k], f"{where}.{k}")
        for k in ("pid", "http_port", "p2p_port", "authrpc_port")
        if k in raw
    }
    texts = {k: str(raw[k]) for k in ("datadir", "enode") if k in raw}
    return NodeInfo(name=name, role=role, rpc=rpc, address=address, **ints, **texts)


def load(directory: str | Path) -> NetworkInfo:
    """Read and validate the network file of ``directory`` (or the file itself).

    Every refusal is one :class:`ChainsenseError` naming the field that is wrong.
    """
    path = network_file(directory)
    if not path.is_file():
        raise ChainsenseError(
            f"network: no {NETWORK_FILE} in {path.parent} (run `chainsense network up`)"
        )
    try:
        data = jsonlimits.load_file(path, "network file", max_bytes=_MAX_BYTES)
    except jsonlimits.JSONLimitError as exc:
        if exc.code == "too_large":
            raise
        raise ChainsenseError(f"network file: {path.name} is not JSON: {exc.detail}") from exc
    if not isinstance(data, dict):
        raise ChainsenseError("network file: must hold a JSON object")
    chain_id = _int(data.get("chain_id"), "chain_id")
    period = _int(data.get("period", 1), "period")
    nodes_raw = data.get("nodes")
    if not isinstance(nodes_raw, list) or not nodes_raw:
        raise ChainsenseError("network file: nodes must be a non-empty list")
    nodes = tuple(_node(n, i) for i, n in enumerate(nodes_raw))
    faucet = data.get("faucet", {})
    if not isinstance(faucet, dict):
        raise ChainsenseError("network file: faucet must be an object")
    keyfile = faucet.get("keyfile")
    if keyfile is not None and not isinstance(keyfile, str):
        raise ChainsenseError("network file: faucet.keyfile must be a file name")
    base = path.parent.resolve()
    return NetworkInfo(
        directory=base,
        chain_id=chain_id,
        period=period,
        nodes=nodes,
        faucet_keyfile=base / keyfile if keyfile else None,
        faucet_address=str(faucet.get("address", "")),
        extra={k: v for k, v in data.items() if k not in ("chain_id", "period", "nodes", "faucet")},
    )


def save(info: NetworkInfo) -> None:
    """Write the network file atomically (readers never see half a file)."""
    data: dict[str, Any] = {
        "chain_id": info.chain_id,
        "period": info.period,
        "nodes": [n.to_json() for n in info.nodes],
        "faucet": {
            "keyfile": (
                os.path.relpath(info.faucet_keyfile, info.directory)
                if info.faucet_keyfile
                else None
            ),
            "address": info.faucet_address,
        },
        **info.extra,
    }
    atomic_write(info.file, json.dumps(data, indent=2) + "\n")
