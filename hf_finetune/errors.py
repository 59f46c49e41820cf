"""Errors a user can act on.

Every failure that is not a bug in hf-finetune is raised as a ``FinetuneError``: the CLI prints
its message as one paragraph (no traceback unless ``--debug``) and exits with ``exit_code``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FinetuneError(Exception):
    """A failure with a message that says what went wrong and what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        self.message = message.strip()
        self.hint = hint.strip() if hint else None
        super().__init__(self.message if not self.hint else f"{self.message} {self.hint}")


class ConfigError(FinetuneError):
    """The run configuration (flags, YAML file, template) is wrong."""

    exit_code = 2


class DataError(FinetuneError):
    """The data set can't be read or doesn't fit the task."""


class ModelError(FinetuneError):
    """The model or its processor can't be loaded."""


class OfflineError(FinetuneError):
    """Something must come from the Hub, and the Hub can't be reached."""


class HubError(FinetuneError):
    """The Hub answered with an error (auth, missing repo, ...)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A short "did you mean" hint for a misspelled name, listing what exists."""
    choices = [str(c) for c in choices]
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    if not close:
        lowered = {c.lower(): c for c in choices}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    listing = ", ".join(repr(c) for c in choices) or "none"
    if close:
        return f"Did you mean {close[0]!r}? Available: {listing}."
    return f"Available: {listing}."
