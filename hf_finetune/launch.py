"""Several training processes, one per device, through `accelerate launch` (torchrun underneath).

`--num-processes N` (here, or a Job's, one per GPU of its flavor) re-runs the same command under accelerate's
launcher, started in this process so that a failed process is reported as one message, not torchrun's
traceback and failure box: a process killed by a signal is named; one that failed on its own has said why
already (its exit status is passed on); the others, which only lost contact with it, say nothing.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from .errors import ConfigError, FinetuneError

LAUNCHER = "HF_FINETUNE_LAUNCHER"   # set for the processes: the launcher reports a lost process, they need not
ERRORS = "HF_FINETUNE_LAUNCH_ERRORS"   # a folder where a process other than the main one leaves its error message
PEER_LOST = 76                      # a process's exit status when another one of its run is gone (EX_PROTOCOL)
# what gloo and NCCL say when a collective's peer is gone
PEER_LOST_SIGNS = ("Connection reset by peer", "Connection closed by peer", "Broken pipe", "NCCL communicator",
                   "ProcessGroupNCCL", "ProcessGroupGloo", "gloo/transport")


def launch_arguments(processes: int) -> list[str]:
    """accelerate launch's options for N processes on this machine (DDP; gloo on CPU, NCCL on GPUs)."""
    return ["--multi_gpu", "--num_processes", str(processes), "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no"]


def shown_command(processes: int, argv: list[str]) -> list[str]:
    """The command ``run`` amounts to, as a user would type it."""
    return ["accelerate", "launch", *launch_arguments(processes), "-m", "hf_finetune", *argv]


def run(processes: int, argv: list[str], token: str | None) -> int:
    """``python -m hf_finetune ARGV`` in N processes; their exit status, or a FinetuneError naming the process
    that was killed. The token reaches them through the environment, never their argv (which `ps` shows)."""
    from accelerate.commands.launch import launch_command, launch_command_parser
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    args = launch_command_parser().parse_args([*launch_arguments(processes), "-m", "hf_finetune", *argv])
    os.environ[LAUNCHER] = "1"
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")   # DDP's C++ notes, once per process
    if token:
        os.environ["HF_TOKEN"] = token
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)   # reported below instead
    errors = tempfile.mkdtemp(prefix="hf-finetune-launch-")
    os.environ[ERRORS] = errors
    try:
        launch_command(args)
    except ChildFailedError as err:
        return _failed(err, processes, Path(errors))
    except SignalException as err:   # this launcher was stopped (a time-out's SIGTERM): torchrun stopped them
        return 128 + int(err.sigval)
    finally:
        shutil.rmtree(errors, ignore_errors=True)
    return 0


def keep_error(message: str) -> bool:
    """In a process other than the main one that ``run`` started: leave ``message`` for the launcher (which
    prints it once, unless the main process failed and said why itself) instead of printing it; whether it did.
    The processes of one run mostly fail alike (the same data, the same settings): one message, not N."""
    folder, rank = os.environ.get(ERRORS), os.environ.get("RANK", "0")
    if not launched_here() or not folder or rank == "0":
        return False
    try:
        (Path(folder) / f"rank-{rank}.txt").write_text(message, encoding="utf-8")
    except OSError:
        return False
    return True


def _failed(err: Any, processes: int, errors: Path) -> int:
    """The exit status of a run one of whose processes failed, or the error that says which was killed. The
    main process says why it failed itself; another one's message (left in ``errors``) is printed here, once,
    when the main process did not fail on its own."""
    failures = [(rank, f) for rank, f in err.failures.items() if f.exitcode != PEER_LOST]
    main = err.failures.get(0)
    main_said = main is not None and main.exitcode > 0 and main.exitcode != PEER_LOST
    if not main_said:
        for rank, failure in sorted(failures, key=lambda item: item[1].timestamp):
            message = errors / f"rank-{rank}.txt"
            if failure.exitcode > 0 and message.is_file():
                sys.stderr.write(message.read_text(encoding="utf-8"))
                return failure.exitcode
    # a process killed from outside first (torchrun stops the others with SIGTERM), then the earliest
    causes = sorted(failures, key=lambda item: (item[1].exitcode in (0, -15, 143) or item[1].exitcode > 0,
                                                item[1].timestamp, item[0]))
    if not causes:
        raise FinetuneError(f"The {processes} training processes lost contact with each other, and the run stopped; "
                            "nothing was published.",
                            "Run the same command again: it resumes from the last checkpoint.")
    rank, failure = causes[0]
    if failure.exitcode >= 0:
        return failure.exitcode   # the process said why on its way out
    name = failure.signal_name()
    raise FinetuneError(f"Training process {rank} of {processes} (pid {failure.pid}) was killed by {name}; the others "
                        "were stopped, and nothing was published.",
                        "Run the same command again: it resumes from the last checkpoint.")


def lost_peer(err: BaseException) -> bool:
    """Whether ``err`` is this process losing contact with another one of its run (which then failed)."""
    if int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return False
    text = str(err)
    return isinstance(err, RuntimeError) and any(sign in text for sign in PEER_LOST_SIGNS)


def launched_here() -> bool:
    """Whether ``run`` started this process (and so reports a lost process itself)."""
    return os.environ.get(LAUNCHER) == "1"


def check(fsdp: bool, processes: int, gpus: bool, where: str = "here") -> None:
    """Refuse a sharded run that can't shard: accelerate uses FSDP only over several GPU processes, and
    elsewhere trains plain (unsharded) copies without a word."""
    if fsdp and processes < 2:
        raise ConfigError("--fsdp shards the model across training processes, and this run has one.",
                          "Add --num-processes N (one per GPU), or leave --fsdp out.")
    if fsdp and not gpus:
        raise ConfigError(f"--fsdp needs GPUs, and there are none {where}: on CPU accelerate would train unsharded "
                          "copies (plain DDP) instead.",
                          "Leave --fsdp out here (--num-processes alone runs DDP), or run on GPUs (a multi-GPU "
                          "--jobs-flavor, e.g. a10g-largex4).")
