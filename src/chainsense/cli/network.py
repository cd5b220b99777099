"""``chainsense network up|status|down|stop|start|propose|export|join``: a geth Clique network.

Thin layer over :mod:`chainsense.devnet`; every failure there is a ChainsenseError that the
main CLI turns into a one-line message and exit code 2. devnet is imported inside each command
(it loads eth-account and httpx, which ``chainsense --help`` must not pay for).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from chainsense.errors import ConfigError

DEFAULT_DIR = Path("runs/network")

net_app = typer.Typer(
    help="A local geth v1.13 Clique network: sealers (mining) and followers (non-mining).",
    no_args_is_help=True,
)
_out = Console()

_DIR = typer.Option(DEFAULT_DIR, "--dir", "-d", help="Network directory (holds network.json).")


@net_app.command("up")
def up_cmd(
    directory: Path = _DIR,
    sealers: int = typer.Option(3, help="Sealing (mining) nodes; > half must stay up to seal."),
    followers: int = typer.Option(
        1, help="Non-mining nodes that relay transactions and serve (per organisation with --orgs)."
    ),
    period: int = typer.Option(1, help="Clique block period in seconds."),
    chain_id: int = typer.Option(1337, "--chain-id", help="Chain id (also the network id)."),
    timeout: float = typer.Option(90.0, help="Seconds to wait for peering and sealing."),
    orgs: int = typer.Option(
        0, help="A consortium: per organisation one sealer, its followers and a CA key."
    ),
    hosts: str = typer.Option(
        "", help="With --orgs: comma-separated IP per organisation (default 127.0.0.1 for all)."
    ),
    standby: int = typer.Option(
        0, help="Extra sealers that run with a key but seal only once voted in (network propose)."
    ),
    ledger: bool = typer.Option(
        False, "--ledger", help="With --orgs: deploy the ledger and start each org's CA service."
    ),
    threshold: int = typer.Option(
        0, "--threshold", "-k", help="With --ledger: CA signatures per record (default majority)."
    ),
) -> None:
    """Write genesis + keys, start every node, wait until peered and sealing.

    With --ledger, then deploy the consortium's ledger (the orgs' CAs, k = --threshold) into
    DIR/ledger.json and start one `ca serve` per organisation; `network down` stops them too.
    """
    from chainsense import devnet as network  # lazy: see the module docstring

    k = _ledger_threshold(ledger, orgs, threshold)  # refused before anything starts
    spec = network.NetworkSpec(
        sealers=sealers,
        followers=followers,
        period=period,
        chain_id=chain_id,
        orgs=orgs,
        standby=standby,
        hosts=tuple(h.strip() for h in hosts.split(",")) if hosts else (),
    )
    with _out.status("starting geth network") as spinner:
        info = network.up(
            directory, spec, timeout=timeout, progress=lambda m: spinner.update(f"network: {m}")
        )
    _out.print(f"network up: {len(info.nodes)} nodes, chain id {info.chain_id}, file {info.file}")
    if ledger:
        _up_ledger(info.directory, k, timeout)
    _show(directory)


def _ledger_threshold(ledger: bool, orgs: int, threshold: int) -> int:
    """k for --ledger, checked against --orgs (0 without --ledger)."""
    if not ledger:
        if threshold:
            raise ConfigError("threshold", "only with --ledger")
        return 0
    if orgs < 1:
        raise ConfigError("ledger", "needs --orgs N: the CAs are the organisations' CA keys")
    k = threshold or orgs // 2 + 1
    if not 1 <= k <= orgs:
        raise ConfigError("threshold", f"must be in 1..{orgs} (the organisations), got {k}")
    return k


def _up_ledger(directory: Path, threshold: int, timeout: float) -> None:
    """Deploy and start the CA services; on any failure stop and remove the whole network."""
    from chainsense import devnet as network  # lazy: see the module docstring
    from chainsense.cli import network_ledger

    try:
        with _out.status("deploying the ledger"):
            dep = network_ledger.deploy_consortium(directory, threshold)
        with _out.status("starting the CA services"):
            urls = network_ledger.start_cas(directory, timeout)
    except BaseException:
        network.down(directory, wipe=True)
        raise
    _out.print(
        f"ledger {dep.contract}: {dep.threshold} of {len(dep.cas)} CAs, file "
        f"{directory / network_ledger.DEPLOYMENT_FILE}; CA services at {', '.join(urls)}"
    )


@net_app.command("status")
def status_cmd(directory: Path = _DIR) -> None:
    """Show every node: role, pid alive, peer count, head block."""
    _show(directory)


@net_app.command("down")
def down_cmd(
    directory: Path = _DIR,
    wipe: bool = typer.Option(False, "--wipe", help="Also delete the network directory."),
) -> None:
    """Stop every node by pid (SIGTERM, then SIGKILL); keep data unless --wipe."""
    from chainsense import devnet as network  # lazy: see the module docstring

    stopped = network.down(directory, wipe=wipe)
    _out.print(
        f"stopped {len(stopped)} node(s){': ' + ', '.join(stopped) if stopped else ''}"
        + ("; data wiped" if wipe else "; data kept")
    )


@net_app.command("stop")
def stop_cmd(
    name: str = typer.Argument(..., help="Node name, e.g. sealer-2."), directory: Path = _DIR
) -> None:
    """Stop one node (fault injection); its data is kept for a later `network start`."""
    from chainsense import devnet as network  # lazy: see the module docstring

    network.stop_node(directory, name)
    _out.print(f"stopped {name}")


@net_app.command("start")
def start_cmd(
    name: str = typer.Argument(..., help="Node name, e.g. sealer-2."),
    directory: Path = _DIR,
    timeout: float = typer.Option(60.0, help="Seconds to wait until it has resynced."),
) -> None:
    """Restart one stopped node and wait until it is peered and has caught up."""
    from chainsense import devnet as network  # lazy: see the module docstring

    network.start_node(directory, name)
    with _out.status(f"waiting for {name} to resync"):
        network.wait_ready(directory, timeout, names=[name], min_peers=1, min_head=1)
    _out.print(f"{name} running and in sync")
    _show(directory)


@net_app.command("propose")
def propose_cmd(
    address: str = typer.Argument(..., help="The signer address (0x...) to vote in or out."),
    add: bool = typer.Option(
        None, "--add/--remove", help="Vote the address into or out of the signer set."
    ),
    withdraw: bool = typer.Option(False, help="Withdraw this network's standing vote instead."),
    directory: Path = _DIR,
    timeout: float = typer.Option(60.0, help="Seconds to wait for the vote to pass."),
) -> None:
    """Vote a sealer in or out on every running signer (a majority is needed), wait until done.

    In an organisation's bundle only its own vote is cast; it stays standing until the other
    organisations' votes make a majority, or until --withdraw.
    """
    from chainsense import devnet as network  # lazy: see the module docstring

    if withdraw:
        names = network.withdraw(directory, address)
        _out.print(f"withdrew the votes on {address} of {', '.join(names)}")
        return
    if add is None:
        raise typer.BadParameter("say --add or --remove", param_hint="--add/--remove")
    with _out.status("voting") as spinner:
        vote = network.propose(
            directory, address, add=add, timeout=timeout, progress=spinner.update
        )
    verb = "add" if add else "remove"
    if vote.passed:
        _out.print(f"voted to {verb} {address} ({', '.join(vote.voters)}): passed; signers now:")
    else:
        _out.print(
            f"voted to {verb} {address} ({', '.join(vote.voters)}); {vote.votes} of "
            f"{len(vote.before)} signers' votes sealed so far, more than half are needed; the "
            "vote stands until it passes (or --withdraw)"
        )
    _show(directory)


@net_app.command("export")
def export_cmd(
    out: Path = typer.Argument(..., help="Bundle directory to write (absent or empty)."),  # noqa: B008
    org: int = typer.Option(..., "--org", help="Organisation number (1 = org-1)."),
    directory: Path = _DIR,
    faucet: bool = typer.Option(False, help="Include the faucet key (to fund MT accounts)."),
) -> None:
    """Write one organisation's bundle (genesis, keys 0600, peers, CA settings, systemd unit)."""
    from chainsense import devnet as network  # lazy: see the module docstring

    path = network.export(directory, f"org-{org}", out, faucet=faucet)
    _out.print(f"org-{org} bundle written to {path} (start it with `network join {out}`)")


