"""The output directory's life: locked, staged, resumed, published, recovered.

Everything a run to ``target`` keeps lives beside it (same file system, so renames are atomic):

    .<name>.lock          held for the whole run (by the main process); holds its pid
    .<name>.partial/      the run dir being written; renamed into place when complete
    .<name>.checkpoints/  Trainer checkpoints and resume.json (what they were written under)
    .<name>.old/          a replaced run, between the two renames of a publish
    .<name>.trash-*/      something being deleted (renamed first, so it vanishes at once)

At every instant a kill -9 leaves either the old run or the new one in place, or a state that
``recover`` (run under the lock at the start of the next run) completes: a finished staging dir is
published, a moved-aside old run is restored or removed, leftovers are deleted.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, FinetuneError
from .rundir import RunDir

RESUME_STATE = "resume.json"
CRASH_AT = "HF_FINETUNE_CRASH_AT"   # tests: kill -9 this process at the named point


def crash_point(name: str) -> None:
    """Fault injection for the kill tests: SIGKILL ourselves when HF_FINETUNE_CRASH_AT names this point."""
    if os.environ.get(CRASH_AT) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def default_dir(task: str, model_name: str) -> Path:
    return Path("outputs") / f"{task}-{model_name}-{time.strftime('%Y%m%d-%H%M%S')}"


@dataclass(frozen=True)
class Layout:
    """The paths a run to ``target`` uses."""

    target: Path

    def _beside(self, suffix: str) -> Path:
        return self.target.parent / f".{self.target.name}.{suffix}"

    @property
    def lock(self) -> Path:
        return self._beside("lock")

    @property
    def staging(self) -> Path:
        return self._beside("partial")

    @property
    def checkpoints(self) -> Path:
        return self._beside("checkpoints")

    @property
    def old(self) -> Path:
        return self._beside("old")

    def trash(self) -> Path:
        return self._beside(f"trash-{uuid.uuid4().hex[:8]}")


# ---------------------------------------------------------------------------------------------
# checks before any work


def _overlaps(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def check_target_path(target: Path, inputs: list[Path] = ()) -> None:
    """Refuse, before any work, an output dir that can't be written or would replace what it must not:
    never a folder holding the run's inputs (or inside one), the current folder or one above it."""
    try:
        os.fsencode(target).decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"The output dir {os.fsdecode(target)!r} is not valid UTF-8; its name goes into the "
                          "model card and the Hub.", "Choose a name in UTF-8.") from None
    where = target.resolve()
    if where == Path.cwd().resolve() or where in Path.cwd().resolve().parents:
        raise ConfigError(f"The output dir {target} is the current folder or one above it; a run replaces its "
                          "output dir as a whole.", "Choose a new folder, e.g. --output-dir outputs/my-run.")
    for item in inputs:
        if _overlaps(where, item.resolve()):
            raise ConfigError(f"The output dir {target} overlaps an input of this run ({item}).",
                              "Write the run to a folder of its own, outside the data, model and template.")
    if target.exists() and not target.is_dir():
        raise ConfigError(f"The output dir {target} exists and is a file.", "Choose another --output-dir.")
    ancestor = target.parent.resolve()
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"Can't create the output dir {target}: {ancestor} is a file.")
    if not os.access(ancestor, os.W_OK):
        raise ConfigError(f"Can't write into {ancestor} (permission denied).", "Choose a writable --output-dir.")


def check_target_contents(target: Path, overwrite: bool) -> bool:
    """Whether the output dir already holds a finished run (then the caller decides: the same run is
    done already, another one needs --overwrite-output-dir). Anything else in it is refused: only a
    finished run is ever replaced."""
    if target.exists() and not target.is_dir():
        raise ConfigError(f"The output dir {target} exists and is a file.", "Choose another --output-dir.")
    if not target.is_dir() or not any(target.iterdir()):
        return False
    if RunDir(target).is_finished:
        return True
    raise ConfigError(f"The output dir {target} already holds files that are not a finished hf-finetune run"
                      + ("; --overwrite-output-dir only replaces a finished run." if overwrite else "."),
                      "Choose another --output-dir.")


