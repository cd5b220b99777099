"""``[ledger]`` settings and the one place that turns them into a chain connection.

:class:`LedgerConfig` is the only source of the chain backend and the ledger mode: ``chainsense
run`` embeds it in its options, a config file's ``[ledger]`` section fills it
(:func:`load_ledger_config`), command-line flags override it, and :func:`open_chain` connects to
what it names.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from chainsense.chain.base import Chain
from chainsense.chain.embedded import EmbeddedChain
from chainsense.chain.keys import KeyPair, load_key
from chainsense.chain.rpc import RpcChain
from chainsense.config import from_mapping, read_section
from chainsense.devnet import netfile
from chainsense.errors import ChainsenseError, ConfigError
from chainsense.ledger.consortium import MAX_CAS

Backend = Literal["embedded", "rpc", "network"]
Mode = Literal["record", "batch"]
MAX_BATCH = 100_000


@dataclass(frozen=True)
class LedgerConfig:
    """How records reach the chain.

    ``backend``: ``embedded`` (in-process EVM), ``rpc`` (the ``rpc`` URLs, with failover) or
    ``network`` (the network file of ``chainsense network up`` in ``network``).
    ``mode``: ``record`` (one transaction per record, as in the paper) or ``batch`` (one Merkle
    root per ``batch_size`` records).
    ``ca_urls``: the consortium's CA services an MT asks (empty: the one at ``ca_host:ca_port``);
    ``threshold``: k, the countersignatures each record and batch root needs.
    """

    backend: Backend = "embedded"
    rpc: tuple[str, ...] = ()
    network: str = "runs/network"
    mode: Mode = "batch"
    batch_size: int = 500
    ca_host: str = "127.0.0.1"
    ca_port: int = 8600
    ca_urls: tuple[str, ...] = ()
    threshold: int = 1
    fund_wei: int = 10**18
    rpc_timeout: float = 5.0
    rpc_cooldown: float = 2.0

    def __post_init__(self) -> None:
        if self.backend not in ("embedded", "rpc", "network"):
            raise ConfigError("backend", f"must be embedded, rpc or network, got {self.backend!r}")
        for i, url in enumerate(self.rpc):
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ConfigError(f"rpc[{i}]", f"not an http(s) URL: {url!r}")
        if self.backend == "rpc" and not self.rpc:
            raise ConfigError("rpc", "backend 'rpc' needs at least one URL")
        if self.backend != "rpc" and self.rpc:
            raise ConfigError("rpc", f"URLs given but the backend is {self.backend!r}")
        if self.mode not in ("record", "batch"):
            raise ConfigError("mode", f"must be 'record' or 'batch', got {self.mode!r}")
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ConfigError("batch_size", f"must be in [1, {MAX_BATCH}], got {self.batch_size}")
        if self.ca_host not in ("127.0.0.1", "localhost", "::1"):
            raise ConfigError("ca_host", "the CA binds to loopback only")
        if not 1 <= self.ca_port <= 65535:
            raise ConfigError("ca_port", f"must be a TCP port, got {self.ca_port}")
        for i, url in enumerate(self.ca_urls):
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ConfigError(f"ca_urls[{i}]", f"not an http(s) URL: {url!r}")
        if len(set(self.ca_urls)) != len(self.ca_urls):
            raise ConfigError("ca_urls", "a URL appears twice")
        if len(self.ca_urls) > MAX_CAS:
            raise ConfigError("ca_urls", f"at most {MAX_CAS} CAs, got {len(self.ca_urls)}")
        top = len(self.ca_urls) or MAX_CAS
        if isinstance(self.threshold, bool) or not 1 <= self.threshold <= top:
            raise ConfigError(
                "threshold",
                f"must be in 1..{top}"
                + (" (the CAs in ca_urls)" if self.ca_urls else "")
                + f", got {self.threshold}",
            )
        if self.fund_wei <= 0:
            raise ConfigError("fund_wei", f"must be positive, got {self.fund_wei}")
        if not 0 < self.rpc_timeout <= 300:
            raise ConfigError("rpc_timeout", f"must be in (0, 300] seconds, got {self.rpc_timeout}")
        if not 0 <= self.rpc_cooldown <= 300:
            raise ConfigError(
                "rpc_cooldown", f"must be in [0, 300] seconds, got {self.rpc_cooldown}"
            )

    def with_chain(
        self, rpc: tuple[str, ...] = (), network: str | Path | None = None
    ) -> LedgerConfig:
        """This config pointed at ``--rpc`` URLs or a ``--network`` directory when either is given
        (the command line overrides the file); both at once is refused."""
        if rpc and network is not None:
            raise ConfigError("network", "give either a network directory or RPC URLs, not both")
        if rpc:
            return dataclasses.replace(self, backend="rpc", rpc=tuple(rpc))
        if network is not None:
            return dataclasses.replace(self, backend="network", rpc=(), network=str(network))
        return self

    @property
    def ca_services(self) -> tuple[str, ...]:
        """The CA service URLs an MT asks: ``ca_urls``, or the one at ``ca_host:ca_port``."""
        return self.ca_urls or (f"http://{self.ca_host}:{self.ca_port}",)

    @property
    def label(self) -> str:
        """The chain in words, for summaries and reports."""
        if self.backend == "network":
            return f"network file {self.network}"
        if self.backend == "rpc":
            return f"JSON-RPC {', '.join(self.rpc)}"
        return "embedded (in-process EVM)"


def load_ledger_config(config: str | Path | None = None) -> LedgerConfig:
    """The ``[ledger]`` section of ``config`` (the defaults without a file or a section)."""
    return from_mapping(LedgerConfig, read_section(config, "ledger"), "ledger")


def _network_chain(cfg: LedgerConfig) -> tuple[RpcChain, KeyPair | None]:
    info = netfile.load(cfg.network)
    chain = RpcChain(
        [(n.rpc, n.role) for n in info.nodes],
        timeout=cfg.rpc_timeout,
        cooldown=cfg.rpc_cooldown,
        names=[n.name for n in info.nodes],
    )
    # Clique: with several sealers an out-of-turn block can be replaced, so a transaction
    # counts as confirmed one block deep
    chain.confirmations = 1 if info.sealers > 1 else 0
    try:
        if chain.chain_id != info.chain_id:
            raise ChainsenseError(
                f"network file: chain_id {info.chain_id} but the nodes report {chain.chain_id}"
            )
        faucet = load_key(info.faucet_keyfile) if info.faucet_keyfile else None
    except BaseException:
        chain.close()
        raise
    return chain, faucet


def open_chain(cfg: LedgerConfig) -> tuple[Chain, KeyPair | None]:
    """The chain ``cfg`` names, reached now (an unreachable node fails before any other work),
    and the key that pays for deployment and funding (None: the node's dev account, as on the
    embedded chain and anvil; a network's faucet key otherwise)."""
    if cfg.backend == "embedded":
        return EmbeddedChain(), None
    if cfg.backend == "network":
        return _network_chain(cfg)
    chain = RpcChain(list(cfg.rpc), timeout=cfg.rpc_timeout, cooldown=cfg.rpc_cooldown)
    try:
        _ = chain.chain_id
    except BaseException:
        chain.close()
        raise
    return chain, None


def connect_network(
    directory: str | Path, *, timeout: float = 5.0, cooldown: float = 2.0
) -> tuple[Chain, KeyPair | None]:
    """The ledger client over a network directory (failover, head tracking, read your writes;
    Clique headers handled) plus its faucet key."""
    cfg = LedgerConfig(
        backend="network", network=str(directory), rpc_timeout=timeout, rpc_cooldown=cooldown
    )
    return open_chain(cfg)
