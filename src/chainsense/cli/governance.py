"""CLI commands of the consortium, on the ``ledger`` app: ``ledger deploy`` (the CA set and k)
and its governance, ``ledger propose``, ``ledger revoke``, ``ledger approve``, ``ledger
governance``.

Each is a transaction from a CA key of the current set (``--key``); a proposal takes effect in
the transaction that brings it to k approvals. Refusals carry the contract's reason (``only a CA
of the current set can propose or approve``, ``already approved by this CA``, ``threshold above
the number of CAs``, ...) and exit with code 2. The ledger modules are imported inside each
command, as in :mod:`chainsense.cli.ledger`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from chainsense.cli.ledger import (
    DEPLOYMENT_OPTION,
    NETWORK_OPTION,
    RPC_OPTION,
    key_option,
    ledger_app,
)
from chainsense.errors import ChainsenseError, ConfigError

if TYPE_CHECKING:
    from chainsense.chain.keys import KeyPair
    from chainsense.ledger.contract import Ledger
    from chainsense.ledger.governance import Step

_KEY = typer.Option(..., "--key", help="Key file of a CA of the current set (sends and pays).")


def _ledger(deployment: Path) -> Ledger:
    from chainsense.ledger.contract import Ledger  # lazy: see the module docstring
    from chainsense.ledger.deployment import Deployment, chain_of

    dep = Deployment.read(deployment)
    chain, _ = chain_of(dep)
    return Ledger(chain, dep.contract)


def _step(step: Step, what: str) -> None:
    state = "executed" if step.executed else "pending"
    typer.echo(
        f"{what}: proposal {step.proposal}, {step.approvals} approval(s), {state} "
        f"(block {step.block})"
    )


def _send(key: Path, deployment: Path, act: Callable[[Ledger, KeyPair], Step], what: str) -> None:
    """One governance transaction from the CA key ``key``: sent, refused with the contract's
    reason, or printed with its proposal's state."""
    from chainsense.chain.errors import ChainError  # lazy: see the module docstring

    signer = key_option(key, "key")
    assert signer is not None
    ledger = _ledger(deployment)
    try:
        step = act(ledger, signer)
    except (ChainError, ChainsenseError) as exc:
        raise _refusal(exc) from exc
    _step(step, what)


def _refusal(exc: Exception) -> ChainsenseError:
    """A contract refusal as a user error naming the reason."""
    from chainsense.chain.errors import RevertError  # lazy: see the module docstring

    if isinstance(exc, RevertError):
        return ChainsenseError(f"governance: refused: {exc.reason}")
    return exc if isinstance(exc, ChainsenseError) else ChainsenseError(str(exc))


@ledger_app.command("deploy")
def deploy_cmd(
    ca_key: list[Path] = typer.Option(  # noqa: B008
        [], "--ca-key", help="A CA key file (its address joins the CA set); repeat for several."
    ),
    ca_address: list[str] = typer.Option(  # noqa: B008
        [], "--ca-address", help="A CA address, instead of --ca-key; repeat for several."
    ),
    threshold: int = typer.Option(
        1, "--threshold", "-k", help="Countersignatures of distinct CAs each record needs."
    ),
    rpc: list[str] = RPC_OPTION,
    network: Path = NETWORK_OPTION,
    deployer_key: Path = typer.Option(  # noqa: B008
        None,
        "--deployer-key",
        help="Pays for the deployment (default: the network's faucet or the node's dev "
        "account); it gets no rights over the contract.",
    ),
    out: Path = typer.Option(Path("ledger.json"), "--out", help="Deployment file to write."),  # noqa: B008
) -> None:
    """Deploy the ledger contract with its CA set and k, and write the deployment file."""
    from chainsense.ledger.config import LedgerConfig  # lazy: see the module docstring
    from chainsense.ledger.consortium import ca_set_arguments
    from chainsense.ledger.contract import deploy_ledger
    from chainsense.ledger.deployment import Deployment, external_chain

    if not ca_key and not ca_address:
        raise ConfigError("ca", "give exactly one of --ca-key and --ca-address (repeatable)")
    given = [key_option(k, "ca-key").address for k in ca_key] + list(ca_address)
    try:
        ca_set_arguments(given, threshold)  # refused by name before connecting
    except ChainsenseError as exc:
        field, _, detail = str(exc).partition(": ")
        raise ConfigError("threshold" if field == "threshold" else "ca", detail) from exc
    chain, faucet = external_chain(LedgerConfig().with_chain(tuple(rpc or ()), network))
    deployer = key_option(deployer_key, "deployer-key") or faucet
    ledger = deploy_ledger(chain, given, threshold=threshold, deployer=deployer)
    result = ledger.deploy_result
    assert result is not None
    dep = Deployment.of(ledger, rpc=tuple(rpc or ()), network=str(network) if network else None)
    dep.write(out)
    typer.echo(
        f"ledger {ledger.address} on chain {dep.chain_id} (block {dep.block}, "
        f"gas {result.gas_used}); {dep.threshold} of {len(dep.cas)} CAs: "
        f"{', '.join(dep.cas)}; wrote {out}"
    )


