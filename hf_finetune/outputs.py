"""The output directory's life: locked, staged, resumed, published, recovered.

Everything a run to ``target`` keeps lives beside it (same file system, so renames are atomic):

    .<name>.lock          held for the whole run (by the main process); holds its pid
    .<name>.partial/      the run dir being written; renamed into place when complete
    .<name>.checkpoints/  Trainer checkpoints and resume.json (what they were written under)
    .<name>.old/          a replaced run, between the two renames of a publish
    .<name>.trash-*/      something being deleted (renamed first, so it vanishes at once)

At every instant a kill -9 leaves either the old run or the new one in place, or a state that
``recover`` (run under the lock at the start of the next run) completes: a finished staging dir is
published, a moved-aside old run is restored or removed, leftovers are deleted. A run does the same,
under their locks, for what killed runs left beside the other output dirs of its folder
(``clean_abandoned``): a run with the default, timestamped output dir is never run again on that dir.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, FinetuneError
from .rundir import RunDir, is_pushed_name

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
        if overwrite:
            check_nothing_of_the_users(target)
        return True
    raise ConfigError(f"The output dir {target} already holds files that are not a finished hf-finetune run"
                      + ("; --overwrite-output-dir only replaces a finished run." if overwrite else "."),
                      "Choose another --output-dir.")


def users_entries(run: Path) -> list[str]:
    """What a finished run dir holds that no run writes (predictions, notes, sub-folders, links): the
    user's, which replacing the run would delete."""
    with os.scandir(run) as entries:
        return sorted(e.name + ("/" if e.is_dir(follow_symlinks=False) else "") for e in entries
                      if not e.is_file(follow_symlinks=False) or not is_pushed_name(e.name))


