"""Launch, inspect and stop a local geth Clique private network of sealers and followers.

The paper's chain is a private Ethereum network of mining nodes (which seal blocks) and
non-mining nodes (which relay transactions and serve queries). This module runs exactly that with
the reference client, geth v1.13.15 (the last release line that seals Clique proof-of-authority
blocks), on one machine: every node binds to 127.0.0.1 only, peers statically with every other
node (no discovery), and the whole network is described by ``<dir>/network.json``, which is what
the ledger client (``chain.chain_from_network_file``) reads::

    {"chain_id": int, "period": int,
     "nodes": [{"name", "role": "sealer"|"follower", "rpc", "pid", "datadir", ...}],
     "faucet": {"keyfile": "faucet.key", "address": "0x..."}}

Paths in the file are relative to its directory, so a network directory can be moved while down.
Sealer keys, their passwords and the faucet key are generated per network, written 0600 and never
printed. Nodes run detached (own session) so that ``chainsense network up`` can return; they are
stopped by the process ids recorded in the file, after checking the id still belongs to that node.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx
from eth_account import Account
from eth_keys import keys

from chainsense.errors import ChainsenseError, ConfigError

if TYPE_CHECKING:
    from chainsense.ledger.chain import RpcChain
    from chainsense.ledger.keys import KeyPair

NETWORK_FILE = "network.json"
FAUCET_KEYFILE = "faucet.key"
GETH_VERSION = "1.13."
Role = Literal["sealer", "follower"]
Progress = Callable[[str], None]

_REPO_ROOT = Path(__file__).resolve().parents[3]
_PUBLIC_TESTNETS = (5, 11155111, 17000)  # Goerli, Sepolia, Holesky: never reuse their ids


@dataclass(frozen=True)
class NetworkSpec:
    """Shape of a network: how many sealers and followers, block period, chain id, funds."""

    sealers: int = 3
    followers: int = 1
    period: int = 1
    chain_id: int = 1337
    faucet_balance_eth: int = 1_000_000
    gas_limit: int = 30_000_000

    def __post_init__(self) -> None:
        if not 1 <= self.sealers <= 16:
            raise ConfigError("sealers", f"must be in 1..16, got {self.sealers}")
        if not 0 <= self.followers <= 16:
            raise ConfigError("followers", f"must be in 0..16, got {self.followers}")
        # Period 0 would seal only when transactions arrive, so "blocks are being sealed" never
        # holds for an idle network; the paper's chain seals at a fixed rate.
        if not 1 <= self.period <= 60:
            raise ConfigError("period", f"must be in 1..60 seconds, got {self.period}")
        if not 1 < self.chain_id < 2**32 or self.chain_id in _PUBLIC_TESTNETS:
            raise ConfigError(
                "chain_id",
                f"must be a private id in 2..2^32-1 (not a public testnet's: "
                f"{', '.join(map(str, _PUBLIC_TESTNETS))}), got {self.chain_id}",
            )
        if not 1 <= self.faucet_balance_eth <= 10**12:
            raise ConfigError(
                "faucet_balance_eth", f"must be in 1..1e12, got {self.faucet_balance_eth}"
            )
        if not 5_000_000 <= self.gas_limit <= 1_000_000_000:
            raise ConfigError("gas_limit", f"must be in 5e6..1e9, got {self.gas_limit}")


@dataclass(frozen=True)
class NodeInfo:
    """One node as recorded in the network file (paths relative to the network directory)."""

    name: str
    role: Role
    rpc: str
    pid: int
    datadir: str
    enode: str
    http_port: int
    p2p_port: int
    authrpc_port: int
    address: str | None = None  # signer address of a sealer

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class NetworkInfo:
    """The whole network: where it lives, its chain id, its nodes and the faucet key file."""

    directory: Path
    chain_id: int
    period: int
    nodes: tuple[NodeInfo, ...]
    faucet_keyfile: Path
    faucet_address: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def file(self) -> Path:
        return self.directory / NETWORK_FILE

    def node(self, name: str) -> NodeInfo:
        for n in self.nodes:
            if n.name == name:
                return n
        raise ChainsenseError(f"node: no node named {name!r} (have {[n.name for n in self.nodes]})")

    def endpoints(self, role: Role | None = None) -> list[str]:
        return [n.rpc for n in self.nodes if role is None or n.role == role]


@dataclass(frozen=True)
class NodeStatus:
    """What ``network status`` shows for one node; ``peers``/``head`` are None when unreachable."""

    name: str
    role: Role
    pid: int
    alive: bool
    rpc: str
    peers: int | None
    head: int | None


# ----------------------------------------------------------------------------- geth binary


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


# ----------------------------------------------------------------------------- small helpers


def free_ports(count: int) -> list[int]:
    """Ask the kernel for ``count`` distinct free TCP ports on 127.0.0.1."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def rpc_call(url: str, method: str, params: list[Any] | None = None, timeout: float = 2.0) -> Any:
    """One JSON-RPC call; raises ChainsenseError on transport or RPC errors."""
    try:
        r = httpx.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []},
            timeout=timeout,
        )
        body = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ChainsenseError(f"rpc {url} {method}: {type(exc).__name__}: {exc}") from exc
    if "error" in body:
        raise ChainsenseError(f"rpc {url} {method}: {body['error']}")
    return body.get("result")


