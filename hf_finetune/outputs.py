"""The output directory: written in a hidden temp dir beside the target and renamed at the end,
so a failed or killed run never leaves a folder that looks like a finished model."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from .errors import ConfigError, FinetuneError
from .rundir import FINGERPRINT

def default_dir(task: str, model_name: str) -> Path:
    return Path("outputs") / f"{task}-{model_name}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_target(target: Path, overwrite: bool) -> None:
    if target.exists() and not target.is_dir():
        raise ConfigError(f"The output dir {target} exists and is a file.", "Choose another --output-dir.")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise ConfigError(f"The output dir {target} already holds files.",
                          "Choose another --output-dir, or pass --overwrite-output-dir to replace it.")
    ancestor = target.parent.resolve()
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"Can't create the output dir {target}: {ancestor} is a file.")
    if not os.access(ancestor, os.W_OK):
        raise ConfigError(f"Can't write into {ancestor} (permission denied).", "Choose a writable --output-dir.")


def staging_dir(target: Path, resume: bool = True, main_process: bool = True,
                fingerprint: str = "") -> tuple[Path, str | None]:
    """The hidden work dir beside the target (same file system, so the final rename is atomic).

    Its name is fixed per target, so a run that was killed can be resumed: when it holds Trainer
    checkpoints and ``resume`` is on, the newest one is returned to resume from; otherwise it is
    started afresh.
    """
    staging = target.parent / f".{target.name}.partial"
    last = latest_checkpoint(staging / "checkpoints") if resume else None
    stamp = staging / FINGERPRINT
    if last and (not stamp.exists() or stamp.read_text() != fingerprint):
        last = None   # checkpoints of a run with other settings: resuming would mix two configurations
    if main_process and last is None:
        if staging.exists():
            shutil.rmtree(staging)
        try:
            staging.mkdir(parents=True)
        except OSError as err:
            raise FinetuneError(f"Can't create {staging}: {err.strerror}.",
                                "Check free disk space and permissions, or choose another --output-dir.") from None
        stamp.write_text(fingerprint)
    return staging, last


def latest_checkpoint(folder: Path) -> str | None:
    """The newest complete Trainer checkpoint (one with its trainer_state.json) in ``folder``."""
    if not folder.is_dir():
        return None
    done = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").exists()
            and p.name.split("-")[-1].isdigit()]
    return str(max(done, key=lambda p: int(p.name.split("-")[-1]))) if done else None


def publish(staging: Path, target: Path) -> None:
    """Move the finished staging dir into place, replacing an old run only now that the new one is complete."""
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)


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
