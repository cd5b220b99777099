"""Compiling the Vyper contract into the artifact the ledger loads (ABI + bytecode JSON).

Separate from :mod:`chainsense.ledger.artifacts` so that only ``scripts/compile_contracts.py``
and the test that checks the committed artifact pay for importing the Vyper compiler.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import vyper

from chainsense.files import atomic_write
from chainsense.ledger.artifacts import CONTRACT_NAME, artifact_path, source_path


def compile_source(name: str = CONTRACT_NAME) -> dict[str, Any]:
    """Compile the Vyper source now."""
    out = vyper.compile_code(source_path(name).read_text(), output_formats=["abi", "bytecode"])
    return {
        "contract": name,
        "compiler": f"vyper {vyper.__version__}",
        "abi": out["abi"],
        "bytecode": out["bytecode"],
    }


def write_artifact(name: str = CONTRACT_NAME) -> Path:
    """Compile and write the artifact JSON beside the source."""
    text = json.dumps(compile_source(name), indent=1, sort_keys=True) + "\n"
    return atomic_write(artifact_path(name), text)