@net_app.command("join")
def join_cmd(
    bundle: Path = typer.Argument(..., help="A bundle written by `network export`."),  # noqa: B008
    timeout: float = typer.Option(60.0, help="Seconds to wait until every node answers."),
) -> None:
    """Validate a bundle and start its organisation's node(s); they peer as the others join."""
    from chainsense import devnet as network  # lazy: see the module docstring

    info = network.join(bundle, timeout=timeout)
    _out.print(f"{info.orgs[0].name}: started {', '.join(n.name for n in info.nodes)}")
    _show(bundle)


def _show(directory: Path) -> None:
    from chainsense import devnet as network  # lazy: see the module docstring

    table = Table(title=f"geth network {network.network_file(directory)}")
    for col in ("node", "org", "role", "signer", "pid", "alive", "peers", "head"):
        table.add_column(col, no_wrap=True)
    table.add_column("rpc", no_wrap=True, min_width=22)
    rows = network.status(directory)
    for s in rows:
        table.add_row(
            s.name,
            s.org or "-",
            s.role,
            "-" if s.signer is None else ("yes" if s.signer else "no"),
            str(s.pid),
            "[green]yes[/]" if s.alive else "[red]no[/]",
            "-" if s.peers is None else str(s.peers),
            "-" if s.head is None else str(s.head),
            s.rpc,
        )
    _out.print(table)
    current = network.signers(network.load(directory))
    if current is not None:
        _out.print(f"signers ({len(current)}): {', '.join(current)}")
    info = network.load(directory)
    for org in info.orgs:
        _out.print(f"{org.name}: CA {org.ca.address} at {org.ca.host}:{org.ca.port}")
    for s in network.service_status(info):
        state = "[green]up[/]" if s.alive else "[red]down[/]"
        _out.print(f"service {s.name}: {state} (pid {s.pid}, {s.url})")


def register(app: typer.Typer) -> None:
    """Add the ``network`` command group to app."""
    app.add_typer(net_app, name="network")
