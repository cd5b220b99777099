"""Asking running nodes how they are: JSON-RPC probes, status, waiting until a network is ready."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from chainsense.devnet.netfile import NetworkInfo, NodeInfo, Role, load
from chainsense.devnet.processes import log_tail, pid_alive
from chainsense.errors import ChainsenseError

Progress = Callable[[str], None]


@dataclass(frozen=True)
class NodeStatus:
    """What ``network status`` shows for one node; ``peers``/``head`` are None when unreachable."""

    name: str
    role: Role
    pid: int
    alive: bool
    rpc: str
    peers: int | None
    head: int | None
    signer: bool | None = None  # a sealer in the current Clique signer set; None if unknown
    org: str | None = None


def rpc_call(url: str, method: str, params: list[Any] | None = None, timeout: float = 2.0) -> Any:
    """One JSON-RPC call; raises ChainsenseError on transport or RPC errors."""
    try:
        r = httpx.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []},
            timeout=timeout,
        )
        body = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ChainsenseError(f"rpc {url} {method}: {type(exc).__name__}: {exc}") from exc
    if "error" in body:
        raise ChainsenseError(f"rpc {url} {method}: {body['error']}")
    return body.get("result")


def node_head(node: NodeInfo) -> int | None:
    try:
        return int(rpc_call(node.rpc, "eth_blockNumber", timeout=1.5), 16)
    except ChainsenseError:
        return None


def node_peers(node: NodeInfo) -> int | None:
    try:
        return int(rpc_call(node.rpc, "net_peerCount", timeout=1.5), 16)
    except ChainsenseError:
        return None


def block_hash(node: NodeInfo, number: int) -> str | None:
    try:
        block = rpc_call(node.rpc, "eth_getBlockByNumber", [hex(number), False], timeout=1.5)
    except ChainsenseError:
        return None
    return block.get("hash") if isinstance(block, dict) else None


def signers(info: NetworkInfo) -> list[str] | None:
    """The current Clique signer set as any live node reports it (checksum case), or None."""
    for n in info.nodes:
        if pid_alive(n.pid, info.directory / n.datadir) or not n.pid:
            try:
                got = rpc_call(n.rpc, "clique_getSigners", timeout=1.5)
            except ChainsenseError:
                continue
            if isinstance(got, list):
                return [str(a) for a in got]
    return None


def wait_rpc(info: NetworkInfo, node: NodeInfo, deadline: float) -> None:
    datadir = info.directory / node.datadir
    while True:
        if not pid_alive(node.pid, datadir):
            raise ChainsenseError(
                f"network: {node.name} exited during start-up: {log_tail(datadir / 'geth.log')}"
            )
        try:
            rpc_call(node.rpc, "eth_blockNumber", timeout=1.0)
            return
        except ChainsenseError:
            if time.monotonic() > deadline:
                raise ChainsenseError(
                    f"network: {node.name} RPC {node.rpc} did not answer in time: "
                    f"{log_tail(datadir / 'geth.log')}"
                ) from None
            time.sleep(0.25)


def wait_ready(
    directory: str | Path,
    timeout: float = 90.0,
    *,
    min_peers: int | None = None,
    min_head: int = 2,
    names: list[str] | None = None,
    progress: Progress | None = None,
) -> NetworkInfo:
    """Wait until the named nodes (default all) answer, are peered, and blocks are sealed.

    Sealing (and, for a restarted node, resync) is shown by each chosen node's head reaching
    ``min_head`` above the highest head any live node had when the wait began. ``min_peers``
    defaults to what sealing needs rather than a full mesh: every chosen node has a peer and all
    of them hold the same block at that height (one chain, not two partitions sealing forks).
    A full mesh is what the static peers converge to, but geth redials a static peer it lost a
    race with only after ~35 s, which made a full-mesh wait time out with every node in sync.
    """
    info = load(directory)
    chosen = [n for n in info.nodes if names is None or n.name in names]
    need = (1 if len(info.nodes) > 1 else 0) if min_peers is None else min_peers
    deadline = time.monotonic() + timeout
    for node in chosen:
        wait_rpc(info, node, deadline)
    if progress:
        progress("RPC up on every node; waiting for peers")
    # Heads of every live node (not only the chosen ones): a restarted node is "ready" only once
    # it has caught up past where the rest of the network was when the wait began.
    start_head = max(
        (node_head(n) or 0 for n in info.nodes if pid_alive(n.pid, info.directory / n.datadir)),
        default=0,
    )
    target = start_head + min_head
    last: dict[str, tuple[int | None, int | None]] = {}
    chains = ""
    while True:
        ok = True
        for node in chosen:
            if not pid_alive(node.pid, info.directory / node.datadir):
                raise ChainsenseError(
                    f"network: {node.name} died: "
                    f"{log_tail(info.directory / node.datadir / 'geth.log')}"
                )
            peers, head = node_peers(node), node_head(node)
            last[node.name] = (peers, head)
            ok = ok and peers is not None and peers >= need and head is not None and head >= target
        if ok and min_peers is None:
            hashes = {block_hash(n, target) for n in chosen}
            ok = len(hashes) == 1 and None not in hashes
            chains = f"; {len(hashes - {None})} distinct block(s) at {target}"
        if ok:
            if progress:
                progress(f"all {len(chosen)} nodes peered, head >= {target}")
            return info
        if time.monotonic() > deadline:
            detail = ", ".join(f"{k}: peers={p} head={h}" for k, (p, h) in last.items())
            raise ChainsenseError(
                f"network: not ready after {timeout:.0f}s "
                f"(need peers>={need}, head>={target}): {detail}{chains or forks(chosen)}"
            )
        time.sleep(0.3)


def forks(nodes: list[NodeInfo]) -> str:
    """``"; N distinct blocks at height h"`` when the nodes' heads are not one chain at the lowest
    head among them, else ``""``: tells a stalled fork from a slow start in a timeout message."""
    heads = [h for h in (node_head(n) for n in nodes) if h]
    if len(heads) < 2:
        return ""
    height = min(heads)
    hashes = {block_hash(n, height) for n in nodes} - {None}
    return f"; {len(hashes)} distinct blocks at {height}" if len(hashes) > 1 else ""


def status(directory: str | Path, timeout: float = 1.5) -> list[NodeStatus]:
    """Liveness, peer count and head block of every node (None where unreachable)."""
    info = load(directory)
    current = {a.lower() for a in signers(info) or []}
    out = []
    for n in info.nodes:
        alive = pid_alive(n.pid, info.directory / n.datadir)
        peers = node_peers(n) if alive else None
        head = node_head(n) if alive else None
        signer = (n.address or "").lower() in current if current and n.role == "sealer" else None
        out.append(NodeStatus(n.name, n.role, n.pid, alive, n.rpc, peers, head, signer, n.org))
    return out
