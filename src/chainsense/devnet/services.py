"""Extra services a network runs beside its nodes (e.g. the organisations' CA services).

devnet owns the lifecycle of every process a network starts, but knows nothing of what an extra
service is: a name, the command it runs, the URL it answers on and its pid, recorded in the
network file under ``services`` so that ``network down`` stops them with the nodes and
``network status`` shows them. A pid is signalled only while that process's command line still
holds the service's ``marker`` (a path unique to it), so a recycled pid is never touched.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from chainsense.devnet.netfile import NetworkInfo, load, save
from chainsense.devnet.processes import log_tail, pid_alive, terminate
from chainsense.errors import ChainsenseError

_KEY = "services"


@dataclass(frozen=True)
class Service:
    name: str
    pid: int
    url: str  # answers HTTP GET when up
    marker: str  # a string in its command line that only it has (its own file, say)
    log: str  # relative to the network directory

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int
    url: str
    alive: bool


def services(info: NetworkInfo) -> list[Service]:
    """The services the network file records (refused by name when malformed)."""
    raw = info.extra.get(_KEY, [])
    if not isinstance(raw, list):
        raise ChainsenseError("network file: services must be a list")
    out = []
    for i, item in enumerate(raw):
        try:
            out.append(Service(**item))
        except TypeError as exc:
            raise ChainsenseError(f"network file: services[{i}] is malformed: {exc}") from exc
        if not isinstance(out[-1].pid, int) or isinstance(out[-1].pid, bool):
            raise ChainsenseError(f"network file: services[{i}].pid must be an integer")
    return out


def _record(directory: Path, service: Service) -> None:
    info = load(directory)
    kept = [s.to_json() for s in services(info) if s.name != service.name]
    save(replace(info, extra=info.extra | {_KEY: [*kept, service.to_json()]}))


def start_service(
    directory: str | Path, name: str, argv: Sequence[str], url: str, marker: str
) -> Service:
    """Start ``argv`` detached (its own session; output to ``<name>.log`` in the network
    directory) and record it in the network file before returning."""
    d = load(directory).directory
    if marker not in " ".join(argv):
        raise ChainsenseError(f"service {name}: marker {marker!r} is not in its command line")
    log = d / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=d
        )
    service = Service(name, proc.pid, url, marker, log.name)
    _record(d, service)
    return service


def wait_services(directory: str | Path, timeout: float) -> None:
    """Wait until every recorded service answers HTTP; a service that exits or stays silent
    past ``timeout`` s is named with the end of its log."""
    info = load(directory)
    deadline = time.monotonic() + timeout
    for s in services(info):
        while True:
            if not pid_alive(s.pid, Path(s.marker)):
                tail = log_tail(info.directory / s.log)
                raise ChainsenseError(f"service {s.name}: exited before answering: {tail}")
            if _answers(s.url):
                break
            if time.monotonic() > deadline:
                tail = log_tail(info.directory / s.log)
                raise ChainsenseError(
                    f"service {s.name}: no answer at {s.url} within {timeout} s: {tail}"
                )
            time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code < 500
    except httpx.HTTPError:
        return False


def service_status(info: NetworkInfo) -> list[ServiceStatus]:
    """Each recorded service: pid, URL and whether it runs and answers."""
    return [
        ServiceStatus(s.name, s.pid, s.url, pid_alive(s.pid, Path(s.marker)) and _answers(s.url))
        for s in services(info)
    ]


def stop_services(info: NetworkInfo, timeout: float = 10.0) -> list[str]:
    """Stop every recorded service (SIGTERM, then SIGKILL); returns those that were running."""
    running = [s for s in services(info) if pid_alive(s.pid, Path(s.marker))]
    for s in running:
        terminate(s.pid, Path(s.marker), timeout)
    return [s.name for s in running]


__all__ = [
    "Service",
    "ServiceStatus",
    "service_status",
    "services",
    "start_service",
    "stop_services",
    "wait_services",
]
