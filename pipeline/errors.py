"""The errors the command line reports as one line, in a module of their own: the engine raises them
too (settings, model checks at a job's start, the aggregation) without importing the configuration's
loader."""
from __future__ import annotations


class ConfigError(ValueError):
    """Invalid configuration; `errors` lists every problem found, each naming its key path."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(errors))


class RecordError(ValueError):
    """A run's record.json that cannot be read: the message names the file and what to do."""
