"""Fault drill on a running geth network: nodes die while MTs submit records; nothing is lost.

Mobile terminals (the ledger's :class:`MobileTerminal`, durable SQLite outbox, in-process CA)
submit records in rounds through the ledger client (failover over every node, transactions to
followers first), all MTs flushing at once as ``chainsense run`` does, each through the
pipelined path (chunks of up to 128 transactions in flight, nonces counted locally). In round
``fail_after`` the chosen nodes are crashed (SIGKILL) *while* the MTs flush, once a quarter of
the round's records are stored: transactions are in flight in every state (in a dead node's
pool, mined, not yet sent). The remaining sealers must keep sealing; after ``restart_after``
rounds the nodes are restarted and must resync. The MTs carry on right after the restart, while
the restarted nodes are still behind: the ledger client steers around nodes whose head lags.
Afterwards every record an MT collected must be stored exactly once and readable, with the same
content, from every node.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from chainsense import devnet as network
from chainsense.chain.keys import KeyPair
from chainsense.chain.rpc import RpcChain
from chainsense.errors import ChainsenseError
from chainsense.ledger.ca import CertificateAuthority
from chainsense.ledger.config import connect_network
from chainsense.ledger.contract import Ledger, deploy_ledger
from chainsense.ledger.terminal import MobileTerminal

Progress = Callable[[str], None]


@dataclass(frozen=True)
class FaultReport:
    """Outcome of one drill (times in seconds)."""

    collected: int
    confirmed: int
    lost: int
    duplicates: int
    nodes_checked: int
    failed_nodes: tuple[str, ...]
    outage_s: float
    blocks_sealed_during_outage: int
    recover_s: float
    failovers: int
    lag_skips: int
    rebroadcasts: int
    flushes_with_pending: int
    rounds_s: float

    @property
    def rate(self) -> float:
        """Records confirmed per second over the rounds (outage and restart included)."""
        return self.confirmed / self.rounds_s if self.rounds_s > 0 else 0.0

    def lines(self) -> list[str]:
        return [
            f"records collected (submitted)  {self.collected}",
            f"records confirmed              {self.confirmed}",
            f"records lost                   {self.lost}",
            f"duplicate records on chain     {self.duplicates}",
            f"nodes checked (all records)    {self.nodes_checked}",
            f"nodes crashed                  {', '.join(self.failed_nodes)}",
            f"outage (s)                     {self.outage_s:.1f}",
            f"blocks sealed during outage    {self.blocks_sealed_during_outage}",
            f"time to recover (s)            {self.recover_s:.1f}",
            f"client failovers               {self.failovers}",
            f"requests steered off lagging nodes {self.lag_skips}",
            f"transactions handed over again {self.rebroadcasts}",
            f"flushes that left records queued {self.flushes_with_pending}",
            f"rounds (s), records per second {self.rounds_s:.1f}, {self.rate:.1f}",
        ]


def _head_of_live(directory: Path) -> int:
    heads = [s.head for s in network.status(directory) if s.alive and s.head is not None]
    if not heads:
        raise ChainsenseError("fault drill: no node answers")
    return max(heads)


class _RecoveryClock:
    """Times, in the background, how long restarted nodes take to be peered and past the head
    the network had at restart (the MTs do not wait for it)."""

    def __init__(self, directory: Path, names: list[str], timeout: float) -> None:
        self.started = time.monotonic()
        self.synced: float | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._watch, args=(directory, names, timeout), daemon=True
        )
        self._thread.start()

    def _watch(self, directory: Path, names: list[str], timeout: float) -> None:
        try:
            network.wait_ready(directory, timeout, names=names, min_peers=1, min_head=1)
            self.synced = time.monotonic()
        except BaseException as exc:  # reported by seconds()
            self.error = exc

    def seconds(self) -> float:
        self._thread.join()
        if self.synced is None:
            raise ChainsenseError(f"fault drill: restarted nodes did not resync: {self.error}")
        return self.synced - self.started


def _flush_all(terminals: Sequence[MobileTerminal]) -> int:
    """Flush every MT at once (one thread each); returns how many left records queued."""
    with ThreadPoolExecutor(len(terminals)) as pool:
        return sum(r.pending > 0 for r in pool.map(lambda mt: mt.flush(), terminals))


class _MidFlushKill:
    """Crashes ``names`` (SIGKILL) from a background thread as soon as the contract holds
    ``stored`` records, i.e. while the MTs' flushes are under way."""

    def __init__(
        self, directory: Path, ledger: Ledger, names: tuple[str, ...], stored: int
    ) -> None:
        self.head = 0
        self.at = 0.0
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._watch, args=(directory, ledger, names, stored), daemon=True
        )
        self._thread.start()

    def _watch(self, directory: Path, ledger: Ledger, names: tuple[str, ...], stored: int) -> None:
        try:
            deadline = time.monotonic() + 300
            while ledger.record_count() < stored and time.monotonic() < deadline:
                time.sleep(0.05)
            self.head = _head_of_live(directory)
            for name in names:
                network.kill_node(directory, name)
            self.at = time.monotonic()
        except BaseException as exc:  # reported by result()
            self.error = exc

    def result(self) -> tuple[int, float]:
        """(head when the nodes were crashed, monotonic time of the crash)."""
        self._thread.join()
        if self.error is not None or not self.at:
            raise ChainsenseError(f"fault drill: the nodes were not crashed: {self.error}")
        return self.head, self.at


