"""PoIs from a CSV file, read as untrusted input: every refusal names the row.

The first row is a header naming the columns ``x``, ``y`` and optionally ``data`` (>= 0,
default 1) and ``name`` (a label for messages), in any order; no other columns. Every further
non-blank row is one PoI in the frame of the area it belongs to (a site file's frame, or world
units when the CSV is the whole map). UTF-8, an optional byte-order mark, at most
:data:`MAX_ROWS` rows and :data:`MAX_FILE_BYTES` bytes.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from chainsense.errors import ConfigError
from chainsense.sim.site_geojson import DEFAULT_DATA, MAX_DATA, number

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_ROWS = 100_000
COLUMNS = ("x", "y", "data", "name")


def _read_text(p: Path) -> str:
    if not p.is_file():
        raise ConfigError("map", f"file not found: {p}")
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError("map", f"{p.name} is larger than {MAX_FILE_BYTES} bytes")
        with p.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError("map", f"cannot read {p}: {exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError("map", f"{p.name} is larger than {MAX_FILE_BYTES} bytes")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError("map", f"{p.name} is not UTF-8 text: {exc}") from None


def load_poi_csv(
    path: str | Path, bounds: tuple[float, float, float, float] | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(positions [K,2], data [K], labels) of the PoIs in ``path``.

    With ``bounds`` (x0, y0, x1, y1) every PoI must lie in that closed rectangle. A refusal is
    a ConfigError whose field names the row, e.g. ``rows[3] (line 5, PoI "s-12")``.
    """
    p = Path(path)
    reader = csv.reader(io.StringIO(_read_text(p), newline=""))
    try:
        rows = [(n, r) for n, r in enumerate(reader, 1) if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise ConfigError("map", f"{p.name} is not valid CSV: {exc}") from None
    if not rows:
        raise ConfigError("map", f"{p.name} is empty (need a header x,y[,data][,name])")
    header = [c.strip().lower() for c in rows[0][1]]
    unknown = [c for c in header if c not in COLUMNS]
    if unknown or len(set(header)) != len(header) or not {"x", "y"} <= set(header):
        raise ConfigError(
            "map.header", f"columns must be x, y and optionally data, name; got {header[:8]}"
        )
    col = {c: header.index(c) for c in header}
    body = rows[1:]
    if not body:
        raise ConfigError("map", f"{p.name} holds no PoI rows")
    if len(body) > MAX_ROWS:
        raise ConfigError("map", f"{p.name} holds {len(body)} rows (at most {MAX_ROWS})")
    pos = np.zeros((len(body), 2))
    data = np.full(len(body), DEFAULT_DATA)
    labels = []
    for i, (line, row) in enumerate(body):
        name = row[col["name"]].strip() if "name" in col and col["name"] < len(row) else ""
        where = f"rows[{i}] (line {line}" + (f", PoI {json.dumps(name[:60])})" if name else ")")
        if len(row) != len(header):
            raise ConfigError(where, f"has {len(row)} fields, the header {len(header)}")
        for j, c in enumerate(("x", "y")):
            pos[i, j] = number(_float(row[col[c]], where, c), where, c)
        if "data" in col and row[col["data"]].strip():
            data[i] = number(_float(row[col["data"]], where, "data"), where, "data", MAX_DATA)
            if data[i] < 0:
                raise ConfigError(where, f"data must be >= 0, got {data[i]!r}")
        if bounds is not None:
            x0, y0, x1, y1 = bounds
            if not (x0 <= pos[i, 0] <= x1 and y0 <= pos[i, 1] <= y1):
                raise ConfigError(
                    where, f"PoI ({pos[i, 0]:g}, {pos[i, 1]:g}) lies outside the area"
                )
        labels.append(where)
    return pos, data, tuple(labels)


def _float(text: str, where: str, what: str) -> float:
    try:
        if len(text) > 64:
            raise ValueError(text)
        return float(text.strip())
    except ValueError:
        raise ConfigError(where, f"{what} must be a number, got {json.dumps(text[:40])}") from None
