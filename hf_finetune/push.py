"""Pushing a finished run to a Hub repo: one commit of exactly the files ``RunDir.push_plan`` lists.

Above both the Hub helpers (``hub``) and the run directory (``rundir``), which know nothing of each other.
"""

from __future__ import annotations

from pathlib import Path

from . import hub
from .errors import OfflineError
from .repo_id import check_repo_id
from .rundir import RunDir, is_pushed_name


def push_run(run_dir: str | Path, repo_id: str, *, token: str | None = None, private: bool = False,
             create_pr: bool = False, revision: str | None = None, commit_message: str | None = None) -> str:
    """Create (or reuse) the repo and upload a finished run in one commit; return the commit (or PR) URL.

    Exactly the files of ``RunDir.push_plan`` are uploaded (the model, processor, card, metrics, curves
    and a path-free config; never checkpoints, pickles, links or files a run does not write), and files
    of an earlier push that this run no longer has are deleted in the same commit.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    check_repo_id(repo_id)
    run = RunDir.open(run_dir)
    plan = run.push_plan()
    if not hub.reachable():
        raise OfflineError(f"Can't push to {repo_id!r}: the Hub ({hub.shown_endpoint()}) can't be reached.",
                           "The run is saved; push it later with `hf-finetune push RUN_DIR REPO_ID`.")
    api = hub.api(hub.resolve_token(token))
    additions = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=content if isinstance(content, bytes)
                                    else str(content)) for name, content in plan.files]
    pushed = {name for name, _ in plan.files}
    with hub.errors(f"Pushing to {repo_id!r}"):
        hub.ensure_repo(api, repo_id, private=private, what="the model")
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        stale = [CommitOperationDelete(path_in_repo=path) for path in api.list_repo_files(repo_id, revision=revision)
                 if is_pushed_name(path) and path not in pushed]
        commit = api.create_commit(
            repo_id, operations=[*additions, *stale], revision=revision, create_pr=create_pr,
            commit_message=commit_message or f"hf-finetune: upload run {run.path.name}")
    return commit.pr_url or commit.commit_url
