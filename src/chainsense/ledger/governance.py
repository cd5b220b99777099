"""Consortium governance: proposals that k CAs of the current set approve on chain.

There is no admin. A change of the CA set (adding, removing or rotating a CA key, changing k)
or the revocation of an MT is proposed by a CA and takes effect in the transaction that brings
it to k approvals. Each CA approves with a transaction sent from its own key (``msg.sender`` is
the approval): no second signature format, no relaying, nothing to replay, and every step is an
ordered, attributable event (``Proposed``, ``Approved``, ``Executed``, then ``CASetChanged`` or
``MTRevoked``). A proposal is bound to the CA-set epoch it was made in: once the set changes, the
old set's pending proposals can no longer be approved. Refusals carry the contract's reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chainsense.chain.keys import KeyPair, checksum
from chainsense.errors import ChainsenseError
from chainsense.ledger.consortium import CASet, ca_set_arguments
from chainsense.ledger.contract import Ledger

KIND_CA_SET = 1
KIND_REVOKE_MT = 2
KIND_NAMES = {KIND_CA_SET: "CA set", KIND_REVOKE_MT: "revoke MT"}


@dataclass(frozen=True)
class Step:
    """One governance transaction: the proposal it touched, its approvals and whether it ran."""

    proposal: str
    approvals: int
    executed: bool
    tx_hash: str
    block: int


@dataclass(frozen=True)
class ProposalInfo:
    proposal: str
    kind: str
    epoch: int
    proposer: str
    cas: tuple[str, ...]
    threshold: int
    mt: str | None
    approvals: int
    executed: bool
    stale: bool


@dataclass(frozen=True)
class CASetChange:
    """A CA set taking office at (block, log index): the records logged after it, until the
    next change, must carry k signatures of these CAs."""

    epoch: int
    ca_set: CASet
    block: int
    log_index: int


@dataclass(frozen=True)
class Revocation:
    mt: str
    proposal: str
    block: int
    log_index: int


def _step(ledger: Ledger, key: KeyPair, data: str) -> Step:
    result = ledger.chain.transact(key, to=ledger.address, data=data)
    approved = ledger.events(result, "Approved")
    if not approved:
        raise ChainsenseError(f"governance: transaction {result.tx_hash} approved nothing")
    pid = "0x" + bytes(approved[-1]["proposal"]).hex()
    return Step(
        proposal=pid,
        approvals=int(approved[-1]["approvals"]),
        executed=bool(ledger.events(result, "Executed")),
        tx_hash=result.tx_hash,
        block=result.block,
    )


def propose_ca_set(
    ledger: Ledger, cas: Sequence[str] | str, threshold: int, proposer: KeyPair
) -> Step:
    """Propose the CA set ``cas`` with threshold k (counts as the proposer's approval)."""
    ordered = ca_set_arguments(cas, threshold)
    return _step(ledger, proposer, ledger.encode("propose_ca_set", ordered, threshold))


def propose_revocation(ledger: Ledger, mt: str, proposer: KeyPair) -> Step:
    """Propose to revoke MT ``mt``: once executed, the contract refuses its submits."""
    return _step(ledger, proposer, ledger.encode("propose_revocation", checksum(mt, "mt")))


def approve(ledger: Ledger, proposal: str, approver: KeyPair) -> Step:
    """Approve ``proposal`` (0x + 64 hex digits); it executes at the k-th approval."""
    return _step(ledger, approver, ledger.encode("approve", proposal_id(proposal)))


def proposal_id(text: str) -> bytes:
    """A proposal id from the command line or a file, refused by name when malformed."""
    if not isinstance(text, str) or not text.startswith("0x") or len(text) != 66:
        raise ChainsenseError(f"proposal: must be 0x + 64 hex digits, got {text!r:.80}")
    try:
        return bytes.fromhex(text[2:])
    except ValueError as exc:
        raise ChainsenseError("proposal: not hex") from exc


def proposals(ledger: Ledger) -> list[ProposalInfo]:
    """Every proposal ever made, oldest first, with its approvals and state now."""
    epoch = int(ledger.view("ca_epoch"))
    out = []
    for event in ledger.logs("Proposed"):
        pid = bytes(event["proposal"])
        state = ledger.view("get_proposal", pid)
        kind = int(event["kind"])
        executed = bool(state[3])
        out.append(
            ProposalInfo(
                proposal="0x" + pid.hex(),
                kind=KIND_NAMES.get(kind, str(kind)),
                epoch=int(event["epoch"]),
                proposer=str(event["proposer"]),
                cas=tuple(str(a) for a in event["cas"]),
                threshold=int(event["threshold"]),
                mt=str(event["mt"]) if kind == KIND_REVOKE_MT else None,
                approvals=bin(int(state[2])).count("1"),
                executed=executed,
                stale=not executed and int(event["epoch"]) != epoch,
            )
        )
    return out


def ca_set_history(ledger: Ledger, from_block: int = 0) -> list[CASetChange]:
    """Every CA set the contract has had, in the order they took office."""
    return [
        CASetChange(
            epoch=int(e["epoch"]),
            ca_set=CASet(tuple(str(a) for a in e["cas"]), int(e["threshold"])),
            block=int(e["block"]),
            log_index=int(e["log_index"]),
        )
        for e in ledger.logs("CASetChanged", from_block)
    ]


def revocations(ledger: Ledger, from_block: int = 0) -> list[Revocation]:
    """Every MT revocation, in chain order."""
    return [
        Revocation(
            mt=str(e["mt"]),
            proposal="0x" + bytes(e["proposal"]).hex(),
            block=int(e["block"]),
            log_index=int(e["log_index"]),
        )
        for e in ledger.logs("MTRevoked", from_block)
    ]
