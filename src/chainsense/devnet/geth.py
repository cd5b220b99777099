"""The geth binary: find a 1.13 build, and the command line that runs one node of a network."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

from chainsense.devnet.genesis import genesis_hex, read_genesis
from chainsense.devnet.netfile import NodeInfo
from chainsense.errors import ChainsenseError

GETH_VERSION = "1.13."
_REPO_ROOT = Path(__file__).resolve().parents[3]


def find_geth(explicit: str | Path | None = None) -> Path:
    """Locate a geth 1.13 binary: explicit path, $CHAINSENSE_GETH, the repo's .tools, or PATH."""
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(Path(explicit))
    elif os.environ.get("CHAINSENSE_GETH"):
        candidates.append(Path(os.environ["CHAINSENSE_GETH"]))
    else:
        candidates.append(_REPO_ROOT / ".tools" / "bin" / "geth")
        on_path = shutil.which("geth")
        if on_path:
            candidates.append(Path(on_path))
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            out = subprocess.run([str(c), "version"], capture_output=True, text=True, timeout=30)
            version = next(
                (
                    ln.split(":", 1)[1].strip()
                    for ln in out.stdout.splitlines()
                    if ln.startswith("Version:")
                ),
                "",
            )
            if not version.startswith(GETH_VERSION):
                raise ChainsenseError(
                    f"geth: {c} is version {version or 'unknown'}; Clique sealing needs 1.13.x "
                    "(run scripts/install-geth.sh)"
                )
            return c
    raise ChainsenseError(
        "geth: not found (run scripts/install-geth.sh, or set CHAINSENSE_GETH to a geth 1.13 "
        "binary)"
    )


def geth_available() -> bool:
    """True when a usable geth 1.13 binary can be found (for skipping optional work)."""
    try:
        find_geth()
    except ChainsenseError:
        return False
    return True


# A transaction pool for the pipelines of many MTs: geth keeps 16 executable transactions per
# account once 5,120 are pooled and drops the rest. (Flags, not config.toml: a [Eth.TxPool] or
# [Eth.Miner] section there replaces every default of the section with zero, e.g. the miner's
# recommit interval, which made a single sealer seal two blocks of one height.)
TXPOOL_FLAGS = (
    "--txpool.accountslots", "1024",
    "--txpool.globalslots", "32768",
    "--txpool.accountqueue", "256",
    "--txpool.globalqueue", "4096",
)  # fmt: skip


def genesis_gas_limit(netdir: Path) -> int:
    """The block gas limit of the network's genesis, which a sealer keeps as its gas ceiling
    (geth's default ceiling, 30M, would shrink larger blocks back to it block by block)."""
    return genesis_hex(read_genesis(netdir), "gasLimit")


def node_argv(geth: Path, netdir: Path, node: NodeInfo, chain_id: int) -> list[str]:
    datadir = netdir / node.datadir
    argv = [
        str(geth),
        "--datadir", str(datadir),
        "--config", str(datadir / "config.toml"),
        "--networkid", str(chain_id),
        "--syncmode", "full",
        "--nodiscover",
        "--nat", "none",
        "--ipcdisable",
        "--cache", "128",
        "--http",
        "--http.addr", node.host,
        "--http.port", str(node.http_port),
        "--http.api", "eth,net,web3,txpool,clique",
        "--authrpc.addr", "127.0.0.1",
        "--authrpc.port", str(node.authrpc_port),
        "--verbosity", "3",
        *TXPOOL_FLAGS,
    ]  # fmt: skip
    if node.role == "sealer":
        assert node.address is not None
        argv += [
            "--mine",
            "--miner.gaslimit", str(genesis_gas_limit(netdir)),
            "--miner.etherbase", node.address,
            "--unlock", node.address,
            "--password", str(datadir / "password.txt"),
            # Unlocking next to an HTTP endpoint needs this; the endpoint is loopback-only and
            # exposes no personal/admin API.
            "--allow-insecure-unlock",
        ]  # fmt: skip
    return argv


def spawn(geth: Path, netdir: Path, node: NodeInfo, chain_id: int) -> int:
    datadir = netdir / node.datadir
    log = open(datadir / "geth.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            node_argv(geth, netdir, node, chain_id),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the CLI; stopped by pid via `network down`
        )
    finally:
        log.close()
    # Reap the node the moment it exits, whoever stops it (or if it crashes): without a waiter a
    # stopped geth stays a zombie of this process until something happens to call waitpid.
    threading.Thread(target=proc.wait, name=f"reap-{node.name}", daemon=True).start()
    return proc.pid
