"""The network file, ``<dir>/network.json``: the one description of a local network.

Written by ``chainsense network up`` and read by everything else: the launcher (pids, ports,
data directories), ``network status``, and the ledger client, which needs only the chain id, each
node's JSON-RPC URL and role, and the faucet key::

    {"chain_id": int, "period": int,
     "nodes": [{"name", "role": "sealer"|"follower", "rpc", "pid", "datadir", "host", ...}],
     "faucet": {"keyfile": "faucet.key", "address": "0x..."},
     "orgs": [{"name": "org-1", "host": "127.0.0.2", "sealers": [...], "followers": [...],
               "ca": {"address": "0x...", "key_file": "org-1/ca.key", "host", "port"}}]}

``orgs`` is present only for a consortium (``network up --orgs N``): each organisation runs its
own node(s) on its own host and holds its own certificate-authority key, whose service is
planned at ``ca.host:ca.port`` (the ledger layer deploys the contract with these addresses).

Paths in the file are relative to its directory, so a network directory can be moved while down.
Only ``chain_id`` and each node's ``rpc`` are required, so a file written by hand can describe
nodes started some other way.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
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
_MAX_ORGS = 16
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


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
    address: str | None = None  # signer address of a sealer (a genesis signer or a standby one)
    host: str = "127.0.0.1"  # the address its p2p and HTTP listeners bind to
    org: str | None = None  # the organisation running it (consortium networks only)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class CaInfo:
    """An organisation's certificate authority: its key's address, key file and planned service."""

    address: str
    key_file: str  # relative to the network directory, mode 0600
    host: str
    port: int

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class OrgInfo:
    """One organisation of a consortium: its host, its nodes (by name) and its CA."""

    name: str
    host: str
    sealers: tuple[str, ...]
    followers: tuple[str, ...]
    ca: CaInfo

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "sealers": list(self.sealers),
            "followers": list(self.followers),
            "ca": self.ca.to_json(),
        }


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
    orgs: tuple[OrgInfo, ...] = ()

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

    def org(self, name: str) -> OrgInfo:
        for o in self.orgs:
            if o.name == name:
                return o
        raise ChainsenseError(f"org: no organisation named {name!r} (have {self.org_names()})")

    def org_names(self) -> list[str]:
        return [o.name for o in self.orgs]


def network_file(directory: str | Path) -> Path:
    """The network file of a network directory (or the file itself)."""
    p = Path(directory)
    return p if p.name == NETWORK_FILE else p / NETWORK_FILE


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ChainsenseError(f"network file: {where} must be an integer, got {value!r}")
    return value


def loopback_or_ip(value: Any, where: str) -> str:
    """An IP address literal (a host name would need DNS, which a bundle must not depend on)."""
    try:
        return str(ipaddress.ip_address(value if isinstance(value, str) else ""))
    except ValueError:
        raise ChainsenseError(
            f"network file: {where} must be an IP address, got {str(value)[:40]!r}"
        ) from None


def _port(value: Any, where: str) -> int:
    port = _int(value, where)
    if not 0 <= port < 65536:
        raise ChainsenseError(f"network file: {where} must be a TCP port, got {port}")
    return port


def _names(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or len(raw) > 64 or not all(isinstance(x, str) for x in raw):
        raise ChainsenseError(f"network file: {where} must be a list of node names")
    return tuple(raw)


def _org(raw: Any, i: int, node_names: set[str]) -> OrgInfo:
    where = f"orgs[{i}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("ca"), dict):
        raise ChainsenseError(f"network file: {where} must be an object with a ca object")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ChainsenseError(f"network file: {where}.name must match {_NAME.pattern}")
    sealers = _names(raw.get("sealers", []), f"{where}.sealers")
    followers = _names(raw.get("followers", []), f"{where}.followers")
    unknown = sorted(set(sealers + followers) - node_names)
    if unknown:
        raise ChainsenseError(f"network file: {where} names unknown nodes {unknown[:4]}")
    ca = raw["ca"]
    address, key_file = ca.get("address"), ca.get("key_file")
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        raise ChainsenseError(f"network file: {where}.ca.address must be a 0x address")
    if not isinstance(key_file, str) or not key_file or len(key_file) > 200:
        raise ChainsenseError(f"network file: {where}.ca.key_file must be a file name")
    return OrgInfo(
        name=name,
        host=loopback_or_ip(raw.get("host"), f"{where}.host"),
        sealers=sealers,
        followers=followers,
        ca=CaInfo(
            address=address,
            key_file=key_file,
            host=loopback_or_ip(ca.get("host"), f"{where}.ca.host"),
            port=_port(ca.get("port"), f"{where}.ca.port"),
        ),
    )


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
    address, org = raw.get("address"), raw.get("org")
    optional = (address, org)
    if not isinstance(name, str) or not all(x is None or isinstance(x, str) for x in optional):
        raise ChainsenseError(f"network file: {where}.name, .address and .org must be strings")
    host = loopback_or_ip(raw["host"], f"{where}.host") if "host" in raw else "127.0.0.1"
    ints = {
        k: (_int if k == "pid" else _port)(raw[k], f"{where}.{k}")
        for k in ("pid", "http_port", "p2p_port", "authrpc_port")
        if k in raw
    }
    texts = {k: str(raw[k])[:1000] for k in ("datadir", "enode") if k in raw}
    datadir = Path(texts.get("datadir", ""))
    if datadir.is_absolute() or ".." in datadir.parts:
        raise ChainsenseError(f"network file: {where}.datadir must be a path inside the network")
    return NodeInfo(
        name=name, role=role, rpc=rpc, address=address, host=host, org=org, **ints, **texts
    )


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
    orgs_raw = data.get("orgs", [])
    if not isinstance(orgs_raw, list) or len(orgs_raw) > _MAX_ORGS:
        raise ChainsenseError(f"network file: orgs must be a list of at most {_MAX_ORGS}")
    names = {n.name for n in nodes}
    orgs = tuple(_org(o, i, names) for i, o in enumerate(orgs_raw))
    base = path.parent.resolve()
    return NetworkInfo(
        directory=base,
        chain_id=chain_id,
        period=period,
        nodes=nodes,
        faucet_keyfile=base / keyfile if keyfile else None,
        faucet_address=str(faucet.get("address", "")),
        extra={k: v for k, v in data.items() if k not in _OWN_KEYS},
        orgs=orgs,
    )


_OWN_KEYS = ("chain_id", "period", "nodes", "faucet", "orgs")


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
    if info.orgs:
        data["orgs"] = [o.to_json() for o in info.orgs]
    atomic_write(info.file, json.dumps(data, indent=2) + "\n")
