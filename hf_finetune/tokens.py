"""Hub tokens: checked before any request, and masked in everything this process prints.

A token reaches hf-finetune from ``--token``, ``HF_TOKEN`` or the ``hf auth login`` file. Whatever
the source, it is registered here; from then on every write to stdout / stderr (messages,
tracebacks under ``--debug``, library logs) has it replaced by ``***``, in its plain form and in the
forms an error message may quote it (``repr``, JSON-escaped, stripped of whitespace). Strings that
look like Hub tokens (``hf_`` + 20 or more letters and digits) are masked too, so a token the user
typed in the wrong place (a positional argument) is not echoed back.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from typing import Any, TextIO

from .errors import ConfigError

MASK = "***"
LOOKS_LIKE_TOKEN = re.compile(r"hf_[A-Za-z0-9]{20,}")
_known: set[str] = set()


def _forms(token: str) -> set[str]:
    core = token.strip()
    forms = {token, core, repr(token)[1:-1], json.dumps(token)[1:-1], repr(core)[1:-1]}
    return {f for f in forms if len(f) >= 4}


def register(token: str | None) -> None:
    """Mask this token (in all its quoted forms) in everything printed from now on."""
    if token:
        _known.update(_forms(token))


def redact(text: str) -> str:
    for form in sorted(_known, key=len, reverse=True):
        if form in text:
            text = text.replace(form, MASK)
    return LOOKS_LIKE_TOKEN.sub(MASK, text)


def check(token: str | None, source: str) -> str | None:
    """Refuse a token that can't be sent as is, before it reaches any request (whose error would quote it)."""
    if token is None:
        return None
    register(token)
    if not token.strip():
        raise ConfigError(f"The Hub token from {source} is empty.", "Set a real token, or leave it unset.")
    if any(ch.isspace() for ch in token) or not token.isprintable():
        raise ConfigError(f"The Hub token from {source} contains whitespace or control characters (a stray line "
                          "ending from a token file?); it was not sent.",
                          "Remove them (e.g. `export HF_TOKEN=$(tr -d '[:space:]' < token.txt)`) and run again.")
    return token


def from_environment() -> str | None:
    """HF_TOKEN as set (not cleaned), checked."""
    value = os.environ.get("HF_TOKEN")
    return check(value, "HF_TOKEN") if value else None


class RedactingStream(io.TextIOBase):
    """A text stream that masks tokens before they reach the real stream."""

    def __init__(self, stream: TextIO):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def mask_standard_streams() -> None:
    """Route sys.stdout / sys.stderr through the masking stream (once per process)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream))


def register_stored_token() -> None:
    """The token of `hf auth login` (or HF_TOKEN), so that it is masked even when never passed explicitly."""
    try:
        from huggingface_hub import get_token

        register(get_token())
    except Exception:  # noqa: BLE001 - no stored token, or an unreadable token file: nothing to mask
        pass
