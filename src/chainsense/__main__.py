"""``python -m chainsense`` runs the CLI."""

from chainsense.cli import main

main()
