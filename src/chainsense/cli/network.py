"""``chainsense network up|status|down|stop|start``: a local geth Clique private network.

Thin layer over :mod:`chainsense.devnet`; every failure there is a ChainsenseError that the
main CLI turns into a one-line message and exit code 2. devnet is imported inside each command
(it loads eth-account and httpx, which ``chainsense --help`` must not pay for).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

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
    followers: int = typer.Option(1, help="Non-mining nodes that relay transactions and serve."),
    period: int = typer.Option(1, help="Clique block period in seconds."),
    chain_id: int = typer.Option(1337, "--chain-id", help="Chain id (also the network id)."),
    timeout: float = typer.Option(90.0, help="Seconds to wait for peering and sealing."),
) -> None:
    """Write genesis + keys, start every node on 127.0.0.1, wait until peered and sealing."""
    from chainsense import devnet as network  # lazy: see the module docstring

    spec = network.NetworkSpec(
        sealers=sealers, followers=followers, period=period, chain_id=chain_id
    )
    with _out.status("starting geth network") as spinner:
        info = network.up(
            directory, spec, timeout=timeout, progress=lambda m: spinner.update(f"network: {m}")
        )
    _out.print(f"network up: {len(info.nodes)} nodes, chain id {info.chain_id}, file {info.file}")
    _show(directory)


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


def _show(directory: Path) -> None:
    from chainsense import devnet as network  # lazy: see the module docstring

    table = Table(title=f"geth network {network.network_file(directory)}")
    for col in ("node", "role", "pid", "alive", "peers", "head"):
        table.add_column(col, no_wrap=True)
    table.add_column("rpc", no_wrap=True, min_width=22)
    for s in network.status(directory):
        table.add_row(
            s.name,
            s.role,
            str(s.pid),
            "[green]yes[/]" if s.alive else "[red]no[/]",
            "-" if s.peers is None else str(s.peers),
            "-" if s.head is None else str(s.head),
            s.rpc,
        )
    _out.print(table)


def register(app: typer.Typer) -> None:
    """Add the ``network`` command group to app."""
    app.add_typer(net_app, name="network")
