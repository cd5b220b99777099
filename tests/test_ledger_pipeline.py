"""The pipelined per-record path: pooled blocks on the embedded chain, chunks of sends per MT,
one dry run, grouped outbox writes, and a SIGKILL in the middle of a pipeline on a real node."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from eth_abi.grammar import ABIType, BasicType, TupleType, parse
from eth_utils import to_checksum_address
from eth_utils.abi import get_abi_input_types
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

from chainsense.chain.embedded import EmbeddedChain
from chainsense.chain.errors import ChainError
from chainsense.chain.keys import KeyPair
from chainsense.chain.rpc import RpcChain
from chainsense.ledger.artifacts import load_artifact
from chainsense.ledger.ca import CertificateAuthority
from chainsense.ledger.config import LedgerConfig
from chainsense.ledger.contract import Ledger, deploy_ledger
from chainsense.ledger.session import LedgerSession
from chainsense.ledger.terminal import MobileTerminal
from chainsense.ledger.verify import verify_ledger
from chainsense.sim.events import synthetic_events
from test_ledger_support import Anvil, World, make_world


@pytest.fixture
def world(tmp_path) -> World:
    return make_world(tmp_path)


def test_embedded_chain_mines_a_pipeline_as_one_block(world: World) -> None:
    chain = world.chain
    sender = world.mts[0]
    before = chain.block_number()
    to = world.mts[1].address
    hashes = [chain.send(sender, to=to, value=i + 1, gas=21_000) for i in range(5)]
    assert chain.collect_receipts(hashes) == 5
    blocks = {chain.wait(h).block for h in hashes}
    assert blocks == {before + 1}  # five transactions, one block
    assert chain.block_number() == before + 1


def test_a_transaction_the_evm_refuses_is_dropped_with_its_reason(world: World) -> None:
    chain = world.chain
    sender = world.mts[0]
    good = chain.send(sender, to=world.mts[1].address, value=1, gas=21_000)
    chain._nonces[sender.address] += 3  # a gap: the node count is the truth, not this one
    gapped = chain.send(sender, to=world.mts[1].address, value=1, gas=21_000)
    assert chain.wait(good).status == 1
    with pytest.raises(ChainError, match="dropped"):
        chain.wait(gapped, timeout=1)
    chain.forget_nonce(sender.address)
    assert chain.wait(chain.send(sender, to=world.mts[1].address, value=1, gas=21_000)).status == 1


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    return deploy_ledger(EmbeddedChain(), KeyPair.derive("test", 0, "ca").address)


def _values(abi_type: ABIType) -> st.SearchStrategy[Any]:
    """Values of any ABI type (so the test follows the contract's ABI as it changes)."""
    if abi_type.arrlist:
        last = abi_type.arrlist[-1]
        inner = _values(abi_type.item_type)
        size = last[0] if last else None
        return st.lists(inner, min_size=size or 0, max_size=size or 3)
    if isinstance(abi_type, TupleType):
        return st.tuples(*(_values(c) for c in abi_type.components))
    assert isinstance(abi_type, BasicType)
    if abi_type.base == "address":
        return st.binary(min_size=20, max_size=20).map(to_checksum_address)
    if abi_type.base in ("uint", "int"):
        bits = int(abi_type.sub or 256)
        low = 0 if abi_type.base == "uint" else -(2 ** (bits - 1))
        return st.integers(low, 2**bits - 1 if low == 0 else 2 ** (bits - 1) - 1)
    if abi_type.base == "bool":
        return st.booleans()
    if abi_type.base == "bytes" and abi_type.sub:
        return st.binary(min_size=int(abi_type.sub), max_size=int(abi_type.sub))
    assert abi_type.base in ("bytes", "string"), abi_type.base
    return st.binary(max_size=130) if abi_type.base == "bytes" else st.text(max_size=40)


SUBMIT_ABI = next(e for e in load_artifact().abi if e.get("name") == "submit")


@settings(max_examples=40, deadline=None)
@given(args=st.tuples(*(_values(parse(t)) for t in get_abi_input_types(SUBMIT_ABI))))
def test_calldata_equals_web3s_encoding(ledger: Ledger, args: tuple[Any, ...]) -> None:
    reference = Web3().eth.contract(abi=load_artifact().abi)
    assert ledger.encode("submit", *args) == reference.encode_abi("submit", args=list(args))


def _terminal(world: World, tmp_path, window: int) -> MobileTerminal:
    term = MobileTerminal(world.mts[0], tmp_path / "o.db", world.ledger, world.ca)
    term.pipeline.window = window
    return term


def test_chunks_confirm_every_record_once_in_order(world: World, tmp_path) -> None:
    term = _terminal(world, tmp_path, window=4)
    term.collect_many([(i % 3, i, 0.5 * i, 1.0, 2.0) for i in range(11)])
    seen: list[int] = []
    term.pipeline.on_confirmed = lambda records: seen.extend(r.nonce for r in records)
    report = term.flush()
    assert (report.certified, report.confirmed, report.rejected, report.pending) == (11, 11, 0, 0)
    assert sorted(seen) == list(range(11))
    mine = world.ledger.records_of_mt(world.mts[0].address)
    assert [s.record.nonce for s in mine] == list(range(11))
    assert verify_ledger(world.ledger).ok == 11
    assert term.flush().confirmed == 0 and world.ledger.record_count() == 11


def test_a_forged_ca_signature_is_refused_by_the_contract_not_skipped(
    world: World, tmp_path
) -> None:
    """Records whose CA signature does not recover to the CA in office are dry-run (or mined and
    explained): the contract's reason marks them rejected; the genuine ones are stored."""
    term = _terminal(world, tmp_path, window=3)
    term.collect_many([(1, i, 1.0, 1.0, 1.0) for i in range(6)])
    assert term.certify() == 6
    forger = KeyPair.derive("forger", 0)
    digest = bytes(term._db.execute("SELECT digest FROM outbox WHERE nonce = 2").fetchone()[0])
    term._db.execute(
        "UPDATE outbox SET ca_signature = ? WHERE nonce = 2", (forger.sign_digest(digest),)
    )
    report = term.submit()
    assert (report.confirmed, report.rejected, report.pending) == (5, 1, 0)
    [(record, reason)] = term.rejected()
    assert record.nonce == 2 and "CA signature" in reason
    assert world.ledger.record_count() == 5


class OutageAfter(EmbeddedChain):
    """A real embedded chain whose node becomes unreachable after ``n`` transactions."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.left = n

    def _send_raw(self, raw: bytes, tx_hash: str) -> None:
        if self.left == 0:
            raise ChainError("node unreachable")
        self.left -= 1
        super()._send_raw(raw, tx_hash)


def test_an_outage_mid_pipeline_leaves_the_rest_queued(tmp_path) -> None:
    chain = OutageAfter(10**9)
    world = make_world(tmp_path, chain=chain)
    term = _terminal(world, tmp_path, window=4)
    term.collect_many([(1, i, 1.0, 1.0, 1.0) for i in range(10)])
    chain.left = 6
    report = term.flush()
    assert (report.confirmed, report.pending) == (6, 4)
    assert term.counts() == {"confirmed": 6, "sent": 2, "certified": 2}
    chain.left = 10**9
    report = term.flush()
    assert (report.confirmed, report.already_stored, report.pending) == (4, 0, 0)
    assert [s.record.nonce for s in world.ledger.records_of_mt(world.mts[0].address)] == list(
        range(10)
    )


def test_session_flushes_mts_in_parallel_and_verifies(tmp_path) -> None:
    session = LedgerSession(
        6, tmp_path / "s", chain=EmbeddedChain(), cfg=LedgerConfig(mode="record")
    )
    report = session.submit_events(synthetic_events(60, 6, pois=7))
    assert (report.confirmed, report.rejected) == (60, 0)
    check = session.verify()
    assert (check.checked, check.ok, check.failures) == (60, 60, ())
    session.close()


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from chainsense.chain.keys import KeyPair
    from chainsense.chain.rpc import RpcChain
    from chainsense.ledger.ca import CertificateAuthority
    from chainsense.ledger.contract import Ledger
    from chainsense.ledger.terminal import MobileTerminal

    url, address, tmp, kill_at = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])

    class DiesMidPipeline(RpcChain):
        sent = 0
        def _send_raw(self, raw, tx_hash):
            super()._send_raw(raw, tx_hash)  # the node has it...
            DiesMidPipeline.sent += 1
            if DiesMidPipeline.sent == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)  # ...and the MT dies before its hash is kept

    ledger = Ledger(DiesMidPipeline([url]), address)
    ca = CertificateAuthority(KeyPair.derive("test", 0, "ca"), tmp / "ca.db", ledger.domain)
    term = MobileTerminal(KeyPair.derive("test", 0), tmp / "mt.db", ledger, ca)
    term.pipeline.window = 4
    term.collect_many([(i, i, 0.5 * i, 1.0, 2.0) for i in range(10)])
    term.flush()
    """
)


def test_sigkill_mid_pipeline_loses_and_duplicates_nothing(tmp_path) -> None:
    node = Anvil().start()
    try:
        chain = RpcChain([node.url])
        world = make_world(tmp_path, chain=chain)
        world.ca.close()
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, node.url, world.ledger.address, str(tmp_path), "6"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        assert world.ledger.record_count() == 6  # anvil mined every transaction it was sent
        ca = CertificateAuthority(world.ca_key, tmp_path / "ca.db", world.ledger.domain)
        term = MobileTerminal(world.mts[0], tmp_path / "mt.db", world.ledger, ca)
        # chunk 1 (nonces 0-3) was sent, chunk 2 (4-7) marked sent; its receipts were never read
        assert term.counts() == {"sent": 8, "certified": 2}
        report = term.flush()
        assert (report.confirmed, report.already_stored, report.pending) == (4, 6, 0)
        nonces = [s.record.nonce for s in world.ledger.records_of_mt(world.mts[0].address)]
        assert sorted(nonces) == list(range(10))
        assert verify_ledger(world.ledger).ok == 10
    finally:
        node.stop()
