"""One organisation's part of a consortium network, to run on its own host: export and join.

``export`` writes a bundle directory: the genesis, the organisation's node data directories with
their node keys and sealer keystores (0600), its CA key (0600), a ``network.json`` describing its
own nodes, its CA service settings and the static peers (the other organisations' enodes at their
host:port), and a systemd unit file to adapt (not installed). ``join`` starts the nodes of a
bundle. A bundle arrives from elsewhere, so ``join`` treats it as untrusted: the network file is
read by the bounded :func:`~chainsense.devnet.netfile.load`, every path must stay inside the
bundle, key files must be private (like ssh, a key readable by others is refused), the genesis
must be a bounded Clique genesis of the bundle's chain id, and each node's ``config.toml`` is
written by ``join`` from the validated peers (a shipped one could set any geth option).
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import replace
from pathlib import Path

from chainsense.devnet.genesis import geth_init, read_genesis, write_p2p_config, write_private
from chainsense.devnet.geth import find_geth, spawn
from chainsense.devnet.health import wait_rpc
from chainsense.devnet.netfile import NETWORK_FILE, NetworkInfo, NodeInfo, load, save
from chainsense.devnet.processes import pid_alive, terminate
from chainsense.errors import ChainsenseError

_ENODE = re.compile(r"enode://[0-9a-f]{128}@[0-9a-fA-F.:\[\]]{3,45}:\d{1,5}\?discport=0")
_MAX_PEERS = 64
UNIT_TEMPLATE = """\
# systemd unit for {org}'s chainsense node(s): copy the bundle to /opt/chainsense/{org}
# (or edit the paths), keep its files owned by the service user, then install this file.
[Unit]
Description=chainsense consortium nodes of {org} (chain id {chain_id})
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
User=chainsense
UMask=0077
WorkingDirectory=/opt/chainsense/{org}
ExecStart=/usr/local/bin/chainsense network join /opt/chainsense/{org}
ExecStop=/usr/local/bin/chainsense network down --dir /opt/chainsense/{org}

[Install]
WantedBy=multi-user.target
"""


def _copy_private(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(dst, src.read_text(encoding="utf-8"))


def _empty_target(out: Path) -> bool:
    """True when ``out`` had to be created; refuses a non-empty one."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ChainsenseError(f"export: {out} already exists and is not empty")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)
    return created


def export(directory: str | Path, org_name: str, out: str | Path, *, faucet: bool = False) -> Path:
    """Write ``org_name``'s bundle into ``out`` (absent or empty); with ``faucet`` also the
    faucet key (for the one organisation that funds MT accounts). Nothing is left on failure."""
    info = load(directory)
    if not info.orgs:
        raise ChainsenseError("export: this network has no organisations (network up --orgs N)")
    info.org(org_name)  # refuses an unknown name before anything is written
    target = Path(out).resolve()
    created = _empty_target(target)
    try:
        _write_bundle(info, org_name, target, faucet)
    except BaseException:
        if created:
            shutil.rmtree(target, ignore_errors=True)
        else:
            for child in target.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise
    return target


def _write_bundle(info: NetworkInfo, org_name: str, out: Path, faucet: bool) -> None:
    org = info.org(org_name)
    mine = [n for n in info.nodes if n.org == org_name]
    shutil.copyfile(info.directory / "genesis.json", out / "genesis.json")
    for node in mine:
        src, dst = info.directory / node.datadir, out / node.datadir
        _copy_private(src / "geth" / "nodekey", dst / "geth" / "nodekey")
        if node.role == "sealer":
            _copy_private(src / "password.txt", dst / "password.txt")
            for key in (src / "keystore").iterdir():
                _copy_private(key, dst / "keystore" / key.name)
    _copy_private(info.directory / org.ca.key_file, out / org.ca.key_file)
    faucet_file = None
    if faucet and info.faucet_keyfile is not None:
        faucet_file = out / info.faucet_keyfile.name
        _copy_private(info.faucet_keyfile, faucet_file)
    peers = [n.enode for n in info.nodes if n.org != org_name and n.enode]
    bundle = NetworkInfo(
        directory=out,
        chain_id=info.chain_id,
        period=info.period,
        nodes=tuple(replace(n, pid=0) for n in mine),
        faucet_keyfile=faucet_file,
        faucet_address=info.faucet_address if faucet_file else "",
        extra={**info.extra, "static_peers": peers, "bundle_of": org_name},
        orgs=(org,),
    )
    save(bundle)
    unit = UNIT_TEMPLATE.format(org=org_name, chain_id=info.chain_id)
    (out / f"chainsense-{org_name}.service").write_text(unit, encoding="utf-8")


def _inside(base: Path, rel: str, what: str) -> Path:
    p = (base / rel).resolve()
    if not p.is_relative_to(base):
        raise ChainsenseError(f"join: {what} {rel!r} points outside the bundle")
    return p


