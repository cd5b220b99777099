"""The ledger / CA commands: user mistakes exit 2 with one line; a whole session on anvil."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chainsense.cli import main
from test_ledger_support import Anvil, free_port, wait_http


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chainsense", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
    )


def _one_line_error(out: subprocess.CompletedProcess[str], text: str) -> None:
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert text in out.stderr


def _main_error(capsys: pytest.CaptureFixture[str], text: str, *args: str) -> None:
    """Run the CLI entry point in process (fast) and expect exit 2 with ``text`` on stderr."""
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    assert text in " ".join(err.split()), err


CA_A = "0x" + "a1" * 20


def test_user_mistakes_exit_2(tmp_path, capsys) -> None:
    _main_error(capsys, "deployment: file not found", "ledger", "query", "-d", str(tmp_path / "x"))
    (tmp_path / "bad.json").write_text("{broken")
    _main_error(capsys, "is malformed", "ledger", "query", "-d", str(tmp_path / "bad.json"))
    _main_error(capsys, "records: must be in", "ledger", "demo", "--records", "0")
    _main_error(capsys, "threshold: must be in", "ledger", "demo", "--orgs", "2", "-k", "3")
    _main_error(capsys, "give exactly one of", "ledger", "deploy", "--rpc", "http://127.0.0.1:1")
    _main_error(
        capsys, "not an http(s) URL", "ledger", "deploy", "--ca-address", CA_A, "--rpc", "ftp://x"
    )
    _main_error(capsys, "ca: not a 0x-prefixed", "ledger", "deploy", "--ca-address", "0x12")
    _main_error(
        capsys, "appears twice", "ledger", "deploy", "--ca-address", CA_A, "--ca-address", CA_A
    )
    _main_error(
        capsys, "threshold: must be in 1..1", "ledger", "deploy", "--ca-address", CA_A, "-k", "2"
    )
    (tmp_path / "k.key").write_text("0x" + "ab" * 32)
    _main_error(capsys, "refusing to overwrite", "ledger", "keygen", str(tmp_path / "k.key"))
    _main_error(capsys, "expected FIRST:LAST", "ledger", "query", "--slots", "1:x")
    (tmp_path / "ev.json").write_text('[{"poi": 1, "slot": 2, "reading": "a lot", "x": 0, "y": 0}]')
    (tmp_path / "mt.key").write_text("0x" + "cd" * 32)
    dep = tmp_path / "ledger.json"
    dep.write_text(
        json.dumps(
            {
                "chain_id": 1,
                "contract": "0x" + "11" * 20,
                "ca": "0x" + "22" * 20,
                "admin": "0x" + "33" * 20,
                "block": 1,
                "rpc": ["http://127.0.0.1:1"],
            }
        )
    )
    _main_error(
        capsys,
        "records[0]: not a number",
        "ledger",
        "submit",
        str(tmp_path / "ev.json"),
        "--mt-key",
        str(tmp_path / "mt.key"),
        "-d",
        str(dep),
    )
    _main_error(capsys, "no JSON-RPC endpoint reachable", "ledger", "query", "-d", str(dep))
    _main_error(
        capsys,
        "not in the contract's CA set",
        "ca",
        "serve",
        "--key",
        str(tmp_path / "mt.key"),
        "-d",
        str(dep),
    )
    _main_error(
        capsys,
        "proposal: must be 0x",
        "ledger",
        "approve",
        "0x12",
        "--key",
        str(tmp_path / "mt.key"),
    )
    missing, empty = tmp_path / "no-token", tmp_path / "empty-token"
    empty.write_text("\n")
    for token in (missing, empty):
        _main_error(
            capsys,
            "admin-token-file: ",
            "ca",
            "register",
            "0x" + "44" * 20,
            "--ca",
            "http://127.0.0.1:1",
            "--admin-token-file",
            str(token),
        )


def test_demo_runs_the_protocol_on_the_embedded_chain() -> None:
    out = cli("ledger", "demo", "--records", "30", "--mts", "3")
    assert out.returncode == 0, out.stderr
    assert "records confirmed: 30/30" in out.stdout and "verified: 30/30" in out.stdout
    out = cli("ledger", "demo", "--records", "300", "--mts", "3", "--batch")
    assert "records confirmed: 300/300" in out.stdout and "transactions: 1" in out.stdout
    out = cli("ledger", "demo", "--records", "40", "--mts", "2", "--orgs", "3", "-k", "2")
    assert "CAs: 2 of 3" in out.stdout and "verified: 40/40" in out.stdout, out.stderr


@pytest.mark.slow
def test_cli_session_against_anvil_and_ca_service(tmp_path) -> None:
    anvil = Anvil().start()
    port = free_port()
    ca_url = f"http://127.0.0.1:{port}"
    ca = None
    try:
        assert cli("ledger", "keygen", "ca.key", cwd=tmp_path).returncode == 0
        mt = cli("ledger", "keygen", "mt.key", cwd=tmp_path).stdout.strip()
        out = cli("ledger", "deploy", "--rpc", anvil.url, "--ca-key", "ca.key", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        ca = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chainsense",
                "ca",
                "serve",
                "--key",
                "ca.key",
                "--port",
                str(port),
            ],
            cwd=tmp_path,
        )
        wait_http(ca_url + "/ca")
        assert cli("ca", "register", mt, "--ca", ca_url, cwd=tmp_path).returncode == 0
        assert cli("ledger", "fund", mt, "--eth", "2", cwd=tmp_path).returncode == 0
        events = [{"poi": i % 3, "slot": i, "reading": 0.5 * i, "x": 1, "y": 2} for i in range(6)]
        (tmp_path / "ev.json").write_text(json.dumps(events))
        out = cli("ledger", "submit", "ev.json", "--mt-key", "mt.key", "--ca", ca_url, cwd=tmp_path)
        assert out.returncode == 0 and "confirmed 6" in out.stdout, out.stdout + out.stderr
        out = cli("ledger", "query", "--poi", "0", "--json", cwd=tmp_path)
        rows = [json.loads(line) for line in out.stdout.splitlines()]
        assert [r["slot"] for r in rows] == [0, 3] and rows[1]["reading"] == 1_500_000
        out = cli("ledger", "verify", cwd=tmp_path)
        assert "6/6 records verified" in out.stdout, out.stdout + out.stderr
        out = cli(
            "ledger",
            "submit",
            "ev.json",
            "--mt-key",
            "mt.key",
            "--ca",
            ca_url,
            "--batch",
            cwd=tmp_path,
        )
        assert "anchored 6 records" in out.stdout, out.stdout + out.stderr
        out = cli("ledger", "verify", "--bundle", "bundle.json", cwd=tmp_path)
        assert "6/6 records verified" in out.stdout
        bundle = json.loads((tmp_path / "bundle.json").read_text())
        bundle["entries"][2]["record"]["reading"] += 1
        (tmp_path / "bundle.json").write_text(json.dumps(bundle))
        _one_line_error(
            cli("ledger", "verify", "--bundle", "bundle.json", cwd=tmp_path), "1 records fail"
        )
    finally:
        if ca is not None:
            ca.terminate()
            ca.wait(timeout=20)
        anvil.stop()
