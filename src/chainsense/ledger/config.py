"""``[ledger]`` settings: which chain, which mode, where the CA listens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from chainsense.errors import ConfigError

if TYPE_CHECKING:
    from chainsense.ledger.chain import Chain
    from chainsense.ledger.keys import KeyPair


@dataclass(frozen=True)
class LedgerConfig:
    """How records reach the chain.

    ``backend``: ``embedded`` (in-process EVM), ``rpc`` (``rpc`` URLs with failover) or
    ``network`` (the ``network.json`` of ``chainsense network up`` at ``network``).
    ``mode``: ``record`` (one transaction per record) or ``batch`` (one Merkle root per
    ``batch_size`` records).
    """

    backend: Literal["embedded", "rpc", "network"] = "embedded"
    rpc: tuple[str, ...] = ()
    network: str = "runs/network"
    mode: Literal["record", "batch"] = "batch"
    batch_size: int = 1000
    ca_host: str = "127.0.0.1"
    ca_port: int = 8600
    fund_wei: int = 10**18
    rpc_timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.backend == "rpc" and not self.rpc:
            raise ConfigError("rpc", "backend 'rpc' needs at least one URL")
        for i, url in enumerate(self.rpc):
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"rpc[{i}]", f"not an http(s) URL: {url!r}")
        if not 1 <= self.batch_size <= 100_000:
            raise ConfigError("batch_size", f"must be in 1..100000, got {self.batch_size}")
        if self.ca_host not in ("127.0.0.1", "localhost", "::1"):
            raise ConfigError("ca_host", "the CA binds to loopback only")
        if not 1 <= self.ca_port <= 65535:
            raise ConfigError("ca_port", f"must be a TCP port, got {self.ca_port}")
        if self.fund_wei <= 0:
            raise ConfigError("fund_wei", f"must be positive, got {self.fund_wei}")
        if not 0 < self.rpc_timeout <= 300:
            raise ConfigError("rpc_timeout", f"must be in (0, 300] seconds, got {self.rpc_timeout}")


def chain_for(cfg: LedgerConfig) -> tuple[Chain, KeyPair | None]:
    """The chain a config names, and the key that pays for deployment and funding (None: the
    node's dev account, as on the embedded chain and anvil)."""
    from chainsense.ledger.chain import EmbeddedChain, RpcChain, chain_from_network_file

    if cfg.backend == "embedded":
        return EmbeddedChain(), None
    if cfg.backend == "rpc":
        return RpcChain(list(cfg.rpc), timeout=cfg.rpc_timeout), None
    return chain_from_network_file(cfg.network, timeout=cfg.rpc_timeout)
