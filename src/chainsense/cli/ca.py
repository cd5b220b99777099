"""CLI commands of the 'ca' area: ``ca serve|register``, the certificate authority as a service.

The ledger modules are imported inside each command, not at the top: they load web3 (about a
second), which ``chainsense --help`` and every other command must not pay for.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import typer

from chainsense import jsonlimits
from chainsense.cli.ledger import DEPLOYMENT_OPTION, key_option
from chainsense.errors import ConfigError

ca_app = typer.Typer(help="The certificate authority service.", no_args_is_help=True)


def _admin_token(path: Path | None) -> str | None:
    """The bearer token in ``--admin-token-file`` (None without the option)."""
    if path is None:
        return None
    try:
        token = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("admin-token-file", f"cannot read {path}: {exc}") from exc
    if not token:
        raise ConfigError("admin-token-file", f"{path} is empty")
    return token


@ca_app.command("serve")
def serve_cmd(
    key: Path = typer.Option(..., "--key", help="The CA's key file."),  # noqa: B008
    db: Path = typer.Option(Path("ca.db"), "--db", help="Registry (SQLite)."),  # noqa: B008
    deployment: Path = DEPLOYMENT_OPTION,
    port: int = typer.Option(8600, "--port", help="TCP port."),
    host: str = typer.Option("127.0.0.1", "--host", help="IP address to listen on."),
    admin_token_file: Path = typer.Option(  # noqa: B008
        None, "--admin-token-file", help="File with the bearer token required to register MTs."
    ),
    offline: bool = typer.Option(
        False, "--offline", help="Do not read the chain: countersign revoked MTs' records too."
    ),
) -> None:
    """Serve the CA (register MTs, countersign records and batches) on --host:--port.

    It reads the deployment's chain for revocations (at most once a second) and refuses the
    records of a revoked MT; --offline serves without the chain, as a CA without one did.
    """
    import uvicorn  # lazy: see the module docstring

    from chainsense.ledger.ca import CertificateAuthority
    from chainsense.ledger.ca_api import build_app
    from chainsense.ledger.contract import Ledger
    from chainsense.ledger.deployment import Deployment, chain_of
    from chainsense.ledger.records import Domain
    from chainsense.ledger.revoked import RevokedMTs

    if not 1 <= port <= 65535:
        raise ConfigError("port", f"must be a TCP port, got {port}")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        raise ConfigError("host", f"must be an IP address, got {host[:40]!r}") from None
    dep = Deployment.read(deployment)
    ca_key = key_option(key, "key")
    if ca_key.address not in dep.cas:
        raise ConfigError(
            "key", f"is {ca_key.address}, not in the contract's CA set {', '.join(dep.cas)}"
        )
    token = _admin_token(admin_token_file)
    if offline:
        ca = CertificateAuthority(ca_key, db, Domain(dep.chain_id, dep.contract))
    else:
        chain, _ = chain_of(dep)
        ledger = Ledger(chain, dep.contract)
        ca = CertificateAuthority(ca_key, db, ledger.domain, RevokedMTs(ledger))
    typer.echo(f"CA {ca.address} for {dep.contract} on http://{host}:{port}")
    uvicorn.run(build_app(ca, token), host=host, port=port, log_level="warning")


@ca_app.command("register")
def register_cmd(
    address: str = typer.Argument(..., help="MT address."),
    ca_url: str = typer.Option("http://127.0.0.1:8600", "--ca", help="CA service URL."),
    metadata: str = typer.Option("{}", "--metadata", help="JSON object stored with the MT."),
    admin_token_file: Path = typer.Option(None, "--admin-token-file"),  # noqa: B008
) -> None:
    """Register an MT with the CA service."""
    from chainsense.ledger.ca_client import CAClient  # lazy: see the module docstring

    try:
        meta = jsonlimits.loads(metadata, "metadata", max_bytes=1 << 20)
    except jsonlimits.JSONLimitError as exc:
        raise ConfigError("metadata", f"not JSON: {exc.detail}") from exc
    token = _admin_token(admin_token_file)
    info = CAClient(ca_url, admin_token=token).register(address, meta)
    typer.echo(f"registered {info['address']} (last nonce {info['last_nonce']})")


def register(app: typer.Typer) -> None:
    """Add this area's commands to app."""
    app.add_typer(ca_app, name="ca")
