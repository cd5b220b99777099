"""The deployment file: where a ledger contract lives and how to reach its chain.

Written by ``chainsense ledger deploy`` and read by the other ledger / CA commands, so that
they need only ``--deployment ledger.json``::

    {"chain_id": int, "contract": "0x..", "cas": ["0x..", ...], "threshold": int, "block": int,
     "rpc": ["http://127.0.0.1:8545", ...], "network": "runs/network" | null}

``cas`` and ``threshold`` are the CA set and k at deployment (governance may change them later:
the contract's ``cas``/``threshold`` views are authoritative). A file of the single-CA format
(``"ca": "0x.."``) reads as that one CA with k = 1.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from chainsense import jsonlimits
from chainsense.chain.base import Chain
from chainsense.chain.keys import KeyPair, checksum
from chainsense.errors import ChainsenseError
from chainsense.files import atomic_write
from chainsense.ledger.config import LedgerConfig, open_chain
from chainsense.ledger.consortium import CASet, ca_set_arguments
from chainsense.ledger.contract import Ledger

_MAX_BYTES = 1 << 16


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    contract: str
    cas: tuple[str, ...]
    threshold: int
    block: int
    rpc: tuple[str, ...] = ()
    network: str | None = None

    @classmethod
    def of(
        cls, ledger: Ledger, *, rpc: tuple[str, ...] = (), network: str | None = None
    ) -> Deployment:
        """The file of a ledger this process just deployed: its CA set and k as the contract
        holds them, and how to reach its chain again."""
        if ledger.deploy_result is None:
            raise ChainsenseError(f"deployment: {ledger.address} was not deployed here")
        ca_set = ledger.ca_set()
        return cls(
            chain_id=ledger.chain.chain_id,
            contract=ledger.address,
            cas=ca_set.cas,
            threshold=ca_set.threshold,
            block=ledger.deploy_result.block,
            rpc=rpc,
            network=network,
        )

    def write(self, path: str | Path) -> Path:
        """Write the file atomically (a crash never leaves a half-written deployment)."""
        data = asdict(self) | {"rpc": list(self.rpc), "cas": list(self.cas)}
        return atomic_write(path, json.dumps(data, indent=1) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> Deployment:
        p = Path(path)
        if not p.is_file():
            raise ChainsenseError(
                f"deployment: file not found: {p} (run `chainsense ledger deploy`)"
            )
        try:
            data = jsonlimits.load_file(p, "deployment", max_bytes=_MAX_BYTES)
            cas = data["cas"] if "cas" in data else [data["ca"]]
            if not isinstance(cas, list):
                raise ChainsenseError("deployment.cas: must be a list of addresses")
            threshold = _threshold(data.get("threshold", 1))
            addresses = [checksum(a, f"deployment.cas[{i}]") for i, a in enumerate(cas)]
            try:
                ordered = ca_set_arguments(addresses, threshold)
            except ChainsenseError as exc:
                raise ChainsenseError(f"deployment.{exc}") from exc
            dep = cls(
                chain_id=int(data["chain_id"]),
                contract=checksum(data["contract"], "deployment.contract"),
                cas=tuple(ordered),
                threshold=threshold,
                block=int(data["block"]),
                rpc=tuple(str(u) for u in data.get("rpc", [])),
                network=data.get("network"),
            )
        except jsonlimits.JSONLimitError:
            raise  # names the file and what is wrong with it
        except (KeyError, TypeError, ValueError) as exc:
            raise ChainsenseError(f"deployment: {p.name} is malformed: {exc}") from exc
        if not dep.rpc and not dep.network:
            raise ChainsenseError("deployment: names neither rpc endpoints nor a network")
        return dep

    @property
    def ca_set(self) -> CASet:
        return CASet(self.cas, self.threshold)

    @property
    def ledger_config(self) -> LedgerConfig:
        """The chain this deployment was made on, as a ledger config."""
        return LedgerConfig().with_chain(self.rpc, None if self.rpc else self.network)


def _threshold(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ChainsenseError(f"deployment.threshold: must be an integer, got {value!r:.40}")
    return value


def external_chain(cfg: LedgerConfig) -> tuple[Chain, KeyPair | None]:
    """The chain of a ledger command that outlives one process: ``--network`` or ``--rpc``."""
    if cfg.backend == "embedded":
        raise ChainsenseError(
            "chain: give --network DIR or --rpc URL (the embedded chain lives "
            "only inside one process: use `chainsense ledger demo` for it)"
        )
    return open_chain(cfg)


def chain_of(dep: Deployment) -> tuple[Chain, KeyPair | None]:
    """Reconnect to a deployment's chain and check it is the same chain."""
    chain, faucet = open_chain(dep.ledger_config)
    if chain.chain_id != dep.chain_id:
        chain.close()
        raise ChainsenseError(
            f"deployment: chain id {dep.chain_id} but the node reports {chain.chain_id}"
        )
    return chain, faucet
