"""Range checks of the ledger's query arguments, refused by name before any call to a node."""

from __future__ import annotations

from chainsense.errors import ChainsenseError


def check_uint(value: int, name: str, low: int = 0) -> int:
    """``value`` if it is an integer in ``[low, 2^256)`` (what a uint256 argument takes)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 2**256:
        raise ChainsenseError(f"{name}: must be an integer in [{low}, 2^256), got {value!r}")
    return value


def check_u32(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise ChainsenseError(f"{name}: must be an integer in [0, 2^32), got {value!r}")


def check_window(start: int, limit: int | None) -> slice:
    """The slice ``[start, start + limit)`` of a query's answer (0-based), bounds checked."""
    check_uint(start, "start")
    return slice(start, None if limit is None else start + check_uint(limit, "limit"))
