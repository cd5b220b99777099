"""What ``chainsense run`` measured: the result object, the summary table, ``summary.json`` and
the records-per-MT chart."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

from chainsense.files import atomic_write
from chainsense.job.ledger_phase import LedgerFigures
from chainsense.job.options import JobOptions
from chainsense.marl.evaluate import EvalTable


@dataclass
class JobResult:
    """Everything ``chainsense run`` measured, plus where it wrote its files."""

    options: JobOptions
    episode_metrics: dict[str, float]
    comparison: list[EvalTable]
    ledger: LedgerFigures
    phases: dict[str, float] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    training: dict[str, float] = field(default_factory=dict)

    @property
    def wall_seconds(self) -> float:
        return sum(self.phases.values())

    @property
    def comparison_rows(self) -> list[dict[str, str]]:
        """One row per policy: every metric as ``mean ± std``."""
        return [
            {"policy": t.policy} | {k: f"{v:.4f} ± {t.std[k]:.4f}" for k, v in t.mean.items()}
            for t in self.comparison
        ]


def ledger_rows(lg: LedgerFigures) -> list[tuple[str, str]]:
    """What the ledger did, as (quantity, value) rows: part of the summary, and the report's
    ledger table."""
    revoked = ", ".join(lg.revoked) if lg.revoked else "none"
    return [
        ("ledger mode", lg.mode),
        ("CA set", ", ".join(lg.cas)),
        ("countersignatures per record (k of n)", f"{lg.threshold} of {len(lg.cas)}"),
        ("revoked MTs", revoked),
        ("collection events", str(lg.events)),
        ("records on chain", str(lg.records_on_chain)),
        ("transactions", str(lg.transactions)),
        ("gas in total", f"{lg.gas_total:,}"),
        ("gas per record", f"{lg.gas_per_record:,.0f}"),
        ("throughput (records/s)", f"{lg.records_per_s:,.0f}"),
        ("query latency p50 / p99 (ms)", f"{lg.query_p50_ms:.2f} / {lg.query_p99_ms:.2f}"),
        ("records verified", f"{lg.verified} / {lg.events}"),
        ("tampered record detected", "yes" if lg.tamper_detected else "NO"),
        ("every record accounted for", "yes" if lg.all_accounted else "NO"),
    ]


def summary_rows(result: JobResult) -> list[tuple[str, str]]:
    """The summary table printed at the end of ``chainsense run`` (and put in the report)."""
    m, opts = result.episode_metrics, result.options
    return [
        ("policy", opts.policy),
        ("world", f"{opts.params.num_mts} MTs, {opts.params.num_pois} PoIs"),
        ("data collection ratio", f"{m['data_collection_ratio']:.3f}"),
        ("geographic fairness", f"{m['fairness']:.3f}"),
        ("energy usage ratio", f"{m['energy_usage_ratio']:.3f}"),
        ("energy efficiency", f"{m['energy_efficiency']:.3f}"),
        ("collisions", f"{m['collisions']:.0f}"),
        ("chain", opts.ledger.label),
        *ledger_rows(result.ledger),
        ("wall time (s)", f"{result.wall_seconds:.1f}"),
    ]


def write_summary(result: JobResult, path: Path) -> Path:
    """Machine-readable summary (metrics, ledger figures, phase times) as JSON."""
    lg = result.ledger
    data = {
        "policy": result.options.policy,
        "seed": result.options.seed,
        "world": dataclasses.asdict(result.options.params),
        "ledger_config": dataclasses.asdict(result.options.ledger),
        "episode_metrics": result.episode_metrics,
        "comparison": result.comparison_rows,
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
    return atomic_write(path, json.dumps(data, indent=2, default=str))


def plot_ledger(ledger: LedgerFigures, path: Path) -> Path:
    """Bar chart of records per MT, with the verification verdict in the title."""
    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    mts = sorted(ledger.per_mt)
    ax.bar([f"MT {m}" for m in mts], [ledger.per_mt[m] for m in mts], color="#4c72b0")
    verdict = "all verified" if ledger.all_accounted else "VERIFICATION FAILED"
    ax.set_title(f"records on chain per MT ({ledger.mode} mode, {verdict})", fontsize=9)
    ax.set_ylabel("records")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
