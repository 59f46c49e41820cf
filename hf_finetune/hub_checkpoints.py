"""Checkpoints kept on the Hub while training, so a run cut short on one machine continues on the next.

With ``--resume-from-hub``, each checkpoint the Trainer saves is uploaded, as one commit that replaces
the previous one, to ``last-checkpoint/`` on the ``hf-finetune-checkpoints`` branch of the run's
``--push-to-hub`` repo. A run started with the flag first compares the branch's run with its own
(same settings, data and tokenizer, or refuse, touching nothing local), then downloads that checkpoint
into its local checkpoints folder, where the usual resume rules hold. The main branch only ever
receives finished runs; the branch is deleted once the final push lands.

Nothing uploaded holds a local path: ``resume.json`` names local inputs by their file or folder name (as
the pushed ``run_config.yaml`` does), ``trainer_state.json`` names the best checkpoint by its folder name.
The branch is in the ``--push-to-hub`` repo, so it is public unless that repo is private (the run says which).

The upload is synchronous: the next training step waits for it, so what is on the Hub is always a
checkpoint that was complete when training moved on. The Trainer loads the optimizer, scheduler and
RNG files with ``weights_only=True``; the pickled ``training_args.bin`` is never uploaded.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from transformers import TrainerCallback

from . import hub
from .errors import ConfigError
from .outputs import RESUME_STATE, fingerprint_changes, latest_checkpoint

BRANCH = "hf-finetune-checkpoints"
FOLDER = "last-checkpoint"
BEST = "best-checkpoint"         # the weights of the best checkpoint so far, when it is not the last one
BEST_FILES = ("config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json")
NOT_UPLOADED = {"training_args.bin"}
LOCAL_INPUTS = ("model", "dataset", "template")   # settings that may name a local file or folder


class HubCheckpoints(TrainerCallback):
    """Uploads each saved checkpoint (main process) to the checkpoint branch of ``repo_id``."""

    def __init__(self, repo_id: str, token: str | None, resume_state: Path, private: bool = False,
                 say: Callable[[str], None] = print):
        self.repo_id, self.token, self.resume_state, self.private, self.say = repo_id, token, resume_state, private, say

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        api = hub.api(self.token)
        with hub.errors(f"Preparing the checkpoint branch of {self.repo_id!r}"):
            private = hub.ensure_repo(api, self.repo_id, private=self.private, what="the run's checkpoints")
            api.create_branch(self.repo_id, branch=BRANCH, exist_ok=True)
        self.say(f"checkpoints go to branch {BRANCH} of {self.repo_id}, a private repo" if private else
                 f"checkpoints go to branch {BRANCH} of {self.repo_id}, a public repo: anyone can download them "
                 "(--hub-private-repo creates the repo private)")

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
    names: dict[str, str | bytes] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.name not in NOT_UPLOADED:
            names[f"{FOLDER}/{path.relative_to(folder).as_posix()}"] = str(path)
    if (folder / "trainer_state.json").is_file():
        names[f"{FOLDER}/trainer_state.json"] = _shareable_trainer_state(folder / "trainer_state.json")
    if resume_state.is_file():
        names[f"{FOLDER}/{RESUME_STATE}"] = _shareable_resume_state(resume_state)
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


def _shareable_trainer_state(path: Path) -> bytes:
    """trainer_state.json with the best checkpoint named by its folder name, not its path here (``pull``
    points it at the folder on the machine that resumes)."""
    state = json.loads(path.read_text())
    if state.get("best_model_checkpoint"):
        state["best_model_checkpoint"] = Path(state["best_model_checkpoint"]).name
    return (json.dumps(state, indent=2, sort_keys=True) + "\n").encode()


def _shareable_resume_state(path: Path) -> bytes:
    """resume.json as the Hub keeps it: its fingerprint without local paths."""
    state = json.loads(path.read_text())
    state["fingerprint"] = shareable_fingerprint(state.get("fingerprint") or {})
    return (json.dumps(state, indent=2, default=str) + "\n").encode()


def shareable_fingerprint(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """A run's fingerprint with local inputs named by their file or folder name, as in the pushed
    run_config.yaml: no local path leaves the machine, and the same inputs on another machine (the data
    by its content hash) count as the same run."""
    settings = dict(fingerprint.get("settings") or {})
    for key in LOCAL_INPUTS:
        value = settings.get(key)
        if isinstance(value, str) and value and Path(value).expanduser().exists():
            settings[key] = Path(value).expanduser().resolve().name
    return {**fingerprint, "settings": settings}


def pull(repo_id: str, token: str | None, checkpoints: Path, fingerprint: dict[str, Any]) -> int | None:
    """Put the Hub's last checkpoint into ``checkpoints`` (unless a local one is as recent); return its step,
    or None when the branch holds none. A branch holding a run of another ``fingerprint`` is refused first,
    before anything local is touched."""
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    with hub.errors(f"Looking for a checkpoint of {repo_id!r}"):
        try:
            info = hub.api(token).repo_info(repo_id, revision=BRANCH)
        except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError):
            return None   # no repo or no branch yet: nothing to resume
    files = {s.rfilename for s in info.siblings or []}
    if f"{FOLDER}/trainer_state.json" not in files or f"{FOLDER}/{RESUME_STATE}" not in files:
        return None
    with tempfile.TemporaryDirectory(prefix=".hub-checkpoint-", dir=checkpoints.parent) as tmp:
        _download(repo_id, info.sha, token, tmp, [f"{FOLDER}/trainer_state.json", f"{FOLDER}/{RESUME_STATE}"])
        source = Path(tmp) / FOLDER
        state = json.loads((source / "trainer_state.json").read_text())
        step = int(state["global_step"])
        saved = json.loads((source / RESUME_STATE).read_text())
        _check_same_run(repo_id, step, saved.get("fingerprint") or {}, fingerprint)
        local = latest_checkpoint(checkpoints)
        if local and int(Path(local).name.rsplit("-", 1)[1]) >= step:
            return step   # this machine holds the same or a later checkpoint of the run
        _download(repo_id, info.sha, token, tmp, [f"{FOLDER}/*", f"{BEST}/*"])
        if checkpoints.exists():
            shutil.rmtree(checkpoints)
        checkpoints.mkdir(parents=True)
        # the same run, under this machine's paths (what the local resume check compares)
        (checkpoints / RESUME_STATE).write_text(json.dumps({**saved, "fingerprint": fingerprint}, indent=2,
                                                           default=str) + "\n")
        (source / RESUME_STATE).unlink()
        _relocate_best(state, Path(tmp) / BEST, checkpoints, step)
        (source / "trainer_state.json").write_text(json.dumps(state, indent=2) + "\n")
        source.replace(checkpoints / f"checkpoint-{step}")
    return step


def _download(repo_id: str, commit: str, token: str | None, folder: str, patterns: list[str]) -> None:
    from huggingface_hub import snapshot_download

    with hub.errors(f"Downloading the checkpoint of {repo_id!r}"):
        snapshot_download(repo_id, revision=commit, allow_patterns=patterns, local_dir=folder, token=token,
                          endpoint=hub.endpoint())


def _check_same_run(repo_id: str, step: int, saved: dict[str, Any], current: dict[str, Any]) -> None:
    """Refuse the branch's checkpoint when its run had other settings, data or tokenizer: resuming would
    mix two runs (and replacing the local checkpoints with it would lose this run's)."""
    changed = fingerprint_changes(shareable_fingerprint(saved), shareable_fingerprint(current))
    if changed:
        raise ConfigError(
            f"The checkpoint on the Hub ({repo_id}, branch {BRANCH}, step {step}) is of a run with other "
            f"{'; '.join(changed)} than this one; resuming from it would mix two runs. Local checkpoints were "
            "left as they are.",
            "Run with the settings of that run to continue it; or push this one to another repo (--push-to-hub); "
            "or run with --no-resume to start afresh (this output dir's checkpoints are deleted, and this run's "
            f"replace those on branch {BRANCH}).")


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
