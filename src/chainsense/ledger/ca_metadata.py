"""The CA's refusals and its MT metadata rules: what may be stored with an MT, and how what an
older registry stored is served."""

from __future__ import annotations

import math
import reprlib
from typing import Any

from chainsense import jsonlimits
from chainsense.errors import ChainsenseError

MAX_METADATA_BYTES = 4096
MAX_METADATA_DEPTH = 8
UNREADABLE_METADATA = "unreadable_metadata"

__all__ = [
    "MAX_METADATA_BYTES",
    "MAX_METADATA_DEPTH",
    "UNREADABLE_METADATA",
    "CAError",
    "check_metadata",
    "stored_metadata",
]


class CAError(ChainsenseError):
    """A request the CA refuses; ``code`` is machine-readable, ``field`` names the bad input."""

    def __init__(self, code: str, field: str, message: str) -> None:
        self.code = code
        self.field = field
        super().__init__(f"{field}: {message}")


def check_metadata(value: Any, field: str = "metadata", depth: int = 0) -> None:
    """Refuse what JSON cannot carry faithfully, naming the field: strings (and keys) that are
    not valid Unicode (lone surrogates), NaN and infinities, integers beyond 256 bits, keys
    that are not strings, nesting deeper than :data:`MAX_METADATA_DEPTH`, non-JSON types."""
    if value is None or isinstance(value, bool | str):
        if isinstance(value, str):
            _check_text(value, field)
        return
    if isinstance(value, int):
        if not -(2**255) <= value < 2**256:
            raise CAError("bad_input", field, "integer outside the 256-bit range")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CAError("bad_input", field, f"must be a finite number, got {value}")
        return
    if isinstance(value, list | dict) and depth >= MAX_METADATA_DEPTH:
        raise CAError("bad_input", field, f"nested deeper than {MAX_METADATA_DEPTH} levels")
    if isinstance(value, list):
        for i, item in enumerate(value):
            check_metadata(item, f"{field}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CAError("bad_input", field, f"keys must be strings, got {reprlib.repr(key)}")
            _check_text(key, field)
            check_metadata(
                item, f"{field}.{key if len(key) <= 64 else key[:64] + '...'}", depth + 1
            )
        return
    raise CAError("bad_input", field, f"not a JSON value: {reprlib.repr(value)}")


def _check_text(text: str, field: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CAError(
            "bad_input", field, f"not valid Unicode (lone surrogate at {exc.start})"
        ) from exc


def stored_metadata(text: str) -> dict[str, Any]:
    """Metadata as stored; registries written before :func:`check_metadata` existed may hold
    text that cannot be served as JSON (NaN, lone surrogates): that is shown as its stored
    text under :data:`UNREADABLE_METADATA` rather than failing every read of the MT."""
    try:
        meta = jsonlimits.loads(text, "metadata", max_bytes=1 << 20)
        if isinstance(meta, dict):
            check_metadata(meta)
            return meta
    except ChainsenseError:
        pass
    return {UNREADABLE_METADATA: text}
