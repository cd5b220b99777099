"""Sealer governance: voting a signer in or out through Clique's own votes.

No single key changes who seals: geth's Clique counts a vote when a signer seals a block carrying
it, and a proposal passes once more than half of the current signers voted the same way. So
``propose`` casts the vote (``clique_propose``) on every live signer node of this network, which
must be a majority, waits until the signer set shows the change, then withdraws the proposal
everywhere (``clique_discard``: a passed "add" left standing would vote the address back in after
a later removal). Changes that leave the chain unable to seal are refused before any vote:
a signer set of 2 (each may seal one of every 2 blocks, so one absent sealer or two blocks of one
height stall it), an empty set, or fewer running signers than Clique's
``floor(N/2) + 1`` (a signer may seal at most one of any ``floor(N/2) + 1`` consecutive blocks).

In an organisation's bundle (``network join``), where only its own sealers run, ``propose`` casts
that organisation's vote only and, if the other organisations have not voted yet, leaves it
standing (reporting the tally so far) until it passes or is withdrawn: each organisation votes
on its own host, and the change takes effect once a majority of them did.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

from chainsense.devnet.health import Progress, rpc_call, signers
from chainsense.devnet.netfile import NetworkInfo, NodeInfo, load
from chainsense.devnet.processes import pid_alive
from chainsense.errors import ChainsenseError, ConfigError

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


@dataclass(frozen=True)
class VoteResult:
    """The signer set before and after a vote, and the nodes that cast it."""

    address: str
    add: bool
    before: tuple[str, ...]
    after: tuple[str, ...]
    voters: tuple[str, ...]
    passed: bool = True
    votes: int = 0  # votes for the change sealed into the chain so far (when it has not passed)


def quorum(signer_count: int) -> int:
    """Running signers Clique needs to keep sealing: a signer seals at most one block in every
    ``floor(N/2) + 1``, so that many distinct signers must take turns."""
    return signer_count // 2 + 1


def _live_sealers(info: NetworkInfo) -> list[NodeInfo]:
    return [
        n
        for n in info.nodes
        if n.role == "sealer" and n.address and pid_alive(n.pid, info.directory / n.datadir)
    ]


def is_bundle(info: NetworkInfo) -> bool:
    """True for one organisation's bundle, which runs only that organisation's nodes."""
    return "bundle_of" in info.extra


def check_change(info: NetworkInfo, current: list[str], address: str, add: bool) -> list[NodeInfo]:
    """Refuse a change that cannot pass or would stall sealing; return the nodes that vote.

    In a bundle only this organisation's vote is cast, so the majority and the sealing quorum,
    which depend on the other organisations' hosts, are left to Clique."""
    if not _ADDRESS.fullmatch(address):
        raise ConfigError("address", f"must be a 0x-prefixed 20-byte hex address, got {address!r}")
    now = {a.lower() for a in current}
    target = address.lower()
    if add and target in now:
        raise ChainsenseError(f"vote: {address} is already a signer")
    if not add and target not in now:
        raise ChainsenseError(f"vote: {address} is not a signer (signers: {sorted(now)})")
    after = now | {target} if add else now - {target}
    if not after:
        raise ChainsenseError("vote: removing the last signer would leave no one to seal")
    if len(after) == 2:
        raise ChainsenseError(
            "vote: 2 signers cannot be relied on to make progress under Clique (one absent "
            "sealer, or two blocks of one height, halts the chain); add or remove another first"
        )
    live = _live_sealers(info)
    voters = [n for n in live if (n.address or "").lower() in now]
    if is_bundle(info):
        if not voters:
            raise ChainsenseError("vote: no signer of this organisation runs here to vote")
        return voters
    if len(voters) <= len(now) // 2:
        raise ChainsenseError(
            f"vote: needs more than half of the {len(now)} signers to vote, but only "
            f"{len(voters)} of their nodes run here ({[n.name for n in voters]})"
        )
    sealing_after = sum(1 for n in live if (n.address or "").lower() in after)
    if sealing_after < quorum(len(after)):
        raise ChainsenseError(
            f"vote: with {len(after)} signers Clique needs {quorum(len(after))} of them sealing, "
            f"but only {sealing_after} would run here; start the new signer's node first"
        )
    return voters


def propose(
    directory: str | Path,
    address: str,
    *,
    add: bool,
    timeout: float = 60.0,
    progress: Progress | None = None,
) -> VoteResult:
    """Vote ``address`` in (``add``) or out on a majority of signers; wait until it takes effect.

    On timeout the proposals are withdrawn and the error names the signer set as it stands; in a
    bundle the organisation's vote stays standing and the result says ``passed=False``.
    """
    info = load(directory)
    current = signers(info)
    if current is None:
        raise ChainsenseError("vote: no running node answered clique_getSigners")
    voters = check_change(info, current, address, add)
    for n in voters:
        rpc_call(n.rpc, "clique_propose", [address, add], timeout=5.0)
    if progress:
        progress(f"{len(voters)} of {len(current)} signers voted; waiting for the vote to pass")
    want, names = address.lower(), tuple(n.name for n in voters)
    deadline = time.monotonic() + timeout
    standing = False
    try:
        while True:
            now = signers(info) or []
            if (want in {a.lower() for a in now}) == add:
                return VoteResult(address, add, tuple(current), tuple(now), names)
            if time.monotonic() > deadline:
                if is_bundle(info):
                    standing = True
                    votes = tally(voters, address, add)
                    return VoteResult(address, add, tuple(current), tuple(now), names, False, votes)
                raise ChainsenseError(
                    f"vote: did not pass within {timeout:.0f}s (signers now: {now}); "
                    "the proposals were withdrawn"
                )
            time.sleep(0.5)
    finally:
        if not standing:
            withdraw_on(voters, address)


def tally(nodes: list[NodeInfo], address: str, add: bool) -> int:
    """Votes for this change that the chain has counted so far (``clique_getSnapshot``)."""
    for n in nodes:
        with contextlib.suppress(ChainsenseError):
            snap = rpc_call(n.rpc, "clique_getSnapshot", [], timeout=5.0)
            entry = (snap.get("tally") or {}).get(address.lower()) if isinstance(snap, dict) else {}
            if isinstance(entry, dict) and entry.get("authorize") == add:
                return int(entry.get("votes", 0))
            return 0
    return 0


def withdraw_on(nodes: list[NodeInfo], address: str) -> None:
    """Withdraw this network's standing vote on ``address`` (``clique_discard``)."""
    for n in nodes:  # a node that went away holds no proposal worth withdrawing
        with contextlib.suppress(ChainsenseError):
            rpc_call(n.rpc, "clique_discard", [address], timeout=5.0)


def withdraw(directory: str | Path, address: str) -> list[str]:
    """Withdraw the votes on ``address`` that this network's running sealers still cast."""
    if not _ADDRESS.fullmatch(address):
        raise ConfigError("address", f"must be a 0x-prefixed 20-byte hex address, got {address!r}")
    live = _live_sealers(load(directory))
    if not live:
        raise ChainsenseError("vote: no sealer of this network runs here")
    withdraw_on(live, address)
    return [n.name for n in live]
