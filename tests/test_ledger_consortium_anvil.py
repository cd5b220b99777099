"""The consortium through the command line on a real anvil node, k = 2 of 3 CA services.

Three organisations' CA keys, three `chainsense ca serve` processes, an MT submitting through
all three; one service is stopped mid-run and collection goes on; a revocation is proposed by one
CA and approved by a second (`ledger revoke` / `ledger approve`); the CA services then
refuse the MT's new records (``mt_revoked``: they read the revocation off chain), and
`ledger verify` marks the earlier ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from test_ledger_cli import _one_line_error, cli
from test_ledger_support import Anvil, free_port, wait_http


def _serve(tmp: Path, i: int, port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "chainsense", "ca", "serve", "--key", f"ca{i}.key"]
    cmd += ["--db", f"ca{i}.db", "--port", str(port)]
    return subprocess.Popen(cmd, cwd=tmp)


@pytest.mark.slow
def test_k_2_of_3_on_anvil_with_a_ca_down_and_a_revocation(tmp_path: Path) -> None:
    anvil = Anvil().start()
    services: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(3):
            assert cli("ledger", "keygen", f"ca{i}.key", cwd=tmp_path).returncode == 0
        mt = cli("ledger", "keygen", "mt.key", cwd=tmp_path).stdout.strip()
        keys = [a for i in range(3) for a in ("--ca-key", f"ca{i}.key")]
        out = cli("ledger", "deploy", "--rpc", anvil.url, *keys, "-k", "2", cwd=tmp_path)
        assert out.returncode == 0 and "2 of 3 CAs" in out.stdout, out.stdout + out.stderr
        dep = json.loads((tmp_path / "ledger.json").read_text())
        assert dep["threshold"] == 2 and len(dep["cas"]) == 3
        ports = [free_port() for _ in range(3)]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        services = [_serve(tmp_path, i, p) for i, p in enumerate(ports)]
        for url in urls:
            wait_http(url + "/ca")
            assert cli("ca", "register", mt, "--ca", url, cwd=tmp_path).returncode == 0
        assert cli("ledger", "fund", mt, "--eth", "2", cwd=tmp_path).returncode == 0
        events = [{"poi": i % 3, "slot": i, "reading": 0.5 * i, "x": 1, "y": 2} for i in range(6)]
        (tmp_path / "ev.json").write_text(json.dumps(events))
        cas = [a for url in urls for a in ("--ca", url)]
        submit = ("ledger", "submit", "ev.json", "--mt-key", "mt.key", *cas)
        out = cli(*submit, cwd=tmp_path)
        assert out.returncode == 0 and "confirmed 6" in out.stdout, out.stdout + out.stderr
        services[0].terminate()  # one organisation's CA goes down: 2 of 3 still answer
        services[0].wait(timeout=20)
        out = cli(*submit, cwd=tmp_path)
        assert out.returncode == 0 and "confirmed 6" in out.stdout, out.stdout + out.stderr
        out = cli("ledger", "verify", cwd=tmp_path)
        assert "12/12 records verified" in out.stdout, out.stdout + out.stderr
        # governance: CA 1 proposes the revocation, CA 2 approves it (their keys pay gas)
        for address in dep["cas"]:
            assert cli("ledger", "fund", address, "--eth", "1", cwd=tmp_path).returncode == 0
        out = cli("ledger", "revoke", mt, "--key", "ca1.key", cwd=tmp_path)
        assert out.returncode == 0 and "1 approval(s), pending" in out.stdout, out.stderr
        proposal = out.stdout.split("proposal ")[1].split(",")[0]
        _one_line_error(
            cli("ledger", "approve", proposal, "--key", "ca1.key", cwd=tmp_path),
            "already approved by this CA",
        )
        _one_line_error(
            cli("ledger", "approve", proposal, "--key", "mt.key", cwd=tmp_path),
            "only a CA of the current set",
        )
        out = cli("ledger", "approve", proposal, "--key", "ca2.key", cwd=tmp_path)
        assert out.returncode == 0 and "executed" in out.stdout, out.stdout + out.stderr
        out = cli(*submit, cwd=tmp_path)  # the CA services read the revocation off chain
        assert out.returncode == 2 and "CA: mt_revoked" in out.stdout, out.stdout
        assert "rejected 6, still queued 0" in out.stdout, out.stdout
        out = cli("ledger", "verify", cwd=tmp_path)
        assert out.returncode == 0 and "12/12 records verified" in out.stdout, out.stderr
        assert "12 records stored before, valid" in out.stdout
        out = cli("ledger", "governance", cwd=tmp_path)
        assert "k = 2 of 3" in out.stdout and f"revoked MT {mt}" in out.stdout
        assert "executed, 2 approval(s)" in out.stdout
    finally:
        for service in services:
            if service.poll() is None:
                service.terminate()
                service.wait(timeout=20)
        anvil.stop()
