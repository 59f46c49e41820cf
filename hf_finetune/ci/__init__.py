"""CI helpers: the ready GitHub Actions training workflow, its job summary, and `hf` CLI integration."""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from ..errors import ConfigError
from ..metrics import is_timing

WORKFLOW_PATH = Path(".github/workflows/hf-finetune-train.yml")


def workflow_text(task: str = "sentiment") -> str:
    template = resources.files("hf_finetune.ci").joinpath("train.yml").read_text(encoding="utf-8")
    return template.replace("__TASK__", task)


def write_workflow(repo_dir: str | Path = ".", task: str = "sentiment", force: bool = False) -> Path:
    """Write the training workflow into a repository; refuse to overwrite without ``force``."""
    from .. import templates

    if not task.endswith((".yaml", ".yml")):
        templates.load(task)  # a clear error for an unknown task, before anything is written
    target = Path(repo_dir) / WORKFLOW_PATH
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists.", "Pass --force to replace it.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".yml.partial")
    tmp.write_text(workflow_text(task), encoding="utf-8")
    os.replace(tmp, target)
    return target


def summary_markdown(run_dir: str | Path) -> str:
    """A Markdown metrics table for $GITHUB_STEP_SUMMARY (or any Markdown report)."""
    run_dir = Path(run_dir)
    metrics_file = run_dir / "metrics.json"
    if not metrics_file.exists():
        raise ConfigError(f"{run_dir} is not a finished hf-finetune run (no metrics.json).")
    metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
    info = json.loads((run_dir / "run_info.json").read_text(encoding="utf-8")) if (run_dir / "run_info.json").exists() else {}
    rows = [(label, metrics[key]) for key, label in (("zero_shot_test", "test (before fine-tuning)"),
                                                      ("validation", "validation (best checkpoint)"),
                                                      ("test", "test")) if key in metrics]
    names = sorted({k for _, values in rows for k in values if not is_timing(k)})
    lines = [f"### hf-finetune: {info.get('task', 'run')} on {info.get('dataset', {}).get('name', '?')}", ""]
    base = info.get("base_model", {})
    if base:
        lines += [f"Base model: `{base.get('hub_id') or base.get('ref')}`", ""]
    lines += ["| split | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for label, values in rows:
        lines.append(f"| {label} | " + " | ".join(f"{values[n]:.4f}" if n in values else "" for n in names) + " |")
    train = metrics.get("train", {})
    if train:
        lines += ["", f"Training: {train.get('examples', '?')} examples, {train.get('steps', '?')} steps, "
                      f"{train.get('train_samples_per_second', 0):.1f} samples/s, {train.get('wall_seconds', 0):.0f} s."]
    return "\n".join(lines) + "\n"


EXTENSIONS_ROOT = Path("~/.local/share/hf/extensions")


def install_hf_extension(executable: str | None = None) -> Path:
    """Register this install as the `hf finetune` extension (huggingface_hub's `hf extensions` layout).

    `hf extensions install <owner>/hf-finetune` does the same from a GitHub repository; this registers
    the already-installed console script, so it also works offline.
    """
    executable = executable or shutil.which("hf-finetune") or str(Path(sys.executable).parent / "hf-finetune")
    if not Path(executable).exists():
        raise ConfigError(f"Can't find the hf-finetune executable ({executable}).")
    folder = EXTENSIONS_ROOT.expanduser() / "hf-finetune"
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "owner": "local", "repo": "hf-finetune", "repo_id": "local/hf-finetune", "short_name": "finetune",
        "executable_path": str(Path(executable).resolve()), "type": "python",
        "installed_at": datetime.now(timezone.utc).isoformat(),
        "description": "Fine-tune Hugging Face checkpoints from one command.", "commit_sha": None,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    return folder