def check_nothing_of_the_users(run: Path) -> None:
    """Refuse to replace a finished run that holds files of the user's: --overwrite-output-dir replaces a
    run, never what someone put beside it."""
    if not run.is_dir():
        return
    theirs = users_entries(run)
    if theirs:
        shown = ", ".join(theirs[:8]) + (f" and {len(theirs) - 8} more" if len(theirs) > 8 else "")
        raise ConfigError(f"The output dir {run} holds a finished run and also {shown}, which no run writes; "
                          "--overwrite-output-dir would delete them with the old run, so nothing was replaced.",
                          "Move them out of the folder (or choose another --output-dir), then run again.")


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
            fd = self._open()
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

    def _open(self) -> int:
        """The lock file, created if absent and never truncated here; a link (which would have us truncate
        whatever it points to) or anything but a plain file of its own is refused."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as err:
            if err.errno != errno.ELOOP:
                raise
            raise ConfigError(f"{self.path} is a symbolic link; hf-finetune never writes through a link, so the "
                              "run did not start.", "Remove the link, then run again.") from None
        mode = os.fstat(fd)
        if not stat.S_ISREG(mode.st_mode) or mode.st_nlink > 1:
            os.close(fd)
            raise ConfigError(f"{self.path} is not a plain file of its own (a hard link, FIFO or device); "
                              "hf-finetune writes its pid there, so the run did not start.",
                              "Remove it, then run again.")
        return fd

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


def _read_state(folder: Path) -> dict[str, Any] | None:
    """resume.json: the run id and fingerprint the checkpoints were written under (and a finished search)."""
    try:
        state = json.loads((folder / RESUME_STATE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _run_id(folder: Path) -> str | None:
    return (_read_state(folder) or {}).get("run_id")


def is_resumable(checkpoints: Path) -> bool:
    """Whether a checkpoints folder holds what a resume uses: a complete checkpoint or a finished search."""
    return latest_checkpoint(checkpoints) is not None or bool((_read_state(checkpoints) or {}).get("search"))


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


def _abandoned_targets(parent: Path) -> list[str]:
    """The names of the output dirs in ``parent`` that a killed run left things beside: a lock file as ours
    are (a pid; a run that ends, however it fails, removes it) with a staging, checkpoints or moved-aside
    folder of the same name. Nothing else in the folder is ours to touch, whatever its name."""
    names = []
    for lock in sorted(parent.glob(".?*.lock")):
        layout = Layout(parent / lock.name[1:-len(".lock")])
        try:
            if lock.is_symlink() or not lock.is_file() or lock.stat().st_size > 32 or \
                    not lock.read_text().strip().isdigit():
                continue
        except (OSError, UnicodeDecodeError):
            continue
        if any(p.is_dir() and not p.is_symlink() for p in (layout.staging, layout.checkpoints, layout.old)):
            names.append(layout.target.name)
    return names


def clean_abandoned(own: Layout) -> list[str]:
    """(Main process, under our own lock.) What runs killed with another output dir in the same folder left
    (kill -9, a power cut): a run with the default, timestamped output dir is never run again on that dir,
    so the recovery of its own next run never comes. Each is handled under its lock, so a live run's
    folders are left alone: a finished publish is completed, a staging dir deleted, checkpoints deleted
    unless a resume can use them (then the user is told how to resume them, or to delete them)."""
    notes = []
    for name in _abandoned_targets(own.target.parent):
        layout = Layout(own.target.parent / name)
        if layout.target == own.target:
            continue
        try:
            lock = TargetLock(layout.lock).acquire(layout.target)
        except (ConfigError, OSError):
            continue   # a live run's, or a lock we may not take: not ours to touch
        try:
            notes += _clean_one(layout)
        except (ConfigError, OSError) as err:   # e.g. a finished run holding the user's files: left as it is
            notes.append(f"left {layout.target} as it is: {getattr(err, 'message', err)}")
        finally:
            lock.release()
    return notes


def _clean_one(layout: Layout) -> list[str]:
    """(Under its lock.) What a killed run left beside ``layout.target``, completed or deleted."""
    notes = recover(layout)
    if layout.staging.exists():
        _remove(layout.staging, layout)
        notes.append(f"deleted {layout.staging}, the unfinished output of a run that was killed")
    if layout.checkpoints.exists() and not is_resumable(layout.checkpoints):
        _remove(layout.checkpoints, layout)
        notes.append(f"deleted {layout.checkpoints}: it holds no checkpoint a resume could use")
    elif layout.checkpoints.exists():
        notes.append(f"{layout.checkpoints} holds the checkpoints of an interrupted run: resume it with "
                     f"--output-dir {layout.target}, or delete that folder")
    return notes


def publish(layout: Layout, remove_checkpoints: bool = True) -> None:
    """Move the finished staging dir into place; an old run is replaced only now that the new one is complete.

    Each step is one rename or a removal of something no longer needed, so a kill between any two
    leaves a state ``recover`` completes.
    """
    crash_point("publish:start")
    if layout.target.exists():
        check_nothing_of_the_users(layout.target)   # anything added while this run trained stays too
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


def fingerprint_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
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
    search: dict[str, Any] | None = None   # a finished --hp-search of this run: {"params", "record"}


def plan_stage(layout: Layout, fingerprint: dict[str, Any], resume: bool) -> Stage:
    """The checkpoint to resume from, and a finished search to reuse, if any, read-only (every process
    decides the same way).

    Checkpoints are resumed only when written under the same fingerprint (settings, data, tokenizer,
    search space); otherwise the run stops and says what changed, since resuming would mix two runs. A
    finished search alone, of other settings, is simply done again.
    """
    saved = _read_state(layout.checkpoints) if resume else None
    last = latest_checkpoint(layout.checkpoints) if saved is not None else None
    search = (saved or {}).get("search") or None
    fresh = Stage(layout.staging, layout.checkpoints, None, uuid.uuid4().hex)
    if saved is None or not (last or search):
        return fresh
    changed = fingerprint_changes(saved.get("fingerprint", {}), fingerprint)
    if changed and last:
        raise ConfigError(
            f"{layout.checkpoints} holds checkpoints of this output dir's run with other "
            f"{'; '.join(changed)}; resuming from them would mix two runs.",
            "Run with --no-resume to delete them and start afresh, or restore what changed.")
    if changed:
        return fresh
    return Stage(layout.staging, layout.checkpoints, last, saved.get("run_id") or fresh.run_id, search)


def make_stage(layout: Layout, stage: Stage, fingerprint: dict[str, Any]) -> None:
    """(Main process.) A fresh staging dir; fresh checkpoints unless resuming."""
    try:
        if layout.staging.exists():
            _remove(layout.staging, layout)
        layout.staging.mkdir(parents=True)
        if not stage.resume_from:
            _remove(layout.checkpoints, layout)
            layout.checkpoints.mkdir(parents=True)
            state = {"run_id": stage.run_id, "fingerprint": fingerprint}
            RunDir(layout.checkpoints).write_json(RESUME_STATE, {**state, "search": stage.search} if stage.search
                                                  else state)
    except OSError as err:
        raise FinetuneError(f"Can't create {layout.staging}: {err.strerror}.",
                            "Check free disk space and permissions, or choose another --output-dir.") from None


def record_search(checkpoints: Path, params: dict[str, Any], record: dict[str, Any]) -> None:
    """(Main process.) A finished --hp-search into resume.json: a resume trains its choice again, not a new one."""
    state = _read_state(checkpoints) or {}
    RunDir(checkpoints).write_json(RESUME_STATE, {**state, "search": {"params": params, "record": record}})


def abandon_stage(layout: Layout) -> None:
    """(Main process, after a failure.) The staging dir never resumes; checkpoints stay only when a resume
    can use them (a complete checkpoint, or a finished search)."""
    _remove(layout.staging, layout)
    if not is_resumable(layout.checkpoints):
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
