"""The compiled ledger contract: ABI + bytecode JSON committed next to the Vyper source.

Compiling needs the vyper package and ~1 s, so the runtime loads the committed JSON;
``scripts/compile_contracts.py`` regenerates it and a test checks it matches a fresh compile.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
CONTRACT_NAME = "ChainsenseLedger"


@dataclass(frozen=True)
class Artifact:
    """ABI and deployment bytecode of one contract, with the compiler version that made them."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    compiler: str


def source_path(name: str = CONTRACT_NAME) -> Path:
    return CONTRACTS_DIR / f"{name}.vy"


def artifact_path(name: str = CONTRACT_NAME) -> Path:
    return CONTRACTS_DIR / f"{name}.json"


@cache
def load_artifact(name: str = CONTRACT_NAME) -> Artifact:
    data = json.loads(artifact_path(name).read_text())
    return Artifact(
        name=data["contract"], abi=data["abi"], bytecode=data["bytecode"], compiler=data["compiler"]
    )
