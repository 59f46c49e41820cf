"""Talking to the Hugging Face Hub (or a Hub-compatible endpoint set by HF_ENDPOINT)."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
from typing import Any, Iterator
from urllib.parse import urlparse

from huggingface_hub import constants

from . import tokens


def endpoint() -> str:
    """Where requests go: HF_ENDPOINT as set, credentials included."""
    return os.environ.get("HF_ENDPOINT", constants.ENDPOINT).rstrip("/")


def shown_endpoint() -> str:
    """The endpoint as cards, links and messages show it: without a user or password in the URL."""
    url = urlparse(endpoint())
    if not (url.username or url.password):
        return endpoint()
    return url._replace(netloc=url.hostname + (f":{url.port}" if url.port else "")).geturl()


CONNECT_SECONDS = 10.0   # the longest wait for a connection to the Hub


def timeout() -> float:
    """Seconds a Hub request may wait on the server (HF_FINETUNE_HUB_TIMEOUT, default 60)."""
    try:
        return max(1.0, float(os.environ.get("HF_FINETUNE_HUB_TIMEOUT", "60")))
    except ValueError:
        return 60.0


@functools.lru_cache(maxsize=None)
def use_timeouts() -> None:
    """huggingface_hub's shared HTTP client waits forever by default (a stalled server hangs a push for
    good), and many of its calls pass ``timeout=None`` explicitly. Give every request of this process a
    timeout unless the call set one itself, and every response a deadline as a whole (http_deadlines).
    (The library's own retries still apply, so they are bounded.)"""
    import httpx2
    from huggingface_hub import set_client_factory

    from . import http_deadlines
    from huggingface_hub.utils._http import default_client_factory

    seconds = timeout()

    def factory() -> httpx2.Client:
        client = default_client_factory()
        client.timeout = httpx2.Timeout(seconds, connect=min(seconds, CONNECT_SECONDS))
        http_deadlines.install(client, seconds)   # a byte a second must not keep a response alive
        send = client.send

        def send_with_timeout(request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
            given = request.extensions.get("timeout") or {}
            if not any(given.values()):
                request.extensions["timeout"] = client.timeout.as_dict()
            elif (given.get("connect") or float("inf")) > client.timeout.connect:
                # a call's long wait is for the answer (a Job's log stream waits 120 s for its keep-alives),
                # never for a connection: a Hub out of reach is known within the connect time-out
                request.extensions["timeout"] = {**given, "connect": client.timeout.connect}
            return send(request, **kwargs)

        client.send = send_with_timeout  # type: ignore[method-assign]
        return client

    set_client_factory(factory)


def transport_error(err: BaseException, doing: str, kept: str = "the run itself is saved") -> "Exception | None":
    """A HubError for a network failure (time-out, reset, refused), or None if ``err`` is something else.
    ``kept``: what the failure left as it was, said after "Try again later"."""
    import httpx2

    from .errors import HubError

    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, httpx2.ConnectTimeout):
            return HubError(f"{doing}: the Hub ({shown_endpoint()}) could not be reached (no connection within "
                            f"{min(timeout(), CONNECT_SECONDS):g} s).", f"Check the network, then try again; {kept}.")
        if isinstance(cause, httpx2.TimeoutException):
            return HubError(f"{doing}: the Hub ({shown_endpoint()}) did not answer within {timeout():g} s.",
                            f"Try again later (HF_FINETUNE_HUB_TIMEOUT sets the wait); {kept}.")
        if isinstance(cause, (httpx2.TransportError, ConnectionError)):
            detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
            return HubError(f"{doing}: the connection to the Hub ({shown_endpoint()}) failed ({detail}).",
                            f"Try again later; {kept}.")
        cause = cause.__cause__ or cause.__context__
    return None


def reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub endpoint answers a TCP connect, checked once per process (and endpoint).

    Without this, every Hub call on a machine with no network spends ~25-50 s in the client's
    retries before failing; with it, an unreachable Hub is known in milliseconds and the
    libraries are switched to their offline (cache-only) mode.
    """
    if constants.is_offline_mode():
        return False
    return _answers_a_connect(endpoint(), timeout)


@functools.lru_cache(maxsize=None)
def _answers_a_connect(endpoint_url: str, timeout: float) -> bool:
    url = urlparse(endpoint_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except ConnectionResetError:   # something answered (and hung up at once): the request will say what
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


# What a base checkpoint needs: configs, tokenizer/processor files and safetensors weights; and for a model
# made here, its run_config.yaml (predict truncates inputs at the run's --max-length).
PULL_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors", "*.tiktoken", "*.jinja", "*.py", "README.md",
                 "run_config.yaml"]
PULL_FALLBACK_WEIGHTS = ["pytorch_model*.bin"]   # only when there are no safetensors


def resolve_token(token: str | None = None) -> str | None:
    """--token, else HF_TOKEN, else the token stored by `hf auth login`; checked and masked in all output."""
    if token:
        return tokens.check(token, "--token")
    if os.environ.get("HF_TOKEN"):
        return tokens.from_environment()
    from huggingface_hub import get_token

    stored = get_token()
    tokens.register(stored)
    return stored


def pull(repo_id: str, revision: str | None = None, *, token: str | None = None, cache_dir: str | None = None,
         repo_type: str = "model") -> tuple[str, str]:
    """Download a base checkpoint's useful files at a pinned revision; return (local folder, commit sha).

    Safetensors weights are taken, `.bin` only when a repo has no safetensors, and TF / Flax / ONNX /
    msgpack files never. Offline, the same revision is looked up in the local cache.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    from .errors import OfflineError

    token = resolve_token(token)
    use_timeouts()
    if go_offline_if_unreachable():
        try:
            path = snapshot_download(repo_id, revision=revision, repo_type=repo_type, cache_dir=cache_dir,
                                     local_files_only=True)
        except (LocalEntryNotFoundError, OSError, ValueError):
            raise OfflineError(
                f"{repo_id!r} is not a local folder, so it must come from the Hugging Face Hub ({shown_endpoint()}), "
                "which can't be reached from here, and it is not in the local cache.", OFFLINE_ADVICE) from None
        return path, _sha_of_snapshot(path)
    with errors(f"Downloading {repo_id!r}", repo_id=repo_id, repo_type=repo_type, revision=revision):
        info = api(token).repo_info(repo_id, revision=revision, repo_type=repo_type)
        files = [s.rfilename for s in info.siblings or []]
        patterns = list(PULL_PATTERNS)
        if not any(f.endswith(".safetensors") for f in files):
            patterns += PULL_FALLBACK_WEIGHTS
        path = snapshot_download(repo_id, revision=info.sha, repo_type=repo_type, allow_patterns=patterns,
                                 cache_dir=cache_dir, token=token, endpoint=endpoint())
    return path, info.sha


def card_license(folder: str) -> str | None:
    """The `license` of a downloaded repo's model card metadata (README.md), if it has one."""
    from pathlib import Path

    readme = Path(folder) / "README.md"
    if not readme.is_file():
        return None
    try:
        from huggingface_hub import ModelCard

        value = ModelCard.load(readme).data.license
    except Exception:  # noqa: BLE001 - a card without (valid) metadata: no license known
        return None
    return value if isinstance(value, str) else None


def _sha_of_snapshot(path: str) -> str:
    """Cache snapshots live in .../snapshots/<commit sha>/."""
    from pathlib import Path

    return Path(path).name


def api(token: str | None) -> Any:
    """An HfApi on this endpoint, every request of it bounded in time."""
    from huggingface_hub import HfApi

    use_timeouts()
    return HfApi(endpoint=endpoint(), token=token)


def ensure_repo(api: Any, repo_id: str, *, private: bool, what: str, repo_type: str = "model",
                another: str = "push to another repo") -> bool:
    """Create the repo (private if asked) and return whether it is private. ``create_repo(private=True,
    exist_ok=True)`` leaves an existing public repo public: asked for a private one, an existing public repo is
    refused before ``what`` is uploaded, not made private (its visibility is its owner's decision)."""
    from .errors import HubError

    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    is_private = api.repo_info(repo_id, repo_type=repo_type).private is True
    if private and not is_private:
        kind = "data set" if repo_type == "dataset" else repo_type
        prefix = {"dataset": "datasets/", "space": "spaces/"}.get(repo_type, "")
        raise HubError(f"The {kind} repo {repo_id} already exists and is public, and {what} would go there; "
                       "a private repo was asked for, so nothing was uploaded.",
                       f"Make it private on the Hub ({shown_endpoint()}/{prefix}{repo_id}/settings), or delete it "
                       f"(hf-finetune then creates it private), or {another}.")
    return is_private


@contextlib.contextmanager
def errors(doing: str, *, repo_id: str | None = None, repo_type: str = "model",
           revision: str | None = None, kept: str = "the run itself is saved") -> Iterator[None]:
    """Hub failures inside the block as one HubError each: what was being done, what the Hub said, what to
    do; never a traceback or a token. ``repo_id``: say what is missing when the repo or revision is; ``kept``:
    what a network failure left as it was (the end of its hint)."""
    from huggingface_hub.errors import HfHubHTTPError

    from .errors import FinetuneError

    try:
        yield
    except HfHubHTTPError as err:
        raise _http_failure(err, doing, repo_id, repo_type, revision) from None
    except FinetuneError:
        raise
    except Exception as err:  # noqa: BLE001 - network failures come as several types
        failure = transport_error(err, doing, kept)
        if failure is None:
            raise
        raise failure from None


def _http_failure(err: Exception, doing: str, repo_id: str | None, repo_type: str, revision: str | None) -> Exception:
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    from .errors import HubError

    # subclass before its parent: a GatedRepoError is a RepositoryNotFoundError
    if repo_id and isinstance(err, GatedRepoError):
        return HubError(f"{repo_id!r} is gated: accept its terms on the Hub, then use a token with access.")
    if repo_id and isinstance(err, RepositoryNotFoundError):
        return HubError(f"There is no {repo_type} {repo_id!r} on the Hub ({shown_endpoint()}), or it is private.",
                        "Check the id; for a private repo, log in (`hf auth login`) or set HF_TOKEN.")
    if repo_id and isinstance(err, RevisionNotFoundError):
        return HubError(f"{repo_id!r} has no revision {revision!r}.", "Give a branch, tag or commit sha.")
    status = err.response.status_code if getattr(err, "response", None) is not None else None
    if status in (401, 403):
        return HubError(f"{doing} was refused by the Hub (HTTP {status}): the token is missing, invalid, "
                        "or lacks access.", "Set HF_TOKEN, run `hf auth login`, or pass --token.")
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return HubError(f"{doing} failed: {first}")
