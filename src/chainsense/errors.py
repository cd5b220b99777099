"""Project exceptions.

Every failure a user can cause is raised as a :class:`ChainsenseError` whose message names the bad
field or input; the CLI turns it into a one-line message and exit code 2 instead of a traceback.
"""

from __future__ import annotations


class ChainsenseError(Exception):
    """Base class of every error the user can cause or fix."""


class ConfigError(ChainsenseError, ValueError):
    """A configuration value or CLI argument is invalid; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")