def _write_private(path: Path, text: str) -> None:
    """Write a secret file readable by the owner only (created 0600, never world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _proc_cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None


def _reap(pid: int) -> bool:
    """Reap ``pid`` if it is our exited child; True when it is gone."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == pid


def pid_alive(pid: int, datadir: Path | None = None) -> bool:
    """True when ``pid`` runs (not a zombie) and, if ``datadir`` is given, is that node's geth."""
    if pid <= 0 or _reap(pid):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    if datadir is not None:
        cmd = _proc_cmdline(pid)
        if cmd is not None and str(datadir) not in cmd:
            return False  # the id was reused by another process: not ours to signal
    return True


def _terminate(pid: int, datadir: Path, timeout: float) -> None:
    """SIGTERM the node, wait up to ``timeout`` s, then SIGKILL; only if it is still that node."""
    if not pid_alive(pid, datadir):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid, datadir):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and pid_alive(pid, datadir):
        time.sleep(0.05)


def _log_tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(ln.strip() for ln in text[-lines:])


# ----------------------------------------------------------------------------- genesis + keys


def clique_genesis(spec: NetworkSpec, signers: list[str], funded: list[str]) -> dict[str, Any]:
    """A Clique genesis sealed by ``signers`` (London rules: 1.13 Clique refuses Shanghai)."""
    extra = "0x" + "00" * 32 + "".join(a.lower().removeprefix("0x") for a in signers) + "00" * 65
    balance = hex(spec.faucet_balance_eth * 10**18)
    return {
        "config": {
            "chainId": spec.chain_id,
            "homesteadBlock": 0,
            "eip150Block": 0,
            "eip155Block": 0,
            "eip158Block": 0,
            "byzantiumBlock": 0,
            "constantinopleBlock": 0,
            "petersburgBlock": 0,
            "istanbulBlock": 0,
            "berlinBlock": 0,
            "londonBlock": 0,
            "clique": {"period": spec.period, "epoch": 30000},
        },
        "difficulty": "0x1",
        "gasLimit": hex(spec.gas_limit),
        "extradata": extra,
        "alloc": {a.lower().removeprefix("0x"): {"balance": balance} for a in funded},
    }


def _enode(nodekey: bytes, port: int) -> str:
    pub = keys.PrivateKey(nodekey).public_key.to_hex().removeprefix("0x")
    return f"enode://{pub}@127.0.0.1:{port}?discport=0"


def _node_argv(geth: Path, netdir: Path, node: NodeInfo, chain_id: int) -> list[str]:
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
        "--http.addr", "127.0.0.1",
        "--http.port", str(node.http_port),
        "--http.api", "eth,net,web3,txpool,clique",
        "--authrpc.addr", "127.0.0.1",
        "--authrpc.port", str(node.authrpc_port),
        "--verbosity", "3",
    ]  # fmt: skip
    if node.role == "sealer":
        assert node.address is not None
        argv += [
            "--mine",
            "--miner.etherbase", node.address,
            "--unlock", node.address,
            "--password", str(datadir / "password.txt"),
            # Unlocking next to an HTTP endpoint needs this; the endpoint is loopback-only and
            # exposes no personal/admin API.
            "--allow-insecure-unlock",
        ]  # fmt: skip
    return argv


