"""Bounded JSON reading of untrusted input (chainsense.jsonlimits) and the readers that use it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from chainsense import jsonlimits
from chainsense.jsonlimits import JSONLimitError

DEEP = b"[" * 100_000 + b"]" * 100_000  # ~200 KB: overflows the C stack in plain json.loads


def test_loads_refuses_deep_nesting_before_parsing() -> None:
    with pytest.raises(JSONLimitError, match=r"body: .*nested deeper than 32") as exc:
        jsonlimits.loads(DEEP, "body", max_bytes=10**6)
    assert exc.value.code == "bad_json"
    with pytest.raises(JSONLimitError, match="nested deeper than 32"):
        jsonlimits.loads(b"[" * 100_000, "body", max_bytes=10**6)
    with pytest.raises(JSONLimitError, match="unbalanced"):
        jsonlimits.loads(b'{"a": [1, 2}', "body", max_bytes=100)
    nested = "[" * 32 + "]" * 32
    assert jsonlimits.loads(nested, "body", max_bytes=100) is not None
    with pytest.raises(JSONLimitError, match="nested deeper than 32"):
        jsonlimits.loads("[" + nested + "]", "body", max_bytes=100)


def test_loads_counts_brackets_outside_strings_only() -> None:
    text = json.dumps({"a": [']]]\\"[[[{', {"b": "\\"}], "c": '\\\\\\"{'})
    assert jsonlimits.loads(text, "x", max_bytes=1000, max_depth=3) == json.loads(text)
    with pytest.raises(JSONLimitError, match="nested deeper than 2"):
        jsonlimits.loads(text, "x", max_bytes=1000, max_depth=2)


def test_loads_bounds_size_and_names_the_field() -> None:
    with pytest.raises(JSONLimitError, match="records: larger than 10 bytes") as exc:
        jsonlimits.loads(b"[1, 2, 3, 4, 5]", "records", max_bytes=10)
    assert exc.value.code == "too_large"
    for bad in (b"{not json", b"\xff\xfe[]", "\ud800", b"\xef\xbb\xbf[]"):
        with pytest.raises(JSONLimitError, match=r"^body: "):
            jsonlimits.loads(bad, "body", max_bytes=100)


def test_loads_returns_a_placeholder_for_huge_integers() -> None:
    """A 5000-digit literal must not raise Python's bare int-digit-limit ValueError: it becomes
    a placeholder that is no ``int``, so each field check refuses it by name."""
    data = jsonlimits.loads(
        f'{{"a": {"7" * 5000}, "b": -{"7" * 101}, "c": 12}}', "x", max_bytes=10**5
    )
    assert (
        isinstance(data["a"], jsonlimits.OversizedInt)
        and repr(data["a"]) == "<integer of 5000 digits>"
    )
    assert not isinstance(data["b"], int) and data["b"].digits == 101
    assert data["c"] == 12
    assert jsonlimits.loads("-" + "9" * 100, "x", max_bytes=200) == -int("9" * 100)


def test_load_file_refuses_a_large_file_before_reading_it(tmp_path) -> None:
    p = tmp_path / "big.json"
    p.write_bytes(b"[" + b"0," * 100 + b"0]")
    with pytest.raises(JSONLimitError, match="larger than 50 bytes"):
        jsonlimits.load_file(p, "bundle", max_bytes=50)
    assert len(jsonlimits.load_file(p, "bundle")) == 101
    with pytest.raises(JSONLimitError, match="cannot read"):
        jsonlimits.load_file(tmp_path / "missing.json", "bundle")


_READERS = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import chainsense.ledger.ca  # imports py_ecc, which raises the recursion limit to 100000
    from chainsense.errors import ChainsenseError
    from chainsense.ledger.batch import read_bundle
    from chainsense.ledger.events_file import read_events

    assert sys.getrecursionlimit() >= 100000
    for reader in (read_bundle, read_events):
        try:
            reader(Path(sys.argv[1]))
        except ChainsenseError as exc:
            print(reader.__name__, exc)
    """
)


@pytest.mark.parametrize("content", [DEEP, b'{"entries": [{"record": ' + DEEP + b"}]}"])
def test_file_readers_refuse_deep_nesting_without_crashing(tmp_path, content: bytes) -> None:
    """`ledger verify --bundle` and `ledger submit EVENTS` read files someone else may have
    written; a deeply nested one used to kill the process with SIGSEGV (run in a subprocess so
    that a crash is seen as one)."""
    path = tmp_path / "hostile.json"
    path.write_bytes(content)
    proc = subprocess.run(
        [sys.executable, "-c", _READERS, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stdout.splitlines()
    assert len(lines) == 2, proc.stdout
    assert lines[0].startswith("read_bundle bundle: ") and "nested deeper than 32" in lines[0]
    assert lines[1].startswith("read_events records: ") and "nested deeper than 32" in lines[1]
