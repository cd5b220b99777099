"""The HTML report of ``chainsense run``: map, animation, metrics vs baselines, ledger figures,
and the plots of any experiment directories the user asked to include (reproduce, ddos)."""

from __future__ import annotations

import csv
from pathlib import Path

from chainsense.experiments.report import Report
from chainsense.job.summary import JobResult, ledger_rows, summary_rows

_MAX_INCLUDED_ROWS = 60


def _include_dir(report: Report, directory: Path) -> None:
    """Every PNG of an experiment's output directory, and its CSV tables (first rows)."""
    report.section(f"Experiment: {directory.name}")
    pngs = sorted(directory.glob("*.png"))
    csvs = sorted(directory.glob("*.csv"))
    if not pngs and not csvs:
        report.add_text(f"{directory.name} holds no plots or tables.")
    for png in pngs:
        report.add_figure(png, png.stem.replace("_", " "))
    for table in csvs:
        with table.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        shown = rows[:_MAX_INCLUDED_ROWS]
        caption = table.name + (
            f" (first {len(shown)} of {len(rows)} rows)" if rows[len(shown) :] else ""
        )
        report.add_table(shown, caption=caption)


def write_job_report(result: JobResult, path: Path) -> Path:
    """Build and write the report; returns its path."""
    opts, lg = result.options, result.ledger
    report = Report(
        "chainsense run",
        subtitle=(
            f"{opts.policy} fleet on a {opts.params.width:g} x {opts.params.height:g} world with "
            f"{opts.params.num_pois} PoIs and {opts.params.num_mts} MTs; records shared through "
            f"the {opts.ledger.label} chain in {lg.mode} mode."
        ),
    )
    report.section("Summary")
    report.add_status(
        "every collection event stored on chain and verified, tampering detected",
        lg.all_accounted,
        f"({lg.verified} of {lg.events} records verified)",
    )
    report.add_table(
        [{"quantity": k, "value": v} for k, v in summary_rows(result)], table_id="summary"
    )

    report.section("Episode")
    report.add_figure(result.files["map"], "map, trajectories and visit heat")
    report.add_figure(result.files["animation"], "episode animation")

    report.section("Fleet against the baselines")
    report.add_text(
        f"Mean ± standard deviation over {opts.episodes} seeded episodes "
        f"(seeds {opts.seed}..{opts.seed + opts.episodes - 1})."
    )
    report.add_table(result.comparison_rows, table_id="comparison")
    report.add_figure(result.files["metrics_plot"], "metrics by policy")
    if result.training:
        report.add_table(
            [{"quantity": k, "value": f"{v:,.1f}"} for k, v in result.training.items()],
            caption="quick training run",
        )

    report.section("Ledger")
    report.add_table([{"quantity": k, "value": v} for k, v in ledger_rows(lg)], table_id="ledger")
    for failure in lg.verify_failures[:50]:
        report.add_status("verification", False, failure)
    report.add_figure(result.files["ledger_plot"], "records per MT")

    report.section("Timing")
    report.add_table(
        [{"phase": k, "seconds": f"{v:.2f}"} for k, v in result.phases.items()], table_id="timing"
    )
    for directory in opts.include:
        _include_dir(report, directory)
    return report.write(path)
