"""Start, stop and restart a network's nodes (the network file records their pids)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from chainsense.devnet.genesis import NetworkSpec, first_block_due, prepare
from chainsense.devnet.geth import find_geth, spawn
from chainsense.devnet.health import Progress, wait_ready
from chainsense.devnet.netfile import NetworkInfo, NodeInfo, load, save
from chainsense.devnet.processes import pid_alive, terminate
from chainsense.devnet.services import stop_services
from chainsense.errors import ChainsenseError, ConfigError


def up(
    directory: str | Path,
    spec: NetworkSpec | None = None,
    *,
    geth: str | Path | None = None,
    timeout: float = 90.0,
    progress: Progress | None = None,
) -> NetworkInfo:
    """Create and start a network in ``directory`` (must be absent or empty); wait until ready:
    ``timeout`` s from the moment block 1 is due (``genesis.first_block_not_before``).

    On any failure every started node is stopped and everything written is removed.
    """
    spec = spec or NetworkSpec()
    if timeout <= 0:
        raise ConfigError("timeout", f"must be positive, got {timeout}")
    binary = find_geth(geth)
    d = Path(directory).resolve()  # same spelling as load(), which the pid checks use
    if d.exists() and (not d.is_dir() or any(d.iterdir())):
        raise ChainsenseError(
            f"network: {d} already exists and is not empty "
            "(use `network down --wipe` or another --dir)"
        )
    created = not d.exists()
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    info: NetworkInfo | None = None
    try:
        if progress:
            progress(
                f"generating keys and genesis for {spec.sealers} sealers "
                f"+ {spec.followers} followers"
            )
        info = prepare(d, spec, binary)
        started: list[NodeInfo] = []
        for node in info.nodes:
            started.append(replace(node, pid=spawn(binary, d, node, spec.chain_id)))
            info = replace(info, nodes=(*started, *info.nodes[len(started) :]))
            save(info)
        hold = first_block_due(d)
        if progress:
            progress(f"started {len(started)} geth processes; block 1 is due in {hold:.0f} s")
        return wait_ready(d, timeout + hold, progress=progress)
    except BaseException:
        if info is not None:
            for node in info.nodes:
                if node.pid:
                    terminate(node.pid, d / node.datadir, timeout=5.0)
        if created:
            shutil.rmtree(d, ignore_errors=True)
        else:
            for child in d.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise


def stop_node(directory: str | Path, name: str, timeout: float = 10.0) -> None:
    """Stop one node (SIGTERM, then SIGKILL after ``timeout`` s); its data is kept."""
    info = load(directory)
    node = info.node(name)
    terminate(node.pid, info.directory / node.datadir, timeout)


def kill_node(directory: str | Path, name: str) -> None:
    """Crash one node with SIGKILL (no clean shutdown), as a fault-injection step."""
    info = load(directory)
    node = info.node(name)
    if pid_alive(node.pid, info.directory / node.datadir):
        os.kill(node.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and pid_alive(node.pid, info.directory / node.datadir):
            time.sleep(0.05)


def start_node(directory: str | Path, name: str, *, geth: str | Path | None = None) -> NodeInfo:
    """(Re)start a stopped node with its recorded ports and keys; records the new pid."""
    info = load(directory)
    node = info.node(name)
    if pid_alive(node.pid, info.directory / node.datadir):
        raise ChainsenseError(f"network: {name} is already running (pid {node.pid})")
    binary = find_geth(geth)
    new = replace(node, pid=spawn(binary, info.directory, node, info.chain_id))
    save(replace(info, nodes=tuple(new if n.name == name else n for n in info.nodes)))
    return new


def down(directory: str | Path, *, wipe: bool = False, timeout: float = 10.0) -> list[str]:
    """Stop the network's extra services, then every node by pid (SIGTERM then SIGKILL); with
    ``wipe`` delete the network directory.

    Returns the names of nodes that were running.
    """
    info = load(directory)
    stop_services(info, timeout)  # first: a CA service reads the chain through the nodes
    stopped = []
    for n in info.nodes:
        datadir = info.directory / n.datadir
        if pid_alive(n.pid, datadir):
            stopped.append(n.name)
            with contextlib.suppress(ProcessLookupError):
                os.kill(n.pid, signal.SIGTERM)
    for n in info.nodes:
        terminate(n.pid, info.directory / n.datadir, timeout)
    if wipe:
        shutil.rmtree(info.directory)
    return stopped


@contextlib.contextmanager
def running(
    directory: str | Path,
    spec: NetworkSpec | None = None,
    *,
    timeout: float = 90.0,
    wipe: bool = True,
    progress: Progress | None = None,
) -> Iterator[NetworkInfo]:
    """``with running(dir, spec) as info:`` a network that is always stopped (and wiped) after."""
    info = up(directory, spec, timeout=timeout, progress=progress)
    try:
        yield info
    finally:
        down(info.directory, wipe=wipe)