# ---------------------------------------------------------------------------------------------
# the lock


class TargetLock:
    """An exclusive lock on an output dir, held by one process, that names its holder.

    ``flock`` on ``.<name>.lock``: the kernel drops it when the holder dies, so a kill -9 never leaves
    a stale lock. (filelock truncates the lock file on every attempt, which would erase the holder's
    pid, so this is done here.) The file is removed on release; an acquirer checks that the file it
    locked is still the one at the path, so removal can't let two holders in.
    """

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self, target: Path) -> "TargetLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                raise ConfigError(f"Another hf-finetune run (pid {holder}) is writing {target}.",
                                  "Wait for it to finish, or choose another --output-dir.") from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)   # the holder removed the file between our open and our lock: take the new one
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None


# ---------------------------------------------------------------------------------------------
# recovery and publishing


def _remove(path: Path, layout: Layout) -> None:
    """Delete a folder so that it vanishes at once: rename it to a trash name, then delete that."""
    if path.exists():
        trash = layout.trash()
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)


def _run_id(folder: Path) -> str | None:
    try:
        return json.loads((folder / RESUME_STATE).read_text())["run_id"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def recover(layout: Layout) -> list[str]:
    """Finish or undo what a killed run left (under the lock). Returns what was done, for the user."""
    done = []
    for trash in layout.target.parent.glob(f".{layout.target.name}.trash-*"):
        shutil.rmtree(trash, ignore_errors=True)
    if RunDir(layout.staging).is_finished:        # killed while publishing: publish it now
        publish(layout, remove_checkpoints=False)
        done.append(f"completed the publish of the finished run in {layout.staging.name}")
    if layout.old.exists():
        if layout.target.exists():
            _remove(layout.old, layout)
        else:
            os.replace(layout.old, layout.target)
            done.append(f"restored the previous run to {layout.target}")
    finished = RunDir(layout.target)
    if layout.checkpoints.exists() and finished.is_finished and \
            finished.info.run_id == _run_id(layout.checkpoints):
        _remove(layout.checkpoints, layout)       # the published run's own checkpoints
    return done


def publish(layout: Layout, remove_checkpoints: bool = True) -> None:
    """Move the finished staging dir into place; an old run is replaced only now that the new one is complete.

    Each step is one rename or a removal of something no longer needed, so a kill between any two
    leaves a state ``recover`` completes.
    """
    crash_point("publish:start")
    if layout.target.exists():
        os.replace(layout.target, layout.old)
        crash_point("publish:old-moved-aside")
    os.replace(layout.staging, layout.target)
    crash_point("publish:new-in-place")
    _remove(layout.old, layout)
    crash_point("publish:old-removed")
    if remove_checkpoints:
        _remove(layout.checkpoints, layout)


# ---------------------------------------------------------------------------------------------
# staging and resuming


def _changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    changed = []
    for section in sorted(set(saved) | set(current)):
        old, new = saved.get(section), current.get(section)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            changed.append(f"{section} ({', '.join(keys)})")
        else:
            changed.append(section)
    return changed


def is_complete_checkpoint(folder: Path) -> bool:
    """A checkpoint counts only when every file a resume reads is there: the Trainer writes
    trainer_state.json last, and a deletion (rotation, a kill during cleanup) may leave any subset."""
    try:
        state = json.loads((folder / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    step = folder.name.rsplit("-", 1)[-1]
    if not step.isdigit() or state.get("global_step") != int(step):
        return False
    weights = (folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file() or \
        (folder / "pytorch_model.bin").is_file()
    return weights and all((folder / name).is_file() for name in ("optimizer.pt", "scheduler.pt")) and \
        any(folder.glob("rng_state*.pth"))


def latest_checkpoint(folder: Path) -> str | None:
    """The newest complete Trainer checkpoint in ``folder``."""
    if not folder.is_dir():
        return None
    done = [p for p in folder.glob("checkpoint-*") if is_complete_checkpoint(p)]
    return str(max(done, key=lambda p: int(p.name.split("-")[-1]))) if done else None


@dataclass
class Stage:
    staging: Path
    checkpoints: Path
    resume_from: str | None
    run_id: str


def plan_stage(layout: Layout, fingerprint: dict[str, Any], resume: bool) -> Stage:
    """The checkpoint to resume from, if any, read-only (every process decides the same way).

    Checkpoints are resumed only when written under the same fingerprint (settings, data, tokenizer);
    otherwise the run stops and says what changed, since resuming would mix two runs.
    """
    saved: dict[str, Any] | None = None
    last = latest_checkpoint(layout.checkpoints) if resume else None
    if last:
        try:
            saved = json.loads((layout.checkpoints / RESUME_STATE).read_text())
        except (OSError, ValueError):
            last = None
    if last and saved is not None:
        changed = _changes(saved.get("fingerprint", {}), fingerprint)
        if changed:
            raise ConfigError(
                f"{layout.checkpoints} holds checkpoints of this output dir's run with other "
                f"{'; '.join(changed)}; resuming from them would mix two runs.",
                "Run with --no-resume to delete them and start afresh, or restore what changed.")
    run_id = saved["run_id"] if last and saved else uuid.uuid4().hex
    return Stage(layout.staging, layout.checkpoints, last, run_id)


def make_stage(layout: Layout, stage: Stage, fingerprint: dict[str, Any]) -> None:
    """(Main process.) A fresh staging dir; fresh checkpoints unless resuming."""
    try:
        if layout.staging.exists():
            _remove(layout.staging, layout)
        layout.staging.mkdir(parents=True)
        if not stage.resume_from:
            _remove(layout.checkpoints, layout)
            layout.checkpoints.mkdir(parents=True)
            RunDir(layout.checkpoints).write_json(RESUME_STATE, {"run_id": stage.run_id, "fingerprint": fingerprint})
    except OSError as err:
        raise FinetuneError(f"Can't create {layout.staging}: {err.strerror}.",
                            "Check free disk space and permissions, or choose another --output-dir.") from None


def abandon_stage(layout: Layout) -> None:
    """(Main process, after a failure.) The staging dir never resumes; checkpoints stay only when complete."""
    _remove(layout.staging, layout)
    if not latest_checkpoint(layout.checkpoints):
        _remove(layout.checkpoints, layout)


def plot_training_curves(log_history: list[dict], metric: str, path: Path) -> bool:
    """Loss and the chosen eval metric against the step, as a PNG (headless matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    evals = [(e["step"], e["eval_loss"], e.get(f"eval_{metric}")) for e in log_history if "eval_loss" in e]
    if not train and not evals:
        return False
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 4))
    if train:
        ax_loss.plot(*zip(*train), label="training loss")
    if evals:
        ax_loss.plot([s for s, _, _ in evals], [v for _, v, _ in evals], "o-", label="validation loss")
        points = [(s, m) for s, _, m in evals if m is not None]
        if points:
            ax_metric.plot(*zip(*points), "o-", color="tab:green")
    ax_loss.set(xlabel="step", ylabel="loss", title="Loss")
    ax_loss.legend()
    ax_metric.set(xlabel="step", ylabel=metric, title=f"Validation {metric}")
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_confusion(matrix: list[list[int]], labels: list[str], path: Path) -> None:
    """The test split's confusion matrix as a PNG heat map, with the counts written in."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(4.0, 0.5 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xlabel="predicted", ylabel="true",
           title="Confusion matrix (test split)")
    ax.set_xticklabels(labels, rotation=45, ha="right")
    ax.set_yticklabels(labels)
    top = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", color="white" if count > top / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
