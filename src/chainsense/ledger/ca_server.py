"""A CA service running inside this process: the HTTP app on a loopback port, in a thread.

``chainsense run --orgs N`` starts one per organisation (each with its own key and registry),
so that the MTs gather their countersignatures over real HTTP, as they would from the
organisations' own ``chainsense ca serve``; tests use it for CA services they can stop.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from chainsense.errors import ChainsenseError
from chainsense.ledger.ca import CertificateAuthority
from chainsense.ledger.ca_api import build_app

_START_TIMEOUT = 30.0


class CAServer:
    """``build_app(ca)`` served on 127.0.0.1:``port`` (0: a free port) until :meth:`stop`."""

    def __init__(
        self, ca: CertificateAuthority, port: int = 0, admin_token: str | None = None
    ) -> None:
        self.ca = ca
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind(("127.0.0.1", port))
        except OSError as exc:
            self._socket.close()
            raise ChainsenseError(f"ca port: cannot bind 127.0.0.1:{port}: {exc}") from exc
        self.port = int(self._socket.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            build_app(ca, admin_token), log_level="warning", lifespan="off", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self) -> CAServer:
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ChainsenseError(f"ca service: did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving (open connections are closed) and release the port."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> CAServer:
        return self.start()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop()
