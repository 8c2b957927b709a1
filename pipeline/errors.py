"""The error a bad configuration raises, in a module of its own: the engine raises it too (settings,
model checks at a job's start) without importing the configuration's loader."""
from __future__ import annotations


class ConfigError(ValueError):
    """Invalid configuration; `errors` lists every problem found, each naming its key path."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(errors))
