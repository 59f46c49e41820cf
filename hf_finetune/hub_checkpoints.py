"""Checkpoints kept on the Hub while training, so a run cut short on one machine continues on the next.

With ``--resume-from-hub``, each checkpoint the Trainer saves is uploaded, as one commit that replaces
the previous one, to ``last-checkpoint/`` on the ``hf-finetune-checkpoints`` branch of the run's
``--push-to-hub`` repo. A run started with the flag first downloads that checkpoint into its local
checkpoints folder, where the usual resume rules hold (same settings, data and tokenizer, or refuse).
The main branch only ever receives finished runs; the branch is deleted once the final push lands.

The upload is synchronous: the next training step waits for it, so what is on the Hub is always a
checkpoint that was complete when training moved on. The Trainer loads the optimizer, scheduler and
RNG files with ``weights_only=True``; the pickled ``training_args.bin`` is never uploaded.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from . import hub
from .outputs import RESUME_STATE, latest_checkpoint

BRANCH = "hf-finetune-checkpoints"
FOLDER = "last-checkpoint"
BEST = "best-checkpoint"         # the weights of the best checkpoint so far, when it is not the last one
BEST_FILES = ("config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json")
NOT_UPLOADED = {"training_args.bin"}


class HubCheckpoints(TrainerCallback):
    """Uploads each saved checkpoint (main process) to the checkpoint branch of ``repo_id``."""

    def __init__(self, repo_id: str, token: str | None, resume_state: Path, private: bool = False):
        self.repo_id, self.token, self.resume_state, self.private = repo_id, token, resume_state, private

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        api = hub.api(self.token)
        with hub.errors(f"Preparing the checkpoint branch of {self.repo_id!r}"):
            api.create_repo(self.repo_id, private=self.private, exist_ok=True)
            api.create_branch(self.repo_id, branch=BRANCH, exist_ok=True)

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            best = Path(state.best_model_checkpoint) if state.best_model_checkpoint else None
            upload(self.repo_id, folder, self.resume_state, self.token, state.global_step,
                   best if best is not None and best.name != folder.name else None)


def upload(repo_id: str, folder: Path, resume_state: Path, token: str | None, step: int,
           best: Path | None = None) -> None:
    """One commit: the checkpoint's files (links and pickled arguments left out) and the run's resume
    state under ``last-checkpoint/``, the best checkpoint's weights under ``best-checkpoint/`` when it
    is an earlier one (``load_best_model_at_end`` needs them); what the previous commit had and this one
    lacks is deleted."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    api = hub.api(token)
    names = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.name not in NOT_UPLOADED:
            names[f"{FOLDER}/{path.relative_to(folder).as_posix()}"] = str(path)
    if resume_state.is_file():
        names[f"{FOLDER}/{RESUME_STATE}"] = str(resume_state)
    if best is not None:
        for name in BEST_FILES:
            if (best / name).is_file() and not (best / name).is_symlink():
                names[f"{BEST}/{name}"] = str(best / name)
        for shard in sorted(best.glob("model-*-of-*.safetensors")):
            names[f"{BEST}/{shard.name}"] = str(shard)
    with hub.errors(f"Saving the checkpoint of step {step} to {repo_id!r}"):
        existing = [p for p in api.list_repo_files(repo_id, revision=BRANCH)
                    if p.startswith((FOLDER + "/", BEST + "/"))]
        operations: list[Any] = [CommitOperationAdd(path_in_repo=n, path_or_fileobj=p) for n, p in names.items()]
        operations += [CommitOperationDelete(path_in_repo=p) for p in existing if p not in names]
        api.create_commit(repo_id, operations=operations, revision=BRANCH,
                          commit_message=f"hf-finetune: checkpoint at step {step}")


def pull(repo_id: str, token: str | None, checkpoints: Path) -> int | None:
    """Put the Hub's last checkpoint into ``checkpoints`` (unless a local one is as recent); return its step,
    or None when the branch holds none."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    with hub.errors(f"Looking for a checkpoint of {repo_id!r}"):
        try:
            files = hub.api(token).list_repo_files(repo_id, revision=BRANCH)
        except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError):
            return None   # no repo or no branch yet: nothing to resume
    if f"{FOLDER}/trainer_state.json" not in files or f"{FOLDER}/{RESUME_STATE}" not in files:
        return None
    with tempfile.TemporaryDirectory(prefix=".hub-checkpoint-", dir=checkpoints.parent) as tmp:
        with hub.errors(f"Downloading the checkpoint of {repo_id!r}"):
            snapshot_download(repo_id, revision=BRANCH, allow_patterns=[f"{FOLDER}/*", f"{BEST}/*"], local_dir=tmp,
                              token=token, endpoint=hub.endpoint())
        source = Path(tmp) / FOLDER
        state = json.loads((source / "trainer_state.json").read_text())
        step = int(state["global_step"])
        local = latest_checkpoint(checkpoints)
        if local and int(Path(local).name.rsplit("-", 1)[1]) >= step:
            return step   # this machine holds the same or a later checkpoint of the run
        if checkpoints.exists():
            shutil.rmtree(checkpoints)
        checkpoints.mkdir(parents=True)
        (source / RESUME_STATE).replace(checkpoints / RESUME_STATE)
        _relocate_best(state, Path(tmp) / BEST, checkpoints, step)
        (source / "trainer_state.json").write_text(json.dumps(state, indent=2) + "\n")
        source.replace(checkpoints / f"checkpoint-{step}")
    return step


def _relocate_best(state: dict[str, Any], best_source: Path, checkpoints: Path, step: int) -> None:
    """The state names the best checkpoint by its path on the machine that saved it: point it here."""
    best = state.get("best_model_checkpoint")
    if not best:
        return
    name = Path(best).name
    if name == f"checkpoint-{step}":
        state["best_model_checkpoint"] = str(checkpoints / name)
    elif best_source.is_dir():
        best_source.replace(checkpoints / name)   # weights only: never taken for a resumable checkpoint
        state["best_model_checkpoint"] = str(checkpoints / name)
    else:
        state["best_model_checkpoint"] = None


def delete_branch(repo_id: str, token: str | None) -> None:
    """After the final push: the checkpoints are no longer needed (a failure here only leaves the branch)."""
    try:
        hub.api(token).delete_branch(repo_id, branch=BRANCH)
    except Exception:  # noqa: BLE001 - best effort: the run itself is pushed
        pass
