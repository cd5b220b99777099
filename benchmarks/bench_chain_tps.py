"""Ledger throughput, Caliper style: per configuration the send rate, throughput, latency from
MT signature to confirmation (p50/p99), success ratio (records confirmed and verified) and gas.

Configurations: geth Clique networks of 1, 3 and 5 sealers + 1 follower (block period 1 s,
confirmations as `chainsense run` requires them: 1 block on top with several sealers), 16 MTs
submitting concurrently at --rate records/s; then the embedded chain (py-evm in this process) per
record, and in batch mode. Every record of every configuration is verified afterwards
(`LedgerSession.verify`: digest, event and CA signature of each stored record).

With the figures come the CPU seconds per record of this client process (MT and CA signing,
countersigning, transaction signing, SQLite) and of the geth nodes together (from /proc), and
the load average: on a machine with C cores the per-record rate cannot exceed C / (CPU seconds
per record), whatever the chain does.

Usage: .venv/bin/python benchmarks/bench_chain_tps.py [--records 20000] [--rate 600]
       [--sealers 1 3 5] [--embedded-records 2000] [--batch-records 20000] [--json OUT]
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
from chainsense.chain.embedded import EmbeddedChain
from chainsense.experiments.chain_tps import LoadReport, run_load
from chainsense.ledger.config import LedgerConfig, connect_network
from chainsense.ledger.session import LedgerSession
from chainsense.sim.events import synthetic_events

MTS = 16
RECORD = LedgerConfig(mode="record")
CLOCK = os.sysconf("SC_CLK_TCK")


def node_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLOCK


def geth_run(sealers: int, records: int, rate: float, tmp: Path) -> dict[str, Any]:
    netdir = tmp / f"net-{sealers}"
    spec = network.NetworkSpec(sealers=sealers, followers=1, period=1)
    with network.running(netdir, spec) as info:
        pids = [n.pid for n in network.load(netdir).nodes]
        chain, faucet = connect_network(netdir)
        try:
            session = LedgerSession(
                MTS, tmp / f"ledger-{sealers}", chain=chain, funder=faucet, seed=sealers, cfg=RECORD
            )
            events = synthetic_events(records, MTS, pois=100, seed=sealers)
            load0 = os.getloadavg()[0]
            geth0 = node_cpu_seconds(pids)
            report = run_load(session, events, send_rate=rate, label=f"geth {sealers}+1")
            geth_cpu = node_cpu_seconds(pids) - geth0
            session.close()
        finally:
            chain.close()
    del info
    return _figures(report, load0, geth_cpu)


def _figures(report: LoadReport, load: float, geth_cpu: float | None) -> dict[str, Any]:
    out: dict[str, Any] = report.as_dict() | {"load_average_1m": load}
    n = max(1, report.confirmed)
    out["client_cpu_s_per_record"] = report.client_cpu_s / n
    if geth_cpu is not None:
        out["geth_cpu_s"] = geth_cpu
        out["geth_cpu_s_per_record"] = geth_cpu / n
    return out


def embedded_per_record(records: int, tmp: Path) -> dict[str, Any]:
    session = LedgerSession(MTS, tmp / "embedded", chain=EmbeddedChain(), seed=7, cfg=RECORD)
    events = synthetic_events(records, MTS, pois=100, seed=7)
    load0 = os.getloadavg()[0]
    report = run_load(session, events, send_rate=0, label="embedded, per record")
    session.close()
    return _figures(report, load0, None)


def embedded_batch(records: int, batch_size: int, tmp: Path) -> dict[str, Any]:
    cfg = LedgerConfig(mode="batch", batch_size=batch_size)
    session = LedgerSession(MTS, tmp / "batch", chain=EmbeddedChain(), cfg=cfg, seed=8)
    events = synthetic_events(records, MTS, pois=100, seed=8)
    load0 = os.getloadavg()[0]
    cpu0, t0 = time.process_time(), time.perf_counter()
    rep = session.submit_events(events)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    check = session.verify()
    session.close()
    return {
        "label": f"embedded, batch of {batch_size}",
        "records": records,
        "confirmed": rep.confirmed,
        "verified": check.ok,
        "success_ratio": check.ok / records,
        "seconds": wall,
        "throughput": rep.confirmed / wall,
        "client_cpu_s_per_record": cpu / max(1, rep.confirmed),
        "gas_per_record": rep.gas_per_record,
        "load_average_1m": load0,
    }


def _print(fig: dict[str, Any]) -> None:
    rate = fig.get("send_rate")
    send = "all at once" if rate == 0 else f"{rate:7.1f}/s" if rate is not None else "batch"
    lat = ""
    if "latency_p50_s" in fig:
        lat = f"latency p50 {fig['latency_p50_s']:5.2f} s p99 {fig['latency_p99_s']:5.2f} s  "
    geth = ""
    if "geth_cpu_s_per_record" in fig:
        geth = f", geth {fig['geth_cpu_s_per_record'] * 1e3:.2f}"
    print(
        f"{fig['label']:<24} send {send:>11}  throughput {fig['throughput']:8.1f}/s  {lat}"
        f"success {fig['success_ratio']:6.1%} ({fig['verified']}/{fig['records']})  "
        f"gas/record {fig['gas_per_record']:,.0f}  CPU ms/record: client "
        f"{fig['client_cpu_s_per_record'] * 1e3:.3g}{geth}  load {fig['load_average_1m']:.1f}",
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=20_000, help="records per geth network")
    p.add_argument("--rate", type=float, default=600.0, help="send rate, records/s (0: burst)")
    p.add_argument("--sealers", type=int, nargs="*", default=[1, 3, 5])
    p.add_argument("--embedded-records", type=int, default=2_000)
    p.add_argument("--batch-records", type=int, default=20_000)
    p.add_argument("--batch-size", type=int, default=5_000)
    p.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = p.parse_args()
    print(f"cpus: {len(os.sched_getaffinity(0))}; load average: {os.getloadavg()}; MTs: {MTS}")
    figures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-tps-") as d:
        tmp = Path(d)
        if args.sealers and not network.geth_available():
            print("geth 1.13 not found (scripts/install-geth.sh): geth configurations skipped")
            args.sealers = []
        for sealers in args.sealers:
            figures.append(geth_run(sealers, args.records, args.rate, tmp))
            _print(figures[-1])
        if args.embedded_records:
            figures.append(embedded_per_record(args.embedded_records, tmp))
            _print(figures[-1])
        if args.batch_records:
            figures.append(embedded_batch(args.batch_records, args.batch_size, tmp))
            _print(figures[-1])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
