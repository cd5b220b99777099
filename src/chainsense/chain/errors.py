"""What can go wrong talking to a chain: unreachable or refusing nodes, and reverts."""

from __future__ import annotations

import ast

from chainsense.errors import ChainsenseError

_NO_REASON = "reverted without a reason"


class ChainError(ChainsenseError):
    """The chain could not be reached or refused a request."""


class RevertError(ChainError):
    """A transaction or call reverted; ``reason`` is the contract's message."""

    def __init__(self, reason: str, tx_hash: str | None = None) -> None:
        self.reason = reason
        self.tx_hash = tx_hash
        super().__init__(f"transaction reverted: {reason}")


def revert_reason(exc: BaseException) -> str:
    """The contract's revert message inside a node's or eth-tester's error text.

    eth-tester reports the raw revert data as a Python bytes literal (``execution reverted:
    b''``); it is decoded, and empty revert data reads as "reverted without a reason".
    """
    message = getattr(exc, "message", None) or str(exc)
    for prefix in ("execution reverted: ", "execution reverted:", "revert: "):
        if prefix in message:
            message = message.split(prefix, 1)[1]
    message = message.strip()
    if message[:2] in ("b'", 'b"'):
        try:
            raw = ast.literal_eval(message)
        except (ValueError, SyntaxError):
            raw = None
        if isinstance(raw, bytes):
            message = raw.decode("utf-8", errors="replace")
    return message.strip().strip("'\"") or _NO_REASON
