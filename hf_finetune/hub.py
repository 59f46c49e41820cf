"""Talking to the Hugging Face Hub (or a Hub-compatible endpoint set by HF_ENDPOINT)."""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

from huggingface_hub import constants


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", constants.ENDPOINT).rstrip("/")


@functools.lru_cache(maxsize=None)
def reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub endpoint answers a TCP connect, checked once per process.

    Without this, every Hub call on a machine with no network spends ~25-50 s in the client's
    retries before failing; with it, an unreachable Hub is known in milliseconds and the
    libraries are switched to their offline (cache-only) mode.
    """
    if constants.is_offline_mode():
        return False
    url = urlparse(endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def go_offline_if_unreachable() -> bool:
    """Put huggingface_hub, transformers and datasets in cache-only mode when the Hub is out of reach.

    Returns True when offline. Cached models and data sets keep working, as with HF_HUB_OFFLINE=1.
    """
    if reachable():
        return False
    constants.HF_HUB_OFFLINE = True
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import datasets.config

        datasets.config.HF_HUB_OFFLINE = True
    except ImportError:  # pragma: no cover - datasets is a dependency
        pass
    return True


OFFLINE_ADVICE = (
    "What works offline: a local folder or file (--model ./my-model, --dataset reviews.csv), "
    "anything already in the Hugging Face cache (pre-fetch it while online), "
    "or the embedded default (leave out --model / --dataset; needs pip install \"hf-finetune[embedded]\")."
)


# Files of a finished run that belong on the Hub; checkpoints and optimizer states never do.
PUSH_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "README.md", "training_curves.png",
                 "run_config.yaml", "*.jinja"]
PUSH_IGNORE = ["checkpoint-*", "checkpoints/*", "*.pt", "*.pth", "*.bin", "optimizer*", "scheduler*",
               "rng_state*", "training_args.bin", ".*"]


def push_run(run_dir, repo_id: str, *, token: str | None = None, private: bool = False) -> str:
    """Create (or reuse) the repo and upload the finished run in one commit; returns the commit URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from .errors import HubError

    api = HfApi(endpoint=endpoint(), token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=str(run_dir), allow_patterns=PUSH_PATTERNS,
                                   ignore_patterns=PUSH_IGNORE,
                                   commit_message=f"hf-finetune: upload run {getattr(run_dir, 'name', run_dir)}")
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else None
        if status in (401, 403):
            raise HubError(f"The Hub refused the push to {repo_id!r} (HTTP {status}): the token is missing, "
                           "invalid, or lacks write access to that namespace.",
                           "Set HF_TOKEN, run `hf auth login`, or pass --token with a write token.") from None
        raise HubError(f"Pushing to {repo_id!r} failed: {str(err).splitlines()[0]}") from None
    except OSError as err:
        raise HubError(f"Pushing to {repo_id!r} failed: the Hub ({endpoint()}) can't be reached ({err}).",
                       "The run itself is saved; push it later with `hf-finetune push RUN_DIR REPO_ID`.") from None
    return commit.commit_url if hasattr(commit, "commit_url") else str(commit)
