"""The main job, ``chainsense run``: the paper's whole system in one pass.

map -> fleet (loaded, or trained quickly) -> one recorded episode -> every collection event becomes
a record the MT signs, the CA countersigns and the chain stores (one per transaction, or batches
under a Merkle root) -> every record is read back and verified, and a tampered copy is shown to
fail -> metrics against the random and greedy baselines -> a summary table and one HTML report.

Each phase is a small function; :func:`run_job` strings them together and times them.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jax

from chainsense.errors import ChainsenseError, ConfigError
from chainsense.sim.params import WorldParams
from chainsense.stats import percentile

PolicyName = Literal["maddpg", "iddpg", "greedy", "random"]
POLICIES: tuple[str, ...] = ("maddpg", "iddpg", "greedy", "random")
LEARNED: tuple[str, ...] = ("maddpg", "iddpg")


@dataclass(frozen=True)
class JobOptions:
    """What ``chainsense run`` was asked to do; validated on construction."""

    params: WorldParams
    policy: str = "maddpg"
    checkpoint: Path | None = None
    train_minutes: float = 2.0
    train_config: Any = None  # marl.config.TrainConfig; None = its defaults
    mode: Literal["record", "batch"] = "batch"
    batch_size: int = 500
    network: Path | None = None
    rpc: tuple[str, ...] = ()
    episodes: int = 10
    seed: int = 0
    out: Path = Path("runs/latest")
    include: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ConfigError(
                "policy", f"must be one of {', '.join(POLICIES)}, got {self.policy!r}"
            )
        if self.checkpoint is not None:
            if self.policy not in LEARNED:
                raise ConfigError(
                    "checkpoint", f"only a learned policy loads one, not {self.policy}"
                )
            if not self.checkpoint.is_file():
                raise ConfigError("checkpoint", f"file not found: {self.checkpoint}")
        if not 0 < self.train_minutes <= 24 * 60:
            raise ConfigError("train_minutes", f"must be in (0, 1440], got {self.train_minutes}")
        if self.mode not in ("record", "batch"):
            raise ConfigError("mode", f"must be 'record' or 'batch', got {self.mode!r}")
        if not 1 <= self.batch_size <= 100_000:
            raise ConfigError("batch_size", f"must be in [1, 100000], got {self.batch_size}")
        if self.network is not None and self.rpc:
            raise ConfigError("network", "give either a network file or RPC endpoints, not both")
        if not 1 <= self.episodes <= 10_000:
            raise ConfigError("episodes", f"must be in [1, 10000], got {self.episodes}")
        if not 0 <= self.seed < 2**31:
            raise ConfigError("seed", f"must be in [0, 2^31), got {self.seed}")
        for path in self.include:
            if not path.is_dir():
                raise ConfigError("include", f"not a directory: {path}")

    @property
    def chain_label(self) -> str:
        if self.network is not None:
            return f"network file {self.network}"
        if self.rpc:
            return f"JSON-RPC {', '.join(self.rpc)}"
        return "embedded (in-process EVM)"


@dataclass
class LedgerFigures:
    """What the ledger did with the episode's records."""

    mode: str
    events: int
    records_on_chain: int
    transactions: int
    gas_total: int
    submit_seconds: float
    verified: int
    verify_failures: list[str]
    tamper_detected: bool
    query_p50_ms: float
    query_p99_ms: float
    per_mt: dict[int, int]

    @property
    def gas_per_record(self) -> float:
        return self.gas_total / max(1, self.records_on_chain)

    @property
    def records_per_s(self) -> float:
        return self.records_on_chain / self.submit_seconds if self.submit_seconds > 0 else 0.0

    @property
    def all_accounted(self) -> bool:
        """Every collection event is on chain, verifies, and tampering was caught."""
        return (
            self.records_on_chain == self.events
            and self.verified == self.events
            and not self.verify_failures
            and self.tamper_detected
        )


