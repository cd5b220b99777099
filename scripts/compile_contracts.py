"""Regenerate the ledger contract's ABI + bytecode JSON from its Vyper source.

Usage: .venv/bin/python scripts/compile_contracts.py
(tests/test_ledger_contract.py fails when the committed JSON differs from a fresh compile.)
"""

from __future__ import annotations

from chainsense.ledger.artifacts import CONTRACT_NAME
from chainsense.ledger.compile import write_artifact


def main() -> None:
    path = write_artifact(CONTRACT_NAME)
    print(f"wrote {path.name}")


if __name__ == "__main__":
    main()
