"""CLI commands of the 'ledger' area; registered on the main app by :func:`register`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to app."""
