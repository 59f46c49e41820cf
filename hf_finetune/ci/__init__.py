"""CI helpers: the ready GitHub Actions training workflow, its job summary, and `hf` CLI integration."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from ..errors import ConfigError, did_you_mean
from ..metrics import summary_grid
from ..rundir import RunDir

WORKFLOW_PATH = Path(".github/workflows/hf-finetune-train.yml")


MODE_MARKERS = {True: "  # oidc-only", False: "  # token-only"}
WHERE_MARKERS = {True: "  # jobs-only", False: "  # runner-only"}
BLOCK = re.compile(r"\s*# (>>>|<<<) (jobs|runner)-only")


def workflow_text(task: str, install_spec: str, oidc: bool = False, jobs_flavor: str | None = None) -> str:
    """The packaged workflow for one task and install spec; with ``oidc`` the keyless variant (the only
    one that asks for `id-token: write`), else the HF_TOKEN-secret one; with ``jobs_flavor`` the runner
    only submits and follows a Hugging Face Job, else it trains itself. Lines (``# oidc-only``) and
    blocks (``# >>> jobs-only`` ... ``# <<< jobs-only``) of the other variants are left out."""
    template = resources.files("hf_finetune.ci").joinpath("train.yml").read_text(encoding="utf-8")
    jobs = jobs_flavor is not None
    lines, skipping = [], False
    for line in template.splitlines():
        block = BLOCK.fullmatch(line)
        if block:
            skipping = block[1] == ">>>" and (block[2] == "jobs") != jobs
            continue
        if skipping or line.endswith((MODE_MARKERS[not oidc], WHERE_MARKERS[not jobs])):
            continue
        lines.append(line.removesuffix(MODE_MARKERS[oidc]).removesuffix(WHERE_MARKERS[jobs]))
    text = "\n".join(lines) + "\n"
    task_env = "${{ inputs.task || '" + task.replace("'", "''") + "' }}"   # '' is a quote in an expression literal
    return (text.replace("__TASK_ENV__", _yaml_scalar(task_env)).replace("__TASK__", _yaml_scalar(task))
            .replace("__INSTALL_SPEC_YAML__", json.dumps(install_spec))
            .replace("__INSTALL_SPEC__", install_spec).replace("__FLAVOR__", jobs_flavor or ""))


def _yaml_scalar(value: str) -> str:
    """``value`` as a YAML scalar that reads back as itself: plain where YAML keeps it (`sentiment`), else
    double-quoted (a path with `: `, ` #` or a leading quote would otherwise end, comment out or break it)."""
    import yaml

    try:
        if yaml.safe_load(value) == value:
            return value
    except yaml.YAMLError:
        pass
    return json.dumps(value)


def write_workflow(repo_dir: str | Path = ".", task: str = "sentiment", force: bool = False,
                   install_spec: str | None = None, oidc: bool = False, jobs_flavor: str | None = None) -> Path:
    """Write the training workflow into a repository; refuse to overwrite without ``force``.

    ``install_spec`` defaults to the spec of the running hf-finetune (``install.install_spec``); a local
    install has none, and then one must be given.
    """
    from .. import templates
    from ..install import PLACEHOLDER, install_spec as running_spec, is_placeholder, without_credentials

    if not task.endswith((".yaml", ".yml")):
        templates.bundled_path(task)  # a clear error for an unknown task, before anything is written
    spec = install_spec or running_spec("embedded")
    if not spec:
        raise ConfigError("This hf-finetune was installed from a local source tree, so there is no install command "
                          "that would give a GitHub runner this same build; a bare `hf-finetune` from the public "
                          "index is not written in its place.",
                          f"Pass --install-spec (e.g. '{PLACEHOLDER}').")
    if any(ch in spec for ch in "\n\r") or not spec.strip():
        raise ConfigError("--install-spec must be one line.")
    masked = without_credentials(spec)
    if masked:
        raise ConfigError(f"--install-spec carries credentials ({masked.strip()!r} with them masked): written into "
                          "the workflow, they would be readable by anyone who can read the repository, and they "
                          "stay in its history. Nothing was written.",
                          "Pass the spec without credentials and give the runner access through a GitHub Actions "
                          "secret instead (Settings > Secrets and variables > Actions, e.g. GH_PAT, then in the "
                          "Install step: git config --global "
                          "url.\"https://x-access-token:${{ secrets.GH_PAT }}@github.com/\".insteadOf "
                          "https://github.com/).")
    if any(not ch.isprintable() for ch in task):
        raise ConfigError("--task must be one line of printable characters.")
    if is_placeholder(spec):
        raise ConfigError(f"--install-spec {spec!r} is a placeholder: ORG/REPO and COMMIT stand for your "
                          "repository and the commit to install.",
                          "Put in the real ones (e.g. `git rev-parse HEAD` gives the commit).")
    if jobs_flavor is not None:
        from ..jobs import flavors

        if jobs_flavor not in flavors():
            raise ConfigError(f"Unknown --jobs-flavor {jobs_flavor!r}. {did_you_mean(jobs_flavor, flavors())}")
    target = Path(repo_dir) / WORKFLOW_PATH
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists.", "Pass --force to replace it.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".yml.partial")
    tmp.write_text(workflow_text(task, spec.strip(), oidc, jobs_flavor), encoding="utf-8")
    os.replace(tmp, target)
    return target


def summary_markdown(run_dir: str | Path) -> str:
    """A Markdown metrics table for $GITHUB_STEP_SUMMARY (or any Markdown report)."""
    run = RunDir.open(run_dir)
    metrics, info = run.metrics, run.info
    names, rows = summary_grid(metrics)
    lines = [f"### hf-finetune: {info.task or 'run'} on {info.dataset.name or '?'}", ""]
    base = info.base_model.hub_id or info.base_model.ref
    if base:
        lines += [f"Base model: `{base}`", ""]
    lines += ["| split | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
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
