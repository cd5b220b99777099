"""A bounded request flood against loopback servers the experiment started itself.

Each attacker process runs one asyncio loop that opens a new TCP connection at a fixed rate,
speaks the target's real protocol far enough to make the server work (MySQL: handshake, then one
``SELECT``; JSON-RPC: one HTTP ``POST`` such as an ``eth_getLogs``), keeps the connection open for
``hold_s`` (as a crowd of slow clients would), then closes it. Few processes with many
concurrent sockets each fit a 2-core machine better than many processes.

Attack connections come from their own loopback source addresses (127.0.0.2, 127.0.0.3, ...:
``sources`` of them, dealt out to the processes, each process rotating over its share) so that
per-source defences in front of a server have something to act on; legitimate clients keep
127.0.0.1.

Safety bounds, all enforced here: targets must be 127.0.0.1 and sources are 127.0.0.2 to
127.0.0.201; the attempt count per process is at most ``rate * duration``; concurrent sockets
per process are capped (``max_open``); every connect/read has a timeout and every answer a size
cap; the process gives up at ``duration + hold + timeout + 1`` seconds and its parent kills it
if it is still alive after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import struct
import time
from dataclasses import asdict, dataclass
from typing import Literal

from chainsense.errors import ConfigError

Protocol = Literal["mysql", "jsonrpc"]
MAX_RATE = 20_000  # attempts per second, all processes together
MAX_DURATION = 120.0
MAX_RESPONSE = 64 << 20  # bytes of one answer the attacker reads at most
MAX_SOURCES = 200  # 127.0.0.2 .. 127.0.0.201
MYSQL_USER = "chainsense"  # the account legitimate clients use: the flood looks legitimate


def source_address(index: int) -> str:
    """The loopback address of attack source ``index`` (0-based): 127.0.0.2, 127.0.0.3, ..."""
    if not 0 <= index < MAX_SOURCES:
        raise ConfigError("sources", f"source index must be in 0..{MAX_SOURCES - 1}, got {index}")
    return f"127.0.0.{index + 2}"


@dataclass(frozen=True)
class Target:
    """One loopback server: its protocol, port and the request the attacker sends."""

    protocol: Protocol
    port: int
    host: str = "127.0.0.1"
    # mysql: SQL text; jsonrpc: the JSON body
    request: str = ""
    database: str = ""

    def __post_init__(self) -> None:
        if self.host != "127.0.0.1":
            raise ConfigError("target.host", f"floods go only to 127.0.0.1, got {self.host!r}")
        if not 0 < self.port < 65536:
            raise ConfigError("target.port", f"must be a TCP port, got {self.port}")
        if self.protocol not in ("mysql", "jsonrpc"):
            raise ConfigError("target.protocol", f"must be mysql or jsonrpc, got {self.protocol!r}")


@dataclass(frozen=True)
class FloodSpec:
    """How hard and how long to flood; ``rate`` is attempts/s over all processes."""

    rate: float
    duration: float
    processes: int = 2
    hold_s: float = 1.0
    timeout_s: float = 2.0
    max_open: int = 3000
    sources: int = 0  # distinct source addresses; 0: one per process

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= MAX_RATE:
            raise ConfigError("rate", f"must be in 0..{MAX_RATE} attempts/s, got {self.rate}")
        if not 0 < self.duration <= MAX_DURATION:
            raise ConfigError("duration", f"must be in (0, {MAX_DURATION}] s, got {self.duration}")
        if not 1 <= self.processes <= 8:
            raise ConfigError("processes", f"must be in 1..8, got {self.processes}")
        if not 0 <= self.hold_s <= 30:
            raise ConfigError("hold_s", f"must be in 0..30 s, got {self.hold_s}")
        if not 0 < self.timeout_s <= 30:
            raise ConfigError("timeout_s", f"must be in (0, 30] s, got {self.timeout_s}")
        if not 1 <= self.max_open <= 8000:
            raise ConfigError("max_open", f"must be in 1..8000, got {self.max_open}")
        if not 0 <= self.sources <= MAX_SOURCES:
            raise ConfigError("sources", f"must be in 0..{MAX_SOURCES}, got {self.sources}")
        if 0 < self.sources < self.processes:
            raise ConfigError(
                "sources", f"need >= 1 per process ({self.processes}), got {self.sources}"
            )

    def source_addresses(self, process: int) -> list[str]:
        """The source addresses attacker ``process`` rotates over (disjoint across processes)."""
        count = self.sources or self.processes
        return [source_address(i) for i in range(process, count, self.processes)]


@dataclass
class FloodStats:
    """What the attackers did: attempts launched, answered, rejected, timed out, skipped."""

    launched: int = 0
    answered: int = 0  # got a protocol-level answer to the query
    rejected: int = 0  # refused, reset, or an error packet (e.g. too many connections)
    timed_out: int = 0
    skipped: int = 0  # not launched because max_open sockets were already open
    elapsed_s: float = 0.0

    def add(self, other: FloodStats) -> None:
        for k, v in asdict(other).items():
            if k == "elapsed_s":
                self.elapsed_s = max(self.elapsed_s, v)
            else:
                setattr(self, k, getattr(self, k) + v)


# ----------------------------------------------------------------------------- protocols


async def _read_mysql_packet(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(4)
    length = header[0] | header[1] << 8 | header[2] << 16
    return await reader.readexactly(length)


def _mysql_packet(seq: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


def mysql_handshake_response(user: str, database: str) -> bytes:
    """HandshakeResponse41 with an empty password (the server runs without grant tables)."""
    caps = 0x1 | 0x4 | 0x200 | 0x2000 | 0x8000  # long password/flag, 4.1, transactions, secure
    if database:
        caps |= 0x8
    body = struct.pack("<IIB", caps, 1 << 24, 33) + bytes(23) + user.encode() + b"\0" + b"\0"
    if database:
        body += database.encode() + b"\0"
    return body


async def _mysql_attempt(
    target: Target, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    """Handshake + one query; True when the query was answered, False on an error packet."""
    greeting = await _read_mysql_packet(reader)
    if greeting[:1] == b"\xff":  # e.g. 1040 Too many connections, sent instead of a greeting
        return False
    writer.write(_mysql_packet(1, mysql_handshake_response(MYSQL_USER, target.database)))
    await writer.drain()
    auth = await _read_mysql_packet(reader)
    if auth[:1] != b"\x00":
        return False
    writer.write(_mysql_packet(0, b"\x03" + target.request.encode()))
    await writer.drain()
    eofs = 0
    while True:  # column count, column defs, EOF, rows, EOF (or a single OK / ERR)
        pkt = await _read_mysql_packet(reader)
        if pkt[:1] == b"\xff":
            return False
        if pkt[:1] == b"\xfe" and len(pkt) < 9:
            eofs += 1
            if eofs == 2:
                return True
        elif pkt[:1] == b"\x00" and eofs == 0 and len(pkt) < 9:
            return True


async def _jsonrpc_attempt(
    target: Target, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool:
    body = target.request.encode()
    writer.write(
        (
            f"POST / HTTP/1.1\r\nHost: {target.host}:{target.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b" ", 2)[1] if b" " in head else b""
    length, chunked = 0, False
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
            if not 0 <= length <= MAX_RESPONSE:
                raise ValueError(f"content-length {length} out of bounds")
        elif name.strip().lower() == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
    payload = await (_read_chunked(reader) if chunked else reader.readexactly(length))
    return status == b"200" and b'"result"' in payload


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """An HTTP/1.1 chunked body (large answers such as wide ``eth_getLogs``), size-bounded."""
    parts: list[bytes] = []
    total = 0
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        total += size
        if total > MAX_RESPONSE:
            raise ValueError(f"response over {MAX_RESPONSE} bytes")
        parts.append((await reader.readexactly(size + 2))[:size])
        if size == 0:
            return b"".join(parts)


async def _attempt(target: Target, source: str, spec: FloodSpec, stats: FloodStats) -> None:
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(spec.timeout_s):
            reader, writer = await asyncio.open_connection(
                target.host, target.port, local_addr=(source, 0)
            )
            if target.protocol == "mysql":
                ok = await _mysql_attempt(target, reader, writer)
            else:
                ok = await _jsonrpc_attempt(target, reader, writer)
        if ok:
            stats.answered += 1
            await asyncio.sleep(spec.hold_s)  # a slow client keeps its connection (and slot)
        else:
            stats.rejected += 1
    except TimeoutError:
        stats.timed_out += 1
    except (
        OSError,
        asyncio.IncompleteReadError,
        asyncio.LimitOverrunError,
        ValueError,
        IndexError,
    ):
        stats.rejected += 1
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 0.5)


async def _flood(
    targets: list[Target], sources: list[str], spec: FloodSpec, rate: float, stats: FloodStats
) -> None:
    total = int(rate * spec.duration)
    start = time.monotonic()
    open_tasks: set[asyncio.Task[None]] = set()
    for i in range(total):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if time.monotonic() - start > spec.duration:
            stats.skipped += total - i
            break
        if len(open_tasks) >= spec.max_open:
            stats.skipped += 1
            continue
        attempt = _attempt(targets[i % len(targets)], sources[i % len(sources)], spec, stats)
        task = asyncio.create_task(attempt)
        stats.launched += 1
        open_tasks.add(task)
        task.add_done_callback(open_tasks.discard)
    grace = spec.hold_s + spec.timeout_s + 1.0
    if open_tasks:
        _, pending = await asyncio.wait(open_tasks, timeout=grace)
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
    stats.elapsed_s = time.monotonic() - start


def _attacker(
    targets: list[Target],
    sources: list[str],
    spec: FloodSpec,
    rate: float,
    queue: mp.Queue,  # type: ignore[type-arg]
) -> None:
    stats = FloodStats()
    try:
        asyncio.run(_flood(targets, sources, spec, rate, stats))
    finally:
        queue.put(asdict(stats))


class Flood:
    """``with Flood(targets, spec):`` attacker processes run in the background, then are joined.

    ``rate == 0`` starts nothing (the no-attack baseline). :attr:`stats` is filled on exit;
    :attr:`killed` counts attackers that overstayed their bound and had to be killed (0 when every
    process ended by itself, as it should).
    """

    def __init__(self, targets: list[Target], spec: FloodSpec) -> None:
        if not targets:
            raise ConfigError("targets", "at least one loopback target is needed")
        self.targets = list(targets)
        self.spec = spec
        self.stats = FloodStats()
        self._ctx = mp.get_context("spawn")  # no inherited threads / JAX state in attackers
        self._queue: mp.Queue = self._ctx.Queue()  # type: ignore[type-arg]
        self._procs: list[mp.process.BaseProcess] = []
        self.killed = 0
        self.exitcodes: list[int | None] = []

    def start(self) -> Flood:
        if self.spec.rate == 0:
            return self
        per_proc = self.spec.rate / self.spec.processes
        for i in range(self.spec.processes):
            # Each process gets every target, starting at a different one, so load spreads.
            mine = self.targets[i % len(self.targets) :] + self.targets[: i % len(self.targets)]
            sources = self.spec.source_addresses(i)
            p = self._ctx.Process(
                target=_attacker,
                args=(mine, sources, self.spec, per_proc, self._queue),
                daemon=True,
            )
            p.start()
            self._procs.append(p)
        return self

    def join(self) -> FloodStats:
        """Wait for every attacker (they stop by themselves); kill any that overstay."""
        limit = self.spec.duration + self.spec.hold_s + self.spec.timeout_s + 10.0
        deadline = time.monotonic() + limit
        collected = 0
        while collected < len(self._procs) and time.monotonic() < deadline:
            try:
                self.stats.add(FloodStats(**self._queue.get(timeout=0.5)))
                collected += 1
            except Exception:  # queue.Empty
                continue
        for p in self._procs:
            p.join(timeout=max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                self.killed += 1
                p.kill()
                p.join(5)
            self.exitcodes.append(p.exitcode)
        self._procs.clear()
        return self.stats

    def __enter__(self) -> Flood:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.join()