def run_drill(
    directory: str | Path,
    *,
    mts: int = 3,
    rounds: int = 6,
    per_round: int = 2,
    fail_after: int = 2,
    restart_after: int = 4,
    fail: tuple[str, ...] = ("sealer-3", "follower-1"),
    seed: int = 0,
    recover_timeout: float = 90.0,
    progress: Progress | None = None,
) -> FaultReport:
    """Run the drill on the (running) network in ``directory``; see the module docstring."""
    if not 0 < fail_after < restart_after < rounds:  # a round after the restart, at least
        raise ChainsenseError("fault drill: need 0 < fail_after < restart_after < rounds")
    d = Path(directory)
    info = network.load(d)
    for name in fail:
        info.node(name)  # names a real node
    say = progress or (lambda _m: None)
    chain, faucet = connect_network(d, timeout=3.0, cooldown=2.0)
    try:
        ca_key = KeyPair.derive(seed, 0, "ca")
        ledger = deploy_ledger(chain, ca_key.address, deployer=faucet)
        with tempfile.TemporaryDirectory(prefix="chainsense-drill-") as tmp:
            ca = CertificateAuthority(ca_key, Path(tmp) / "ca.sqlite", ledger.domain)
            terminals = []
            for i in range(mts):
                key = KeyPair.derive(seed, i, "mt")
                ca.register(key.address)
                chain.fund(key.address, 10**18, faucet)
                terminals.append(MobileTerminal(key, Path(tmp) / f"mt{i}.sqlite", ledger, ca))
            collected = 0
            pending_flushes = 0
            t_rounds = time.monotonic()
            t_fail = t_restart = 0.0
            clock: _RecoveryClock | None = None
            head_at_fail = head_at_restart = 0
            for r in range(rounds):
                killer: _MidFlushKill | None = None
                if r == fail_after:
                    stored = ledger.record_count() + max(1, mts * per_round // 4)
                    killer = _MidFlushKill(d, ledger, fail, stored)
                if r == restart_after:
                    head_at_restart = _head_of_live(d)
                    for name in fail:
                        network.start_node(d, name)
                    t_restart = time.monotonic()
                    clock = _RecoveryClock(d, list(fail), recover_timeout)
                    say(
                        f"round {r}: restarted {', '.join(fail)} at head {head_at_restart}; "
                        "MTs carry on without waiting for them"
                    )
                for i, mt in enumerate(terminals):
                    mt.collect_many(
                        [((r * 7 + i + k) % 64, r, 1.5 + k % 8, i, r) for k in range(per_round)]
                    )
                    collected += per_round
                pending_flushes += _flush_all(terminals)
                if killer is not None:
                    head_at_fail, t_fail = killer.result()
                    say(f"round {r}: crashed {', '.join(fail)} mid-flush at head {head_at_fail}")
                say(f"round {r}: {collected} collected")
            rounds_s = time.monotonic() - t_rounds
            # Recovery: restarted nodes peered, past the head the network had at restart, and
            # holding every record confirmed so far.
            assert clock is not None  # restart_after < rounds
            recover_s = clock.seconds()
            say(f"restarted nodes resynced {recover_s:.1f} s after the restart")
            deadline = time.monotonic() + recover_timeout
            for mt in terminals:  # anything queued during the outage goes out now
                while mt.pending() and time.monotonic() < deadline:
                    mt.flush()
                    time.sleep(0.5)
            confirmed = [rid for mt in terminals for _, rid in mt.confirmed()]
            total_onchain = ledger.record_count()
            while time.monotonic() < deadline:  # restarted nodes must hold every record
                counts = []
                for name in fail:
                    node_chain = RpcChain([info.node(name).rpc], timeout=5.0)
                    try:
                        counts.append(Ledger(node_chain, ledger.address).record_count())
                    except ChainsenseError:
                        counts.append(-1)
                    finally:
                        node_chain.close()
                if all(c == total_onchain for c in counts):
                    break
                time.sleep(0.3)
            # Every node, independently, must return every confirmed record unchanged.
            expected = {rid: rec for mt in terminals for rec, rid in mt.confirmed()}
            nodes_ok = 0
            lost_ids: set[int] = set()
            for node in network.load(d).nodes:
                node_chain = RpcChain([node.rpc], timeout=5.0)
                try:
                    # one log scan per 1000 ids (a get_record per id would be a scan each)
                    held = {
                        s.record_id: s.record for s in Ledger(node_chain, ledger.address).records()
                    }
                    lost_ids.update(rid for rid, rec in expected.items() if held.get(rid) != rec)
                    nodes_ok += 1
                finally:
                    node_chain.close()
            for mt in terminals:
                mt.close()
            ca.close()
        outage = t_restart - t_fail
        return FaultReport(
            collected=collected,
            confirmed=len(confirmed),
            lost=collected - len(set(confirmed)) + len(lost_ids),
            duplicates=total_onchain - len(set(confirmed)),
            nodes_checked=nodes_ok,
            failed_nodes=fail,
            outage_s=outage,
            blocks_sealed_during_outage=head_at_restart - head_at_fail,
            recover_s=recover_s,
            failovers=chain.failovers,
            lag_skips=chain.lag_skips,
            rebroadcasts=chain.rebroadcasts,
            flushes_with_pending=pending_flushes,
            rounds_s=rounds_s,
        )
    finally:
        chain.close()
