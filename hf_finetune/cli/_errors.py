"""How a failure reaches the user: one paragraph on stderr and an exit code, never a traceback
(unless --debug)."""

from __future__ import annotations

import os
import select
import sys
import traceback
from typing import Any, Callable

from rich.markup import escape

from .. import launch, tokens
from ..errors import FinetuneError
from ._options import make_console

IO_SIGNS = ("No space left on device", "File too large", "Read-only file system", "Permission denied",
            "I/O error", "Disk quota exceeded")


def _write_failure(err: BaseException) -> str | None:
    """A write failure hidden in another exception type (safetensors, pyarrow, torch.save); a network
    failure (a reset connection is an OSError too) is not one."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, (ConnectionError, TimeoutError)):
            return None
        text = str(cause)
        if isinstance(cause, OSError) or any(sign in text for sign in IO_SIGNS):
            return next((sign for sign in IO_SIGNS if sign in text), text.splitlines()[0] if text else type(cause).__name__)
        cause = cause.__cause__ or cause.__context__
    return None


def _hidden_write_failure(err: BaseException) -> tuple[str, int] | None:
    problem = _write_failure(err)
    if not problem:
        return None
    return (f"Writing failed: {problem}. Check free disk space and permissions of the output dir; "
            "nothing was published.", 1)


def _unexpected(err: BaseException) -> tuple[str, int]:
    first_line = str(err).splitlines()[0] if str(err) else ""
    return (f"Unexpected error: {type(err).__name__}: {first_line} "
            "This may be a bug in hf-finetune; run again with --debug for the traceback.", 1)


# Looked up in order: the first row whose type matches and whose function answers (not None) wins.
# So the order matters: a subclass must come before its base class, or the base's message would be
# shown (ConnectionError and TimeoutError are OSErrors; every type below but KeyboardInterrupt is an
# Exception), and a write failure hidden in another type must be looked for before the last resort.
Answer = Callable[[Any], "tuple[str, int] | None"]   # the error -> (message, exit code), or None: not this row
CLI_ERROR_MAPPINGS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], Answer], ...] = (
    (FinetuneError, lambda err: (err.message + (f" {err.hint}" if err.hint else ""), err.exit_code)),
    (KeyboardInterrupt, lambda err: ("Interrupted; nothing was written to the output dir.", 130)),
    (MemoryError, lambda err: ("Ran out of memory. Lower --per-device-train-batch-size or --max-length.", 1)),
    ((ConnectionError, TimeoutError), lambda err: (f"A network connection failed: {err.strerror or err}.", 1)),
    (FileNotFoundError, lambda err: (f"A file or folder hf-finetune was using is gone: {err.filename or err}. "
                                     "Something else removed it while this run used it (another process, a "
                                     "cleanup of a shared folder), or it was never made. Run again.", 1)),
    (OSError, lambda err: (f"A file operation failed: {err.strerror or err} ({err.filename or ''}). "
                           "Check free disk space and permissions.", 1)),
    (Exception, _hidden_write_failure),
    (Exception, _unexpected),
)


def _reader_left(err: BaseException) -> bool:
    """Our standard output is a pipe whose reader has closed it (`hf-finetune predict ... | head`): not a
    network failure, and nothing to say (a socket that broke leaves stdout writable)."""
    if not isinstance(err, BrokenPipeError):
        return False
    try:
        poller = select.poll()
        poller.register(sys.__stdout__.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return False


def report(err: BaseException, debug: bool) -> int:
    """Say what went wrong as the table above words it, and return the exit code; an exception no row
    answers (GeneratorExit, ...) is raised again. Call it while ``err`` is being handled (--debug prints
    its traceback)."""
    if _reader_left(err):
        # as a program killed by SIGPIPE ends, without the interpreter's own complaint when it flushes at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.__stdout__.fileno())
        return 141
    if launch.lost_peer(err):   # another process of this run failed: the launcher says which, when it is ours
        if not launch.launched_here():
            make_console(stderr=True).print("[bold red]error:[/] Lost contact with another training process of this "
                                            "run, which stopped; nothing was published. Run the same command again "
                                            "to resume from the last checkpoint.", highlight=False, soft_wrap=True)
        return launch.PEER_LOST
    for types, describe in CLI_ERROR_MAPPINGS:
        answer = describe(err) if isinstance(err, types) else None
        if answer is not None:
            message, exit_code = answer
            if debug:
                traceback.print_exc()
            if launch.keep_error(f"error: {tokens.redact(message)}\n"):   # another process of several: said once
                return exit_code
            make_console(stderr=True).print(f"[bold red]error:[/] {escape(tokens.redact(message))}",
                                            highlight=False, soft_wrap=True)
            return exit_code
    raise err