def _spawn(geth: Path, netdir: Path, node: NodeInfo, chain_id: int) -> int:
    datadir = netdir / node.datadir
    log = open(datadir / "geth.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            _node_argv(geth, netdir, node, chain_id),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the CLI; stopped by pid via `network down`
        )
    finally:
        log.close()
    return proc.pid


# ----------------------------------------------------------------------------- network file


def network_file(directory: str | Path) -> Path:
    p = Path(directory)
    return p if p.name == NETWORK_FILE else p / NETWORK_FILE


def load(directory: str | Path) -> NetworkInfo:
    """Read and validate ``<directory>/network.json`` (or the file itself)."""
    path = network_file(directory)
    if not path.is_file():
        raise ChainsenseError(
            f"network: no {NETWORK_FILE} in {path.parent} (run `chainsense network up`)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        nodes = tuple(
            NodeInfo(
                **{k: n[k] for k in NodeInfo.__dataclass_fields__ if k in n},
            )
            for n in data["nodes"]
        )
        faucet = data["faucet"]
        info = NetworkInfo(
            directory=path.parent.resolve(),
            chain_id=int(data["chain_id"]),
            period=int(data.get("period", 1)),
            nodes=nodes,
            faucet_keyfile=path.parent.resolve() / faucet["keyfile"],
            faucet_address=faucet.get("address", ""),
            extra={
                k: v for k, v in data.items() if k not in ("chain_id", "period", "nodes", "faucet")
            },
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ChainsenseError(f"network: {path} is malformed: {type(exc).__name__}: {exc}") from exc
    if not nodes:
        raise ChainsenseError(f"network: {path} lists no nodes")
    return info


def save(info: NetworkInfo) -> None:
    """Write the network file atomically (readers never see half a file)."""
    data: dict[str, Any] = {
        "chain_id": info.chain_id,
        "period": info.period,
        "nodes": [n.to_json() for n in info.nodes],
        "faucet": {
            "keyfile": os.path.relpath(info.faucet_keyfile, info.directory),
            "address": info.faucet_address,
        },
        **info.extra,
    }
    _write_json_atomic(info.file, data)


# ----------------------------------------------------------------------------- lifecycle


def _prepare(directory: Path, spec: NetworkSpec, geth: Path) -> NetworkInfo:
    """Generate keys, genesis and per-node config, then ``geth init`` every data directory."""
    faucet = Account.create()
    _write_private(directory / FAUCET_KEYFILE, "0x" + bytes(faucet.key).hex() + "\n")
    names = [f"sealer-{i + 1}" for i in range(spec.sealers)]
    names += [f"follower-{i + 1}" for i in range(spec.followers)]
    ports = free_ports(3 * len(names))
    sealer_accounts = [Account.create() for _ in range(spec.sealers)]
    nodekeys = [secrets.token_bytes(32) for _ in names]
    nodes: list[NodeInfo] = []
    for i, name in enumerate(names):
        http_port, p2p_port, auth_port = ports[3 * i : 3 * i + 3]
        role: Role = "sealer" if i < spec.sealers else "follower"
        nodes.append(
            NodeInfo(
                name=name,
                role=role,
                rpc=f"http://127.0.0.1:{http_port}",
                pid=0,
                datadir=name,
                enode=_enode(nodekeys[i], p2p_port),
                http_port=http_port,
                p2p_port=p2p_port,
                authrpc_port=auth_port,
                address=sealer_accounts[i].address if role == "sealer" else None,
            )
        )
    signers = [a.address for a in sealer_accounts]
    genesis = clique_genesis(spec, signers, [faucet.address, *signers])
    (directory / "genesis.json").write_text(json.dumps(genesis, indent=2) + "\n", encoding="utf-8")
    for i, node in enumerate(nodes):
        datadir = directory / node.datadir
        (datadir / "geth").mkdir(parents=True)
        _write_private(datadir / "geth" / "nodekey", nodekeys[i].hex())
        peers = ", ".join(json.dumps(n.enode) for n in nodes if n.name != node.name)
        (datadir / "config.toml").write_text(
            "[Node.P2P]\n"
            f"MaxPeers = {len(nodes) + 4}\n"
            "NoDiscovery = true\n"
            f'ListenAddr = "127.0.0.1:{node.p2p_port}"\n'
            f"StaticNodes = [{peers}]\n"
            "TrustedNodes = []\n",
            encoding="utf-8",
        )
        if node.role == "sealer":
            account = sealer_accounts[i]
            password = secrets.token_urlsafe(24)
            _write_private(datadir / "password.txt", password + "\n")
            (datadir / "keystore").mkdir(mode=0o700)
            # scrypt n=2^14 (geth's "light" strength): these keys guard a loopback test network.
            blob = Account.encrypt(account.key, password, kdf="scrypt", iterations=1 << 14)
            _write_private(
                datadir / "keystore" / f"{account.address.lower()}.json", json.dumps(blob)
            )
        out = subprocess.run(
            [str(geth), "--datadir", str(datadir), "init", str(directory / "genesis.json")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0:
            raise ChainsenseError(
                f"network: geth init of {node.name} failed: {out.stderr.strip()[-400:]}"
            )
    return NetworkInfo(
        directory=directory,
        chain_id=spec.chain_id,
        period=spec.period,
        nodes=tuple(nodes),
        faucet_keyfile=directory / FAUCET_KEYFILE,
        faucet_address=faucet.address,
        # Hints for clients: Clique headers carry 97 bytes of extraData (web3.py needs its
        # ExtraDataToPOAMiddleware), and 1.13 Clique stops at London rules, so contracts must be
        # compiled for an EVM without PUSH0 (Vyper/solc evm_version "paris" or older).
        extra={"geth": "v1.13.15", "sealers": signers, "poa": True, "evm_version": "paris"},
    )


def _wait_rpc(info: NetworkInfo, node: NodeInfo, deadline: float) -> None:
    datadir = info.directory / node.datadir
    while True:
        if not pid_alive(node.pid, datadir):
            raise ChainsenseError(
                f"network: {node.name} exited during start-up: {_log_tail(datadir / 'geth.log')}"
            )
        try:
            rpc_call(node.rpc, "eth_blockNumber", timeout=1.0)
            return
        except ChainsenseError:
            if time.monotonic() > deadline:
                raise ChainsenseError(
                    f"network: {node.name} RPC {node.rpc} did not answer in time: "
                    f"{_log_tail(datadir / 'geth.log')}"
                ) from None
            time.sleep(0.25)


def wait_ready(
    directory: str | Path,
    timeout: float = 90.0,
    *,
    min_peers: int | None = None,
    min_head: int = 2,
    names: list[str] | None = None,
    progress: Progress | None = None,
) -> NetworkInfo:
    """Wait until the named nodes (default all) answer, are peered, and blocks are sealed.

    ``min_peers`` defaults to full mesh (every other node). Sealing (and, for a restarted node,
    resync) is shown by each chosen node's head reaching ``min_head`` above the highest head any
    live node had when the wait began.
    """
    info = load(directory)
    chosen = [n for n in info.nodes if names is None or n.name in names]
    need = len(info.nodes) - 1 if min_peers is None else min_peers
    deadline = time.monotonic() + timeout
    for node in chosen:
        _wait_rpc(info, node, deadline)
    if progress:
        progress("RPC up on every node; waiting for peers")
    # Heads of every live node (not only the chosen ones): a restarted node is "ready" only once
    # it has caught up past where the rest of the network was when the wait began.
    start_head = max(
        (_head(n) or 0 for n in info.nodes if pid_alive(n.pid, info.directory / n.datadir)),
        default=0,
    )
    target = start_head + min_head
    last: dict[str, tuple[int | None, int | None]] = {}
    while True:
        ok = True
        for node in chosen:
            if not pid_alive(node.pid, info.directory / node.datadir):
                raise ChainsenseError(
                    f"network: {node.name} died: "
                    f"{_log_tail(info.directory / node.datadir / 'geth.log')}"
                )
            peers, head = _peers(node), _head(node)
            last[node.name] = (peers, head)
            ok = ok and peers is not None and peers >= need and head is not None and head >= target
        if ok:
            if progress:
                progress(f"all {len(chosen)} nodes peered, head >= {target}")
            return info
        if time.monotonic() > deadline:
            detail = ", ".join(f"{k}: peers={p} head={h}" for k, (p, h) in last.items())
            raise ChainsenseError(
                f"network: not ready after {timeout:.0f}s "
                f"(need peers>={need}, head>={target}): {detail}"
            )
        time.sleep(0.3)


def _head(node: NodeInfo) -> int | None:
    try:
        return int(rpc_call(node.rpc, "eth_blockNumber", timeout=1.5), 16)
    except ChainsenseError:
        return None


def _peers(node: NodeInfo) -> int | None:
    try:
        return int(rpc_call(node.rpc, "net_peerCount", timeout=1.5), 16)
    except ChainsenseError:
        return None


def up(
    directory: str | Path,
    spec: NetworkSpec | None = None,
    *,
    geth: str | Path | None = None,
    timeout: float = 90.0,
    progress: Progress | None = None,
) -> NetworkInfo:
    """Create and start a network in ``directory`` (must be absent or empty); wait until ready.

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
        info = _prepare(d, spec, binary)
        started: list[NodeInfo] = []
        for node in info.nodes:
            started.append(replace(node, pid=_spawn(binary, d, node, spec.chain_id)))
            info = replace(info, nodes=(*started, *info.nodes[len(started) :]))
            save(info)
        if progress:
            progress(f"started {len(started)} geth processes")
        return wait_ready(d, timeout, progress=progress)
    except BaseException:
        if info is not None:
            for node in info.nodes:
                if node.pid:
                    _terminate(node.pid, d / node.datadir, timeout=5.0)
        if created:
            shutil.rmtree(d, ignore_errors=True)
        else:
            for child in d.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise


def status(directory: str | Path, timeout: float = 1.5) -> list[NodeStatus]:
    """Liveness, peer count and head block of every node (None where unreachable)."""
    info = load(directory)
    out = []
    for n in info.nodes:
        alive = pid_alive(n.pid, info.directory / n.datadir)
        peers = _peers(n) if alive else None
        head = _head(n) if alive else None
        out.append(NodeStatus(n.name, n.role, n.pid, alive, n.rpc, peers, head))
    return out


def stop_node(directory: str | Path, name: str, timeout: float = 10.0) -> None:
    """Stop one node (SIGTERM, then SIGKILL after ``timeout`` s); its data is kept."""
    info = load(directory)
    node = info.node(name)
    _terminate(node.pid, info.directory / node.datadir, timeout)


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
    new = replace(node, pid=_spawn(binary, info.directory, node, info.chain_id))
    save(replace(info, nodes=tuple(new if n.name == name else n for n in info.nodes)))
    return new


def down(directory: str | Path, *, wipe: bool = False, timeout: float = 10.0) -> list[str]:
    """Stop every node by pid (SIGTERM then SIGKILL); with ``wipe`` delete the network directory.

    Returns the names of nodes that were running.
    """
    info = load(directory)
    stopped = []
    for n in info.nodes:
        datadir = info.directory / n.datadir
        if pid_alive(n.pid, datadir):
            stopped.append(n.name)
            with contextlib.suppress(ProcessLookupError):
                os.kill(n.pid, signal.SIGTERM)
    for n in info.nodes:
        _terminate(n.pid, info.directory / n.datadir, timeout)
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


# ----------------------------------------------------------------------------- ledger client glue


def connect(
    directory: str | Path, *, timeout: float = 5.0, cooldown: float = 2.0
) -> tuple[RpcChain, KeyPair | None]:
    """The ledger client over this network (:class:`RpcChain`: failover, head tracking, read
    your writes; Clique headers handled) plus the faucet key."""
    from chainsense.ledger.chain import chain_from_network_file

    return chain_from_network_file(network_file(directory), timeout=timeout, cooldown=cooldown)
