"""The deployment file: where a ledger contract lives and how to reach its chain.

Written by ``chainsense ledger deploy`` and read by the other ledger / CA commands, so that
they need only ``--deployment ledger.json``::

    {"chain_id": int, "contract": "0x..", "ca": "0x..", "admin": "0x..", "block": int,
     "rpc": ["http://127.0.0.1:8545", ...], "network": "runs/network" | null}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from chainsense.errors import ChainsenseError
from chainsense.ledger.chain import Chain, RpcChain, chain_from_network_file
from chainsense.ledger.keys import KeyPair, checksum


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    contract: str
    ca: str
    admin: str
    block: int
    rpc: tuple[str, ...] = ()
    network: str | None = None

    def write(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        data = asdict(self) | {"rpc": list(self.rpc)}
        p.write_text(json.dumps(data, indent=1) + "\n")
        return p

    @classmethod
    def read(cls, path: str | Path) -> Deployment:
        p = Path(path)
        if not p.is_file():
            raise ChainsenseError(
                f"deployment: file not found: {p} (run `chainsense ledger deploy`)"
            )
        try:
            data = json.loads(p.read_text())
            dep = cls(
                chain_id=int(data["chain_id"]),
                contract=checksum(data["contract"], "deployment.contract"),
                ca=checksum(data["ca"], "deployment.ca"),
                admin=checksum(data["admin"], "deployment.admin"),
                block=int(data["block"]),
                rpc=tuple(str(u) for u in data.get("rpc", [])),
                network=data.get("network"),
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ChainsenseError(f"deployment: {p.name} is malformed: {exc}") from exc
        if not dep.rpc and not dep.network:
            raise ChainsenseError("deployment: names neither rpc endpoints nor a network")
        return dep


def open_chain(
    rpc: list[str] | None, network: str | Path | None, *, timeout: float = 5.0
) -> tuple[Chain, KeyPair | None]:
    """The chain named on the command line: ``--network DIR`` or ``--rpc URL`` (repeatable)."""
    if network is not None and rpc:
        raise ChainsenseError("chain: give --network or --rpc, not both")
    if network is not None:
        return chain_from_network_file(network, timeout=timeout)
    if rpc:
        return RpcChain(rpc, timeout=timeout), None
    raise ChainsenseError(
        "chain: give --network DIR or --rpc URL (the embedded chain lives "
        "only inside one process: use `chainsense ledger demo` for it)"
    )


def chain_of(dep: Deployment, *, timeout: float = 5.0) -> tuple[Chain, KeyPair | None]:
    """Reconnect to a deployment's chain and check it is the same chain."""
    chain, faucet = open_chain(
        list(dep.rpc) or None, None if dep.rpc else dep.network, timeout=timeout
    )
    if chain.chain_id != dep.chain_id:
        raise ChainsenseError(
            f"deployment: chain id {dep.chain_id} but the node reports {chain.chain_id}"
        )
    return chain, faucet
