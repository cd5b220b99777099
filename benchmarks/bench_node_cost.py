"""What a consortium's sealing nodes cost: per node and per 1,000 records, for 1, 3 and 5
organisations (one sealer each, `network up --orgs N`), with the per-record path's throughput
reported the way Hyperledger Caliper does (send rate, throughput, latency p50/p99, success ratio).

Per configuration: the network idles for --idle seconds (CPU of an idle sealer: what merely
keeping a chain alive costs), then 16 MTs submit --records records at --rate records/s through the
per-record ledger client, and every record is verified. Measured per node from /proc and the
file system: CPU seconds during the load (and per 1,000 records), peak resident memory, growth
of its data directory; gas per record from the receipts. All nodes share this machine, so the
CPU figures are what the nodes used, not what a dedicated host would allow; state the load.

Usage: .venv/bin/python benchmarks/bench_node_cost.py [--orgs 1 3 5] [--records 2000]
       [--rate 200] [--idle 10] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from chainsense import devnet as network
from chainsense.experiments.chain_tps import run_load
from chainsense.experiments.procstats import UsageSampler, cpu_seconds
from chainsense.ledger.config import LedgerConfig, connect_network
from chainsense.ledger.session import LedgerSession
from chainsense.sim.events import synthetic_events

MTS = 16


def disk_bytes(path: Path) -> int:
    """Bytes of every file under ``path`` (a node's data directory)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def one_config(orgs: int, records: int, rate: float, idle: float, tmp: Path) -> dict[str, Any]:
    netdir = tmp / f"orgs-{orgs}"
    spec = network.NetworkSpec(orgs=orgs, followers=0, period=1)
    with network.running(netdir, spec) as info:
        nodes = info.nodes
        cpu0 = {n.name: cpu_seconds(n.pid) or 0.0 for n in nodes}
        time.sleep(idle)
        idle_cpu = {n.name: (cpu_seconds(n.pid) or 0.0) - cpu0[n.name] for n in nodes}
        chain, faucet = connect_network(netdir)
        try:
            session = LedgerSession(
                MTS, tmp / f"ledger-{orgs}", chain=chain, funder=faucet, seed=orgs,
                cfg=LedgerConfig(mode="record"),
            )  # fmt: skip
            events = synthetic_events(records, MTS, pois=100, seed=orgs)
            disk0 = {n.name: disk_bytes(netdir / n.datadir) for n in nodes}
            load0 = os.getloadavg()[0]
            cpu1 = {n.name: cpu_seconds(n.pid) or 0.0 for n in nodes}
            samplers = {n.name: UsageSampler([n.pid]) for n in nodes}
            for s in samplers.values():
                s.__enter__()
            report = run_load(session, events, send_rate=rate, label=f"{orgs} org(s)")
            for s in samplers.values():
                s.__exit__(None, None, None)
            cpu2 = {n.name: cpu_seconds(n.pid) or 0.0 for n in nodes}
            time.sleep(2 * info.period)  # let the last blocks reach the disk
            disk1 = {n.name: disk_bytes(netdir / n.datadir) for n in nodes}
            session.close()
        finally:
            chain.close()
    per_k = 1000 / max(1, report.confirmed)
    per_node = [
        {
            "node": n.name,
            "idle_cpu_pct": 100 * idle_cpu[n.name] / idle,
            "cpu_s": cpu2[n.name] - cpu1[n.name],
            "cpu_s_per_1k": (cpu2[n.name] - cpu1[n.name]) * per_k,
            "rss_peak_mib": samplers[n.name].usage.rss_mib,
            "disk_growth_mib": (disk1[n.name] - disk0[n.name]) / 2**20,
            "disk_mib_per_1k": (disk1[n.name] - disk0[n.name]) / 2**20 * per_k,
        }
        for n in nodes
    ]
    return report.as_dict() | {"orgs": orgs, "load_average_1m": load0, "nodes": per_node}


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows)


def _print(fig: dict[str, Any]) -> None:
    rows = fig["nodes"]
    print(
        f"{fig['orgs']} org(s): send {fig['send_rate']:6.1f}/s  throughput "
        f"{fig['throughput']:6.1f}/s  latency p50 {fig['latency_p50_s']:.2f} s p99 "
        f"{fig['latency_p99_s']:.2f} s  success {fig['success_ratio']:.1%} "
        f"({fig['verified']}/{fig['records']})  gas/record {fig['gas_per_record']:,.0f}  "
        f"load {fig['load_average_1m']:.1f}\n"
        f"   per node (mean of {len(rows)}): idle CPU {_mean(rows, 'idle_cpu_pct'):.2f}% of a "
        f"core; under load CPU {_mean(rows, 'cpu_s_per_1k'):.2f} s per 1k records, RSS peak "
        f"{_mean(rows, 'rss_peak_mib'):.0f} MiB, disk {_mean(rows, 'disk_mib_per_1k'):.2f} MiB "
        f"per 1k records; gas per 1k records {fig['gas_per_record'] * 1000:,.0f}",
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--orgs", type=int, nargs="*", default=[1, 3, 5])
    p.add_argument("--records", type=int, default=2_000)
    p.add_argument("--rate", type=float, default=200.0, help="send rate, records/s")
    p.add_argument("--idle", type=float, default=10.0, help="idle seconds measured first")
    p.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = p.parse_args()
    if not network.geth_available():
        raise SystemExit("geth 1.13 not found (scripts/install-geth.sh)")
    print(f"cpus: {len(os.sched_getaffinity(0))}; load average: {os.getloadavg()}; MTs: {MTS}")
    figures = []
    cpu0, t0 = time.process_time(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as d:
        for orgs in args.orgs:
            figures.append(one_config(orgs, args.records, args.rate, args.idle, Path(d)))
            _print(figures[-1])
    print(
        f"wall {time.perf_counter() - t0:.0f} s, this process {time.process_time() - cpu0:.0f} "
        f"CPU-s; load average now {os.getloadavg()}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
