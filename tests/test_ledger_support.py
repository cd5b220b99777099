"""Shared pieces of the ledger tests (imported by the test_ledger_* modules; holds no tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from chainsense.chain.base import Chain
from chainsense.chain.embedded import EmbeddedChain
from chainsense.chain.keys import KeyPair
from chainsense.devnet import free_ports
from chainsense.ledger.ca import CertificateAuthority
from chainsense.ledger.contract import Ledger, deploy_ledger
from chainsense.ledger.records import Record

REPO = Path(__file__).resolve().parents[1]
ANVIL = REPO / "node_modules" / ".bin" / "anvil"


@dataclass
class World:
    chain: Chain
    ledger: Ledger
    ca_key: KeyPair
    ca: CertificateAuthority
    mts: list[KeyPair]

    def record(self, mt: int = 0, nonce: int = 0, **kw: int) -> Record:
        fields = {"poi": 1, "slot": 2, "reading": 3_000_000, "x": 4, "y": 5} | kw
        return Record(self.mts[mt].address, nonce=nonce, **fields)

    def certified(self, mt: int = 0, nonce: int = 0, **kw: int) -> tuple[Record, bytes]:
        rec = self.record(mt, nonce, **kw)
        sig = self.mts[mt].sign_digest(rec.digest(self.ledger.domain))
        return rec, self.ca.countersign(rec, sig).ca_signature


def make_world(tmp: Path, chain: Chain | None = None, n_mts: int = 3) -> World:
    chain = chain or EmbeddedChain()
    ca_key = KeyPair.derive("test", 0, "ca")
    mts = [KeyPair.derive("test", i) for i in range(n_mts)]
    ledger = deploy_ledger(chain, ca_key.address)
    for k in [ca_key, *mts]:
        chain.fund(k.address, 10**18)
    ca = CertificateAuthority(ca_key, tmp / "ca.db", ledger.domain)
    for k in mts:
        ca.register(k.address, {"kind": "uav"})
    return World(chain, ledger, ca_key, ca, mts)


def free_port() -> int:
    """A port free for a server to bind, out of the kernel's ephemeral range (see free_ports)."""
    return free_ports(1)[0]


def wait_http(url: str, timeout: float = 30.0, json_rpc: bool = False) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json_rpc:
                body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
                httpx.post(url, json=body, timeout=1.0)
            else:
                httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up in {timeout}s")


def anvil_path() -> Path:
    """The anvil binary, or skip (only outside CI: in CI the test must run)."""
    if ANVIL.exists():
        return ANVIL
    found = shutil.which("anvil")
    if found:
        return Path(found)
    if os.environ.get("CI"):
        pytest.fail("anvil is missing in CI: run scripts/install-anvil.sh")
    pytest.skip("node_modules/.bin/anvil absent (run scripts/install-anvil.sh); CI unset")


class Anvil:
    """A real anvil node on a free loopback port, optionally persisting its state to a file."""

    def __init__(self, state: Path | None = None, port: int | None = None) -> None:
        self.binary = anvil_path()
        self.port = port or free_port()
        self.state = state
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Anvil:
        cmd = [str(self.binary), "--host", "127.0.0.1", "--port", str(self.port), "--silent"]
        if self.state is not None:
            cmd += ["--state", str(self.state)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(self.url, json_rpc=True)
        return self

    def stop(self) -> None:
        """SIGTERM: anvil dumps its state (with --state) and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
