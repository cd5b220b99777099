"""CLI commands of the 'ledger' area: ``ledger keygen|fund|submit|query|verify|demo``;
registered on the main app by :func:`register` (``deploy`` and the governance commands are in
:mod:`chainsense.cli.governance`).

The ledger modules are imported inside each command, not at the top: they load web3 and py-evm
(about a second), which ``chainsense --help`` and every other command must not pay for.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chainsense.errors import ChainsenseError, ConfigError

if TYPE_CHECKING:
    from chainsense.chain.keys import KeyPair
    from chainsense.ledger.ca_quorum import CAQuorum
    from chainsense.ledger.contract import Ledger
    from chainsense.ledger.records import Record

_console = Console()
ledger_app = typer.Typer(
    help="Secure data sharing: deploy the contract, submit, query, verify.", no_args_is_help=True
)

RPC_OPTION = typer.Option(None, "--rpc", help="JSON-RPC URL (repeat for failover).")
NETWORK_OPTION = typer.Option(
    None, "--network", help="Directory (or file) of `chainsense network up`."
)
DEPLOYMENT_OPTION = typer.Option(
    Path("ledger.json"), "--deployment", "-d", help="Deployment file written by `ledger deploy`."
)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=_console,
        transient=True,
    )


def key_option(path: Path | None, what: str) -> KeyPair | None:
    """The key in the file given to option ``what`` (None without one); errors name the option."""
    from chainsense.chain.keys import load_key  # lazy: see the module docstring

    if path is None:
        return None
    try:
        return load_key(path)
    except ChainsenseError as exc:
        raise ConfigError(what, str(exc)) from exc


@ledger_app.command("keygen")
def keygen_cmd(out: Path = typer.Argument(..., help="New key file (hex, mode 0600).")) -> None:  # noqa: B008
    """Create a secp256k1 key (MT, CA or funder) and print its address."""
    from chainsense.chain.keys import KeyPair, save_key  # lazy: see the module docstring

    key = KeyPair.generate()
    save_key(out, key)
    typer.echo(key.address)


@ledger_app.command("fund")
def fund_cmd(
    address: str = typer.Argument(..., help="Account to fund."),
    eth: float = typer.Option(1.0, "--eth", help="Amount in ether."),
    deployment: Path = DEPLOYMENT_OPTION,
    funder_key: Path = typer.Option(None, "--funder-key", help="Default: faucet or dev account."),  # noqa: B008
) -> None:
    """Send ether to an account (MTs pay gas for their submissions)."""
    from chainsense.ledger.deployment import Deployment, chain_of  # lazy: see the docstring

    if not 0 < eth <= 1e6:
        raise ConfigError("eth", f"must be in (0, 1e6], got {eth}")
    chain, faucet = chain_of(Deployment.read(deployment))
    result = chain.fund(address, int(eth * 10**18), key_option(funder_key, "funder-key") or faucet)
    typer.echo(f"funded {address} with {eth} ETH in block {result.block}")


@ledger_app.command("submit")
def submit_cmd(
    records: Path = typer.Argument(  # noqa: B008
        ..., help="Events file (.json list or .csv: poi,slot,reading,x,y)."
    ),
    mt_key: Path = typer.Option(..., "--mt-key", help="The MT's key file."),  # noqa: B008
    ca_urls: list[str] = typer.Option(  # noqa: B008
        ["http://127.0.0.1:8600"],
        "--ca",
        help="CA service URL; repeat for the consortium's CAs (k of them must countersign).",
    ),
    outbox: Path = typer.Option(  # noqa: B008
        None,
        "--outbox",
        help="Outbox SQLite file, the MT's queue of unconfirmed records (default: "
        "<mt address>.outbox in the current directory: run again from the same directory, or "
        "pass the same --outbox, to resend what is still queued there).",
    ),
    batch: bool = typer.Option(False, "--batch", help="Anchor all records under one Merkle root."),
    bundle: Path = typer.Option(Path("bundle.json"), "--bundle", help="Batch mode: proofs file."),  # noqa: B008
    deployment: Path = DEPLOYMENT_OPTION,
) -> None:
    """Sign records as an MT, get them countersigned by the CA and store them on chain.

    Per-record mode keeps every record in the outbox until confirmed: re-running after a crash
    or an outage resubmits exactly what is missing. The outbox numbers records above the last
    nonce the CA countersigned for the MT (asked when the CA refuses one as stale), so a new
    outbox, or one used after `--batch`, loses nothing. Exits with an error when records stay
    queued or are rejected.
    """
    # lazy: see the module docstring
    from chainsense.ledger.ca_client import CAClient
    from chainsense.ledger.ca_quorum import CAQuorum
    from chainsense.ledger.config import LedgerConfig
    from chainsense.ledger.contract import Ledger
    from chainsense.ledger.deployment import Deployment, chain_of
    from chainsense.ledger.events_file import read_events
    from chainsense.ledger.terminal import MobileTerminal

    dep = Deployment.read(deployment)
    key = key_option(mt_key, "mt-key")
    events = read_events(records)
    LedgerConfig(ca_urls=tuple(ca_urls))  # refuses a bad or repeated URL by name
    chain, _ = chain_of(dep)
    ledger = Ledger(chain, dep.contract)
    ca_set = ledger.ca_set()
    threshold = ca_set.threshold
    if threshold > len(ca_urls):
        raise ConfigError("ca", f"the ledger needs {threshold} CAs; {len(ca_urls)} --ca given")
    clients = [CAClient(url) for url in ca_urls]
    ca = CAQuorum(clients, threshold, ledger.domain, ca_set.cas)
    if batch:
        _submit_batch(ledger, ca, key, events, bundle)
        return
    path = (outbox or Path(f"{key.address}.outbox")).resolve()
    term = MobileTerminal(key, path, ledger, ca)
    for e in events:
        term.collect(int(e["poi"]), int(e["slot"]), e["reading"], e["x"], e["y"])
    report = term.flush()
    typer.echo(
        f"confirmed {report.confirmed} (+{report.already_stored} already on chain), "
        f"rejected {report.rejected}, still queued {report.pending}, gas {report.gas_used}; "
        f"outbox {path}"
    )
    if report.rejected:
        for rec, reason in term.rejected()[-min(report.rejected, 5) :]:
            typer.echo(f"  rejected nonce {rec.nonce}: {reason}")
    if report.pending or report.rejected:
        problems = [f"{report.pending} records still queued"] if report.pending else []
        if report.rejected:
            problems.append(f"{report.rejected} records rejected (kept in the outbox)")
        raise ChainsenseError(
            f"submit: {' and '.join(problems)} in {path}; "
            + (
                "run the command again when the CA and chain are reachable"
                if report.pending
                else "see the reasons above"
            )
        )


def _submit_batch(
    ledger: Ledger, ca: CAQuorum, key: KeyPair, events: list[dict[str, float]], bundle: Path
) -> None:
    """Batch mode through the one durable submit (``ledger.batch.submit_batch``): re-running
    after a crash anchors (or finds) the certified root in ``bundle`` instead of certifying
    again."""
    from chainsense.ledger import batch as batching  # lazy: see the module docstring
    from chainsense.ledger.records import record_from_event

    def signed_items() -> list[tuple[Record, bytes]]:
        last = ca.last_nonce(key.address)
        if last is None:
            raise ChainsenseError(f"ca: MT {key.address} is not registered")
        start = last + 1
        items = []
        for i, e in enumerate(events):
            rec = record_from_event(
                key.address, int(e["poi"]), int(e["slot"]), e["reading"], e["x"], e["y"], start + i
            )
            items.append((rec, key.sign_digest(rec.digest(ledger.domain))))
        return items

    if bundle.exists():
        previous = batching.read_bundle(bundle)
        if previous.root_id:
            raise ChainsenseError(
                f"bundle: {bundle} is already anchored as root "
                f"#{previous.root_id}; choose another --bundle"
            )
        typer.echo(f"resuming the certified batch in {bundle}")
    out = batching.submit_batch(ledger, ca, key, bundle, signed_items)
    typer.echo(
        f"anchored {out.bundle.size} records as root #{out.bundle.root_id} "
        f"0x{out.bundle.root.hex()}; proofs in {bundle}"
    )


def _slots(text: str) -> tuple[int, int]:
    try:
        a, _, b = text.partition(":")
        return int(a), int(b or a)
    except ValueError as exc:
        raise ConfigError("slots", f"expected FIRST:LAST, got {text!r}") from exc


@ledger_app.command("query")
def query_cmd(
    record_id: int = typer.Option(None, "--id", help="One record by id."),
    mt: str = typer.Option(None, "--mt", help="All records of an MT address."),
    poi: int = typer.Option(None, "--poi", help="All records of a PoI."),
    slots: str = typer.Option(None, "--slots", help="Records in slot range FIRST:LAST."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
    deployment: Path = DEPLOYMENT_OPTION,
) -> None:
    """Read records from the ledger by id, MT, PoI or slot range (default: all)."""
    from chainsense.ledger.contract import Ledger  # lazy: see the module docstring
    from chainsense.ledger.deployment import Deployment, chain_of

    chosen = [x is not None for x in (record_id, mt, poi, slots)]
    if sum(chosen) > 1:
        raise ConfigError("query", "give at most one of --id, --mt, --poi, --slots")
    slot_range = _slots(slots) if slots is not None else None
    dep = Deployment.read(deployment)
    chain, _ = chain_of(dep)
    ledger = Ledger(chain, dep.contract)
    if record_id is not None:
        rows = [ledger.get_record(record_id)]
    elif mt is not None:
        rows = ledger.records_of_mt(mt)
    elif poi is not None:
        rows = ledger.records_of_poi(poi)
    elif slot_range is not None:
        rows = ledger.records_in_slots(*slot_range)
    else:
        rows = ledger.records()
    if as_json:
        for s in rows:
            typer.echo(
                json.dumps(
                    {"id": s.record_id, "digest": "0x" + s.digest.hex(), **s.record.to_dict()}
                )
            )
        return
    table = Table("id", "mt", "poi", "slot", "reading", "x", "y", "nonce")
    for s in rows:
        r = s.record
        table.add_row(
            str(s.record_id),
            r.mt,
            str(r.poi),
            str(r.slot),
            f"{r.reading_value:g}",
            f"{r.position[0]:g}",
            f"{r.position[1]:g}",
            str(r.nonce),
        )
    _console.print(table)
    _console.print(f"{len(rows)} records")


@ledger_app.command("verify")
def verify_cmd(
    bundle: Path = typer.Option(None, "--bundle", help="Batch bundle to check against its root."),  # noqa: B008
    deployment: Path = DEPLOYMENT_OPTION,
) -> None:
    """Verify every stored record (contract digest, record log, CA countersignature) or a bundle."""
    from chainsense.ledger import batch as batching  # lazy: see the module docstring
    from chainsense.ledger.contract import Ledger
    from chainsense.ledger.deployment import Deployment, chain_of
    from chainsense.ledger.verify import bundle_revocations, verify_ledger

    dep = Deployment.read(deployment)
    chain, _ = chain_of(dep)
    ledger = Ledger(chain, dep.contract)
    if bundle is not None:
        b = batching.read_bundle(bundle)
        if b.contract != ledger.address or b.chain_id != ledger.domain.chain_id:
            raise ChainsenseError("bundle: belongs to another contract or chain")
        off = batching.verify_offchain(ledger, b)
        on = batching.verify_onchain(ledger, b)
        bad = [i for i, (a, c) in enumerate(zip(off, on, strict=True)) if not (a and c)]
        revoked = bundle_revocations(ledger, b)
        bad = sorted({*bad, *revoked.before_anchor})
        typer.echo(
            f"bundle root #{b.root_id}: {len(b.entries) - len(bad)}/{len(b.entries)} "
            "records verified (off chain and on chain)"
        )
        if revoked.after_anchor:
            typer.echo(f"  {len(revoked.after_anchor)} records of MTs revoked after the anchor")
        if revoked.before_anchor:
            typer.echo(f"  {len(revoked.before_anchor)} records of MTs revoked before the anchor")
        if bad:
            raise ChainsenseError(f"verify: {len(bad)} records fail, first index {bad[0]}")
        return
    report = verify_ledger(ledger)
    typer.echo(
        f"{report.ok}/{report.total} records verified (stored digest, record log, "
        f"k CA signatures of the set in office)"
    )
    marked = dict(report.before_revocation)
    for r in report.revocations:
        n = sum(1 for mt in marked.values() if mt == r.mt)
        typer.echo(f"  MT {r.mt} revoked in block {r.block}: {n} records stored before, valid")
    if report.failures:
        for rid, why in report.failures[:10]:
            typer.echo(f"  record {rid}: {why}")
        raise ChainsenseError(f"verify: {len(report.failures)} records fail")


@ledger_app.command("demo")
def demo_cmd(
    records: int = typer.Option(200, "--records", "-n", help="Records to push through."),
    mts: int = typer.Option(4, "--mts", help="Number of MTs."),
    batch: bool = typer.Option(False, "--batch", help="Batch (Merkle) mode."),
    orgs: int = typer.Option(1, "--orgs", help="CA services of the consortium (HTTP)."),
    threshold: int = typer.Option(1, "--threshold", "-k", help="Countersignatures a record needs."),
) -> None:
    """Run the whole protocol on the embedded chain (nothing to start) and print what happened."""
    if not 1 <= records <= 100_000:
        raise ConfigError("records", f"must be in 1..100000, got {records}")
    if not 1 <= mts <= 1000:
        raise ConfigError("mts", f"must be in 1..1000, got {mts}")
    # lazy: see the module docstring
    from chainsense.chain.embedded import EmbeddedChain
    from chainsense.ledger.config import LedgerConfig
    from chainsense.ledger.session import LedgerSession
    from chainsense.sim.events import synthetic_events

    if not 1 <= orgs <= 16:
        raise ConfigError("orgs", f"must be in 1..16, got {orgs}")
    if not 1 <= threshold <= orgs:
        raise ConfigError("threshold", f"must be in 1..{orgs} (--orgs), got {threshold}")
    cfg = LedgerConfig(
        mode="batch" if batch else "record", batch_size=min(records, 5000), threshold=threshold
    )
    with tempfile.TemporaryDirectory(prefix="chainsense-demo-") as tmp, _progress() as progress:
        task = progress.add_task("records", total=records)
        session = LedgerSession(mts, tmp, chain=EmbeddedChain(), cfg=cfg, orgs=orgs)
        try:
            report = session.submit_events(
                synthetic_events(records, mts), lambda n: progress.update(task, completed=n)
            )
            check = session.verify()
        finally:
            session.close()
    summary = {
        "mode": report.mode,
        "contract": session.ledger.address,
        "CAs": f"{threshold} of {orgs} countersign each record",
        "records confirmed": f"{report.confirmed}/{report.records}",
        "transactions": report.transactions,
        "gas per record": f"{report.gas_per_record:,.0f}",
        "throughput": f"{report.records_per_s:,.1f} records/s",
        "verified": f"{check.ok}/{check.checked}",
    }
    for k, v in summary.items():
        typer.echo(f"{k}: {v}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to app."""
    app.add_typer(ledger_app, name="ledger")
