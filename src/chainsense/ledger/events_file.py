"""The events file of ``chainsense ledger submit``: collection events an MT has recorded."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from chainsense import jsonlimits
from chainsense.errors import ConfigError


def read_events(path: Path) -> list[dict[str, float]]:
    """Collection events from JSON (a list of objects) or CSV: poi, slot, reading, x, y.

    The file is untrusted: JSON is size- and depth-bounded before it is parsed, and every
    refusal is a ConfigError naming the event and field.
    """
    if not path.is_file():
        raise ConfigError("records", f"file not found: {path}")
    fields = ("poi", "slot", "reading", "x", "y")
    try:
        if path.suffix == ".csv":
            with path.open(newline="") as fh:
                rows: list[Any] = list(csv.DictReader(fh))
        else:
            rows = jsonlimits.load_file(path, "records")
    except (json.JSONDecodeError, csv.Error, UnicodeDecodeError) as exc:
        raise ConfigError("records", f"cannot parse {path.name}: {exc}") from exc
    if not isinstance(rows, list):
        raise ConfigError("records", "must be a list of events")
    events = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ConfigError(f"records[{i}]", "must be an object")
        try:
            events.append({f: float(row[f]) for f in fields})
        except KeyError as exc:
            raise ConfigError(f"records[{i}].{exc.args[0]}", "missing") from exc
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"records[{i}]", f"not a number: {exc}") from exc
        for f in ("poi", "slot"):
            if not events[-1][f].is_integer():
                raise ConfigError(f"records[{i}].{f}", "must be an integer")
    return events