@ledger_app.command("propose")
def propose_cmd(
    cas: list[str] = typer.Option(  # noqa: B008
        ..., "--ca", help="An address of the proposed CA set (repeat for each CA)."
    ),
    threshold: int = typer.Option(..., "--threshold", "-k", help="The proposed k."),
    key: Path = _KEY,
    deployment: Path = DEPLOYMENT_OPTION,
) -> None:
    """Propose a new CA set and k (add, remove or rotate a CA key; change k)."""
    from chainsense.ledger import governance  # lazy: see the module docstring

    _send(
        key,
        deployment,
        lambda ledger, signer: governance.propose_ca_set(ledger, cas, threshold, signer),
        f"CA set of {len(cas)}, k = {threshold}",
    )


@ledger_app.command("revoke")
def revoke_cmd(
    mt: str = typer.Argument(..., help="Address of the MT to revoke."),
    key: Path = _KEY,
    deployment: Path = DEPLOYMENT_OPTION,
) -> None:
    """Propose to revoke an MT: once k CAs approve, its new records are refused."""
    from chainsense.ledger import governance  # lazy: see the module docstring

    _send(
        key,
        deployment,
        lambda ledger, signer: governance.propose_revocation(ledger, mt, signer),
        f"revoke MT {mt}",
    )


@ledger_app.command("approve")
def approve_cmd(
    proposal: str = typer.Argument(..., help="Proposal id (0x + 64 hex digits)."),
    key: Path = _KEY,
    deployment: Path = DEPLOYMENT_OPTION,
) -> None:
    """Approve a pending proposal; the k-th approval executes it."""
    from chainsense.ledger import governance  # lazy: see the module docstring

    try:
        governance.proposal_id(proposal)
    except ChainsenseError as exc:
        raise ConfigError("proposal", str(exc).split(": ", 1)[-1]) from exc
    _send(
        key,
        deployment,
        lambda ledger, signer: governance.approve(ledger, proposal, signer),
        "approved",
    )


@ledger_app.command("governance")
def governance_cmd(deployment: Path = DEPLOYMENT_OPTION) -> None:
    """Show the CA set, k, the revoked MTs and every proposal with its approvals."""
    from chainsense.ledger import governance  # lazy: see the module docstring

    ledger = _ledger(deployment)
    ca_set = ledger.ca_set()
    typer.echo(f"k = {ca_set.threshold} of {len(ca_set.cas)} CAs: {', '.join(ca_set.cas)}")
    for r in governance.revocations(ledger):
        typer.echo(f"revoked MT {r.mt} in block {r.block}")
    for p in governance.proposals(ledger):
        state = "executed" if p.executed else "stale" if p.stale else "pending"
        what = f"revoke MT {p.mt}" if p.mt else f"CA set {', '.join(p.cas)} with k = {p.threshold}"
        typer.echo(f"{p.proposal} {state}, {p.approvals} approval(s), by {p.proposer}: {what}")


def register(app: typer.Typer) -> None:
    """The commands are on the ``ledger`` app (registered by :mod:`chainsense.cli.ledger`)."""
    del app
