"""The ``chainsense`` command line.

The Typer app lives here; each area registers its own commands from a module beside this one
(``world``: evaluate / render, ``learn``: train, ``sweep``: sweep / reproduce on Ray, ``tune``,
``ledger``: ledger, ``ca``: the CA service, ``network``: geth private network, ``experiment``:
availability experiment, ``job``: run). Command modules import the heavy layers (JAX, web3,
Ray) inside their commands, each with a comment saying so, so that ``chainsense --help``
starts in a fraction of a second.
User mistakes (:class:`~chainsense.errors.ChainsenseError`) end with a one-line message and exit
code 2, never a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from chainsense import __version__
from chainsense.errors import ChainsenseError

app = typer.Typer(
    name="chainsense",
    help="Blockchain-enabled mobile crowdsensing for industrial IoT with multi-agent DRL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_err = Console(stderr=True)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"chainsense {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_show_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Blockchain-enabled mobile crowdsensing for industrial IoT with multi-agent DRL."""


def _register_all() -> None:
    # imported here: each command module registers itself on `app`, defined above
    from chainsense.cli import (
        ca,
        experiment,
        governance,
        job,
        learn,
        ledger,
        network,
        sweep,
        tune,
        world,
    )

    for module in (job, world, learn, sweep, tune, ledger, governance, ca, network, experiment):
        module.register(app)


_register_all()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script: run the app, mapping user errors to exit code 2.

    Usage errors (unknown command, bad option) are handled by Typer itself, which also exits 2.
    """
    try:
        app(args=argv)
    except ChainsenseError as exc:
        _err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
