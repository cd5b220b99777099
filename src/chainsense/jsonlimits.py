"""Bounded JSON reading for untrusted input (CA request bodies, bundles, events files).

``json.loads`` recurses once per nested array or object. Importing py_ecc (through eth-account)
raises Python's recursion limit to 100000, so a 200 KB body of nested brackets overflows the C
stack and the process dies with SIGSEGV instead of a ``RecursionError``. Whatever a dependency
sets the recursion limit to, :func:`loads` first checks the size and the bracket nesting depth
with a linear scan that does not recurse, and only then parses.

Two more things plain ``json.loads`` does badly on hostile input:

* an integer literal of more than 4300 digits raises a bare ``ValueError`` (Python's
  int-digit limit); here any integer literal longer than :data:`MAX_INT_DIGITS` characters
  is returned as an :class:`OversizedInt` placeholder instead, so the caller's own field check
  refuses it and names the field (it is not an ``int``);
* any other failure is raised as :class:`JSONLimitError`, a :class:`ChainsenseError` whose
  message starts with the field named by the caller.

``NaN`` and ``Infinity`` are parsed as Python does (as floats); field checks refuse them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chainsense.errors import ChainsenseError

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects accepted (every format here needs at most 5)."""
MAX_INT_DIGITS = 100
"""Most digits of an integer literal parsed as an ``int`` (a uint256 has at most 78)."""
MAX_FILE_BYTES = 256 * 1024 * 1024
"""Default size limit of a JSON file (a bundle of 100 000 records is about 140 MB)."""

# Every byte except the four brackets, deleted before counting depth.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_ONE_BRACKET_KIND = bytes.maketrans(b"{}", b"[]")


class JSONLimitError(ChainsenseError, ValueError):
    """Untrusted JSON is too large, too deep or malformed; ``code`` is ``too_large`` or
    ``bad_json`` and ``field`` names the input."""

    def __init__(self, code: str, field: str, message: str) -> None:
        self.code = code
        self.field = field
        self.detail = message
        super().__init__(f"{field}: {message}")


class OversizedInt:
    """Stands for an integer literal too long to parse; deliberately not an ``int``."""

    __slots__ = ("digits",)

    def __init__(self, literal: str) -> None:
        self.digits = len(literal.lstrip("-"))

    def __repr__(self) -> str:
        return f"<integer of {self.digits} digits>"


def _parse_int(literal: str) -> int | OversizedInt:
    digits = len(literal) - literal.startswith("-")
    return int(literal) if digits <= MAX_INT_DIGITS else OversizedInt(literal)


def nesting_depth_ok(data: bytes, max_depth: int) -> str | None:
    """None when the brackets of ``data`` (UTF-8 JSON) outside strings are balanced and nested
    at most ``max_depth`` deep, else the reason. Linear in ``len(data)`` per level, no recursion.
    """
    # Escapes can only occur inside strings in valid JSON: drop each backslash pair first so
    # that every remaining quote opens or closes a string, then keep the text between strings.
    text = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(text.split(b'"')[::2])
    brackets = outside.translate(_ONE_BRACKET_KIND, _NOT_BRACKETS)
    # Each pass removes the innermost pairs; a balanced text of depth d is empty after d passes.
    # A run of more opening brackets than the depth still allowed fails at once, so that deep
    # nesting does not cost one pass per level.
    for done in range(max_depth):
        if not brackets:
            return None
        if b"[" * (max_depth - done + 1) in brackets:
            return f"arrays/objects nested deeper than {max_depth} levels"
        reduced = brackets.replace(b"[]", b"")
        if len(reduced) == len(brackets):
            return "unbalanced brackets"
        brackets = reduced
    if not brackets:
        return None
    if len(brackets.replace(b"[]", b"")) == len(brackets):
        return "unbalanced brackets"
    return f"arrays/objects nested deeper than {max_depth} levels"


def loads(data: bytes | str, field: str, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """Parse untrusted UTF-8 JSON of at most ``max_bytes`` bytes and ``max_depth`` levels.

    Raises :class:`JSONLimitError` (naming ``field``) instead of parsing anything larger,
    deeper or malformed; integer literals longer than :data:`MAX_INT_DIGITS` characters come
    back as :class:`OversizedInt`.
    """
    if isinstance(data, str):
        if len(data) > max_bytes:  # each character is at least one byte
            raise JSONLimitError("too_large", field, f"larger than {max_bytes} bytes")
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise JSONLimitError("bad_json", field, f"not UTF-8 text: {exc}") from exc
        text = data
    else:
        raw = bytes(data)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONLimitError("bad_json", field, f"not UTF-8 text: {exc}") from exc
    if len(raw) > max_bytes:
        raise JSONLimitError("too_large", field, f"larger than {max_bytes} bytes")
    problem = nesting_depth_ok(raw, max_depth)
    if problem is not None:
        raise JSONLimitError("bad_json", field, f"malformed JSON: {problem}")
    try:
        return json.loads(text, parse_int=_parse_int)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise JSONLimitError("bad_json", field, f"malformed JSON: {exc}") from exc


def load_file(
    path: str | Path, field: str, *, max_bytes: int = MAX_FILE_BYTES, max_depth: int = MAX_DEPTH
) -> Any:
    """:func:`loads` of a file, refusing one over ``max_bytes`` before reading it."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise JSONLimitError("too_large", field, f"{p.name} is larger than {max_bytes} bytes")
        with p.open("rb") as fh:
            raw = fh.read(max_bytes + 1)  # the file may grow between stat and read
    except OSError as exc:
        raise JSONLimitError("bad_json", field, f"cannot read {p}: {exc}") from exc
    try:
        return loads(raw, field, max_bytes=max_bytes, max_depth=max_depth)
    except JSONLimitError as exc:
        if exc.code == "too_large":
            raise
        raise JSONLimitError(exc.code, field, f"{p.name} is malformed: {exc.detail}") from exc