def _private_file(path: Path, what: str) -> None:
    if not path.is_file() or path.is_symlink():
        raise ChainsenseError(f"join: {what} {path.name} is missing (not a plain file)")
    if path.stat().st_mode & 0o077:
        raise ChainsenseError(
            f"join: {what} {path.name} is readable by others (mode "
            f"{path.stat().st_mode & 0o777:o}); chmod 600 it"
        )


def validate(bundle: str | Path) -> tuple[NetworkInfo, list[str]]:
    """Check a bundle before anything starts; returns it and its static peers."""
    info = load(bundle)
    base = info.directory
    if len(info.orgs) != 1 or any(n.org != info.orgs[0].name for n in info.nodes):
        raise ChainsenseError("join: a bundle holds exactly one organisation and only its nodes")
    peers = info.extra.get("static_peers")
    if not isinstance(peers, list) or len(peers) > _MAX_PEERS:
        raise ChainsenseError(f"join: static_peers must be a list of at most {_MAX_PEERS} enodes")
    for i, p in enumerate(peers):
        if not isinstance(p, str) or not _ENODE.fullmatch(p):
            raise ChainsenseError(f"join: static_peers[{i}] is not an enode URL ({str(p)[:40]!r})")
    try:
        genesis = read_genesis(base)
    except ChainsenseError as exc:
        raise ChainsenseError(f"join: {exc}") from exc
    config = genesis.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("clique"), dict):
        raise ChainsenseError("join: genesis.json is not a Clique genesis (config.clique missing)")
    if config.get("chainId") != info.chain_id:
        raise ChainsenseError(
            f"join: genesis chainId {config.get('chainId')!r} differs from the bundle's "
            f"chain_id {info.chain_id}"
        )
    ports = [p for n in info.nodes for p in (n.http_port, n.p2p_port, n.authrpc_port)]
    if len({n.datadir for n in info.nodes}) != len(info.nodes) or len(set(ports)) != len(ports):
        raise ChainsenseError("join: two nodes share a data directory or a port")
    for node in info.nodes:
        datadir = _inside(base, node.datadir, f"{node.name}.datadir")
        if not node.http_port or not node.p2p_port or not node.authrpc_port:
            raise ChainsenseError(f"join: {node.name} lacks its http, p2p or authrpc port")
        if node.role == "sealer" and not re.fullmatch(r"0x[0-9a-fA-F]{40}", node.address or ""):
            raise ChainsenseError(f"join: sealer {node.name} has no 0x signer address")
        _private_file(datadir / "geth" / "nodekey", f"{node.name}'s node key")
        if node.role == "sealer":
            _private_file(datadir / "password.txt", f"{node.name}'s password file")
            keys = sorted((datadir / "keystore").glob("*.json"))
            if len(keys) != 1:
                raise ChainsenseError(f"join: {node.name} needs exactly one keystore file")
            _private_file(keys[0], f"{node.name}'s keystore")
        if pid_alive(node.pid, datadir):
            raise ChainsenseError(f"join: {node.name} is already running (pid {node.pid})")
    _private_file(_inside(base, info.orgs[0].ca.key_file, "ca.key_file"), "the CA key")
    return info, peers


def join(
    bundle: str | Path, *, geth: str | Path | None = None, timeout: float = 60.0
) -> NetworkInfo:
    """Start the nodes of a validated bundle (``geth init`` on first use); wait until each
    answers RPC. Peering waits for the other organisations (``wait_ready`` once they are up).
    On failure the started nodes are stopped and the chain data written here is removed."""
    info, peers = validate(bundle)
    binary = find_geth(geth)
    original = (info.directory / NETWORK_FILE).read_text(encoding="utf-8")
    # What the bundle held before: a failed join removes whatever it added (chain data, logs,
    # configs), so the bundle can be fixed and joined again.
    before = {n.name: _entries(info.directory / n.datadir) for n in info.nodes}
    started: list[NodeInfo] = []
    try:
        for node in info.nodes:
            datadir = info.directory / node.datadir
            own = [n.enode for n in info.nodes if n.name != node.name and n.enode]
            write_p2p_config(datadir, node, [*own, *peers], len(peers) + len(own) + 4)
            if not (datadir / "geth" / "chaindata").exists():
                geth_init(binary, datadir, info.directory / "genesis.json", node.name)
            started.append(replace(node, pid=spawn(binary, info.directory, node, info.chain_id)))
            info = replace(info, nodes=(*started, *info.nodes[len(started) :]))
            save(info)
        deadline = time.monotonic() + timeout
        for node in started:
            wait_rpc(info, node, deadline)
        return info
    except BaseException:
        for node in started:
            terminate(node.pid, info.directory / node.datadir, timeout=5.0)
        for node in info.nodes:
            for path in _entries(info.directory / node.datadir) - before[node.name]:
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        (info.directory / NETWORK_FILE).write_text(original, encoding="utf-8")
        raise


def _entries(datadir: Path) -> set[Path]:
    """The files and directories directly in a data directory and in its ``geth`` folder."""
    top = set(datadir.iterdir()) if datadir.is_dir() else set()
    geth = datadir / "geth"
    return top | (set(geth.iterdir()) if geth.is_dir() else set())