@dataclass
class JobResult:
    """Everything ``chainsense run`` measured, plus where it wrote its files."""

    options: JobOptions
    episode_metrics: dict[str, float]
    comparison: list[dict[str, Any]]
    ledger: LedgerFigures
    phases: dict[str, float] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    training: dict[str, float] = field(default_factory=dict)

    @property
    def wall_seconds(self) -> float:
        return sum(self.phases.values())


Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``; the CLI draws it as a Rich progress bar."""


def _noop(_phase: str, _done: int, _total: int) -> None:
    return None


@contextmanager
def _timed(phases: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = time.perf_counter() - start


def make_fleet(opts: JobOptions, progress: Progress) -> tuple[Any, dict[str, float]]:
    """The policy that drives the MTs: a baseline, a saved fleet, or a quickly trained one."""
    from chainsense.marl.policies import get_policy

    if opts.policy not in LEARNED:
        return get_policy(opts.policy), {}
    from chainsense.marl.learned import load_policy

    if opts.checkpoint is not None:
        policy, _ = load_policy(opts.policy, opts.checkpoint, opts.params)
        return policy, {}
    from chainsense.marl import session
    from chainsense.marl.config import TrainConfig

    cfg = opts.train_config or TrainConfig()
    cfg = dataclasses.replace(cfg, algo=opts.policy)
    total = 1000

    def on_chunk(_row: dict[str, float], frac: float) -> None:
        progress("training", int(frac * total), total)

    result = session.run(
        cfg,
        opts.params,
        seed=opts.seed,
        minutes=opts.train_minutes,
        out_dir=opts.out / "fleet",
        on_chunk=on_chunk,
    )
    progress("training", total, total)
    policy, _ = load_policy(opts.policy, result.files["checkpoint"], opts.params)
    info = {
        "env_steps": float(result.env_steps),
        "updates": float(result.updates),
        "seconds": result.seconds,
    }
    return policy, info


def _events(rollout: Any) -> list[tuple[int, int, int, float, float, float]]:
    return [(e.mt, e.poi, e.slot, e.amount, e.x, e.y) for e in rollout.events]


def _chain(opts: JobOptions) -> tuple[Any, Any]:
    """The chain backend and the key that funds MT accounts (None: the node's dev account)."""
    from chainsense.ledger.chain import EmbeddedChain, RpcChain, chain_from_network_file

    if opts.network is not None:
        return chain_from_network_file(opts.network)
    if opts.rpc:
        chain = RpcChain(list(opts.rpc))
        try:
            _ = chain.chain_id  # reach a node now, before minutes of training
        except Exception:
            chain.close()
            raise
        return chain, None
    return EmbeddedChain(), None


def _percentile_ms(samples: Sequence[float], q: float) -> float:
    """Latency percentile in ms; 0 when nothing was queried (an episode with no events)."""
    return 1000.0 * percentile(samples, q) if samples else 0.0


def _expected_records(events: Sequence[tuple[int, int, int, float, float, float]]) -> Counter:
    """Event identities in on-chain units (MT index, PoI, slot, fixed-point reading, x, y)."""
    from chainsense.ledger.records import to_fixed

    return Counter(
        (mt, poi, slot, to_fixed(a, "reading"), to_fixed(x, "x"), to_fixed(y, "y"))
        for mt, poi, slot, a, x, y in events
    )


def share_on_ledger(
    opts: JobOptions,
    chain: Any,
    funder: Any,
    events: Sequence[tuple[int, int, int, float, float, float]],
    progress: Progress,
) -> LedgerFigures:
    """Sign, countersign, store, then read back and verify every record of the episode."""
    from chainsense.ledger.session import LedgerSession

    workdir = opts.out / "ledger"
    if workdir.exists():  # a previous run's CA registry, outboxes and bundles: not this chain's
        shutil.rmtree(workdir)
    session = LedgerSession(
        opts.params.num_mts,
        workdir,
        chain=chain,
        funder=funder,
        seed=opts.seed,
        mode=opts.mode,
        batch_size=opts.batch_size,
    )
    try:
        total = len(events)
        progress("ledger: sign, countersign, store", 0, total)
        report = session.submit_events(
            events, lambda n: progress("ledger: sign, countersign, store", n, total)
        )
        ledger = session.ledger
        index = {k.address: i for i, k in enumerate(session.mt_keys)}
        progress("ledger: read back and verify", 0, 1)
        latencies: list[float] = []
        on_chain: list[Any] = []
        if opts.mode == "record":
            stored = ledger.records()  # every record, read back from the contract
            on_chain = [s.record for s in stored]
            sample = random.Random(opts.seed).sample(stored, min(200, len(stored)))
            for s in sample:
                t0 = time.perf_counter()
                ledger.get_record(s.record_id)
                latencies.append(time.perf_counter() - t0)
        else:
            for bundle in session.bundles:
                info = ledger.get_batch(bundle.root_id)
                if info.size != len(bundle.entries):
                    raise ChainsenseError(f"batch {bundle.root_id}: size on chain {info.size}")
                on_chain.extend(e.record for e in bundle.entries)
                for entry in bundle.entries[:20]:
                    t0 = time.perf_counter()
                    ledger.verify_record(bundle.root_id, entry.record, entry.proof)
                    latencies.append(time.perf_counter() - t0)
        found = Counter((index.get(r.mt, -1), r.poi, r.slot, r.reading, r.x, r.y) for r in on_chain)
        expected = _expected_records(events)
        verification = session.verify(onchain_sample=16)
        failures = list(verification.failures)
        missing = expected - found
        extra = found - expected
        if missing:
            failures.append(f"{sum(missing.values())} collection events have no record on chain")
        if extra:
            failures.append(f"{sum(extra.values())} records on chain match no collection event")
        tamper_detected = _tamper_is_detected(session, on_chain)
        progress("ledger: read back and verify", 1, 1)
        return LedgerFigures(
            mode=report.mode,
            events=total,
            records_on_chain=len(on_chain),
            transactions=report.transactions,
            gas_total=report.gas_total,
            submit_seconds=report.seconds,
            verified=verification.ok,
            verify_failures=failures,
            tamper_detected=tamper_detected,
            query_p50_ms=_percentile_ms(latencies, 50),
            query_p99_ms=_percentile_ms(latencies, 99),
            per_mt={i: sum(1 for e in events if e[0] == i) for i in range(opts.params.num_mts)},
        )
    finally:
        session.close()


def _tamper_is_detected(session: Any, on_chain: Sequence[Any]) -> bool:
    """Alter one stored record's reading by one unit; every check must then reject it."""
    if not on_chain:
        return True  # nothing to tamper with; vacuously nothing undetected
    ledger = session.ledger
    if session.mode == "record":
        original = on_chain[0]
        forged = dataclasses.replace(original, reading=original.reading + 1)
        return ledger.verify_stored(forged) is None and ledger.verify_stored(original) is not None
    from chainsense.ledger.batch import verify_offchain

    bundle = session.bundles[0]
    entry = bundle.entries[0]
    forged = dataclasses.replace(entry.record, reading=entry.record.reading + 1)
    forged_bundle = dataclasses.replace(
        bundle, entries=(dataclasses.replace(entry, record=forged),)
    )
    on_chain_rejects = not ledger.verify_record(bundle.root_id, forged, entry.proof)
    off_chain_rejects = not verify_offchain(ledger, forged_bundle)[0]
    genuine_passes = ledger.verify_record(bundle.root_id, entry.record, entry.proof)
    return on_chain_rejects and off_chain_rejects and bool(genuine_passes)


def compare_policies(opts: JobOptions, fleet: Any) -> tuple[list[Any], list[dict[str, Any]]]:
    """The fleet against the random and greedy baselines over ``opts.episodes`` seeds."""
    from chainsense.marl.evaluate import evaluate
    from chainsense.marl.policies import get_policy

    seeds = range(opts.seed, opts.seed + opts.episodes)
    contenders = [(opts.policy, fleet)]
    contenders += [(n, get_policy(n)) for n in ("greedy", "random") if n != opts.policy]
    tables = [evaluate(p, opts.params, seeds, name) for name, p in contenders]
    rows = []
    for t in tables:
        row: dict[str, Any] = {"policy": t.policy}
        for k, v in t.mean.items():
            row[k] = f"{v:.4f} ± {t.std[k]:.4f}"
        rows.append(row)
    return tables, rows


def run_job(opts: JobOptions, progress: Progress = _noop) -> JobResult:
    """Run the whole system once (see the module docstring); writes into ``opts.out``."""
    phases: dict[str, float] = {}
    files: dict[str, Path] = {}
    chain, funder = _chain(opts)  # connect first: an unreachable node fails before any work
    try:
        opts.out.mkdir(parents=True, exist_ok=True)
        with _timed(phases, "fleet"):
            fleet, training = make_fleet(opts, progress)
        result = _run_with_chain(opts, chain, funder, fleet, training, phases, files, progress)
    finally:
        chain.close()
    return result


def _run_with_chain(
    opts: JobOptions,
    chain: Any,
    funder: Any,
    fleet: Any,
    training: dict[str, float],
    phases: dict[str, float],
    files: dict[str, Path],
    progress: Progress,
) -> JobResult:
    """Episode, ledger, baselines and report, once the chain and the fleet are ready."""
    from chainsense.marl.evaluate import rollout, write_table
    from chainsense.sim.render import animate_episode, plot_map

    with _timed(phases, "episode"):
        progress("episode", 0, 1)
        episode = rollout(fleet, opts.params, jax.random.PRNGKey(opts.seed), record=True)
        progress("episode", 1, 1)
        files["map"] = plot_map(
            episode.final_state,
            opts.params,
            opts.out / "map.png",
            positions=episode.positions,
            heat=True,
            title=f"{opts.policy} fleet, seed {opts.seed}",
        )
        files["animation"] = animate_episode(episode, opts.params, opts.out / "episode.gif")
    events = _events(episode)
    with _timed(phases, "ledger"):
        ledger = share_on_ledger(opts, chain, funder, events, progress)
        files["ledger_plot"] = plot_ledger(ledger, opts.out / "ledger.png")
    with _timed(phases, "baselines"):
        progress("baselines", 0, 1)
        tables, rows = compare_policies(opts, fleet)
        _, _, files["metrics_plot"] = write_table(tables, opts.out / "metrics")
        progress("baselines", 1, 1)
    result = JobResult(
        options=opts,
        episode_metrics=episode.metrics,
        comparison=rows,
        ledger=ledger,
        phases=phases,
        files=files,
        training=training,
    )
    from chainsense.experiments.job_report import write_job_report

    files["summary"] = write_summary(result, opts.out / "summary.json")
    files["report"] = write_job_report(result, opts.out / "report.html")
    return result


def plot_ledger(ledger: LedgerFigures, path: Path) -> Path:
    """Bar chart of records per MT, with the verification verdict in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    mts = sorted(ledger.per_mt)
    ax.bar([f"MT {m}" for m in mts], [ledger.per_mt[m] for m in mts], color="#4c72b0")
    verdict = "all verified" if ledger.all_accounted else "VERIFICATION FAILED"
    ax.set_title(f"records on chain per MT ({ledger.mode} mode, {verdict})", fontsize=9)
    ax.set_ylabel("records")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def summary_rows(result: JobResult) -> list[tuple[str, str]]:
    """The summary table printed at the end of ``chainsense run`` (and put in the report)."""
    m, lg = result.episode_metrics, result.ledger
    rows = [
        ("policy", result.options.policy),
        ("world", f"{result.options.params.num_mts} MTs, {result.options.params.num_pois} PoIs"),
        ("data collection ratio", f"{m['data_collection_ratio']:.3f}"),
        ("geographic fairness", f"{m['fairness']:.3f}"),
        ("energy usage ratio", f"{m['energy_usage_ratio']:.3f}"),
        ("energy efficiency", f"{m['energy_efficiency']:.3f}"),
        ("collisions", f"{m['collisions']:.0f}"),
        ("chain", result.options.chain_label),
        ("ledger mode", lg.mode),
        ("collection events", str(lg.events)),
        ("records on chain", str(lg.records_on_chain)),
        ("transactions", str(lg.transactions)),
        ("gas per record", f"{lg.gas_per_record:,.0f}"),
        ("throughput (records/s)", f"{lg.records_per_s:,.0f}"),
        ("query latency p50 / p99 (ms)", f"{lg.query_p50_ms:.2f} / {lg.query_p99_ms:.2f}"),
        ("records verified", f"{lg.verified} / {lg.events}"),
        ("tampered record detected", "yes" if lg.tamper_detected else "NO"),
        ("every record accounted for", "yes" if lg.all_accounted else "NO"),
        ("wall time (s)", f"{result.wall_seconds:.1f}"),
    ]
    return rows


def write_summary(result: JobResult, path: Path) -> Path:
    """Machine-readable summary (metrics, ledger figures, phase times) as JSON."""
    lg = result.ledger
    data = {
        "policy": result.options.policy,
        "seed": result.options.seed,
        "world": dataclasses.asdict(result.options.params),
        "episode_metrics": result.episode_metrics,
        "comparison": result.comparison,
        "ledger": {
            **{k: v for k, v in dataclasses.asdict(lg).items() if k != "per_mt"},
            "per_mt": {str(k): v for k, v in lg.per_mt.items()},
            "gas_per_record": lg.gas_per_record,
            "records_per_s": lg.records_per_s,
            "all_accounted": lg.all_accounted,
        },
        "training": result.training,
        "phases_seconds": result.phases,
    }
    path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    return path
