"""The tokenization cache: a split's model inputs kept on disk across runs, under a key of everything
that decides them (the split's content, the processor's whole state, the kind's options).

The task kinds import this module, and the ``card`` command imports the kinds without reading any
data, so ``datasets`` (like torch and transformers) is imported only inside the functions that use it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .. import embedded
from ..errors import DataError, FinetuneError

if TYPE_CHECKING:
    from datasets import Dataset


def cache_dir() -> Path:
    return embedded.cache_root() / "tokenized"


CHARS_PER_TOKEN = 64   # texts are cut to max_length x this before tokenizing (a token rarely spans more)


def bounded(texts: list[str], max_tokens: int) -> list[str]:
    """Cut texts to a length no tokenization of ``max_tokens`` tokens reaches in practice, so that a
    multi-megabyte line costs no gigabytes of token ids that truncation throws away."""
    limit = max_tokens * CHARS_PER_TOKEN
    return [t if len(t) <= limit else t[:limit] for t in texts]


def processor_identity(processor: Any) -> str:
    """A hash of everything that decides a processor's output: for a fast tokenizer its whole serialised
    state (normaliser, pre-tokeniser, vocabulary, post-processor) and its settings; otherwise what
    ``save_pretrained`` writes."""
    digest = hashlib.sha256(type(processor).__name__.encode())
    backend = getattr(processor, "backend_tokenizer", None)
    if backend is not None:
        state = json.loads(backend.to_str())
        # truncation / padding are set on the backend by each call (max_length=...): call state, not identity
        state.pop("truncation", None)
        state.pop("padding", None)
        digest.update(json.dumps(state, sort_keys=True).encode())
        settings = {k: getattr(processor, k, None) for k in ("model_max_length", "padding_side", "truncation_side")}
        digest.update(json.dumps([processor.init_kwargs, settings, processor.all_special_tokens], sort_keys=True,
                                 default=str).encode())
        return digest.hexdigest()
    with tempfile.TemporaryDirectory() as tmp:
        processor.save_pretrained(tmp)
        for file in sorted(Path(tmp).rglob("*")):
            if file.is_file():
                digest.update(file.name.encode() + file.read_bytes())
    return digest.hexdigest()


LOCK = ".lock"   # in each temp dir, locked (flock) by the run writing there
UNLOCKED_GRACE_S = 60   # a temp dir without its lock this long after it was made is a dead run's


def _clean_stale_temp(folder: Path) -> None:
    """Temp dirs of runs that died while tokenizing (kill -9): those whose lock is free. The pid in a temp
    dir's name is no proof: a run in another container (another pid namespace) sharing this cache, or a
    pid reused since, makes a live run look dead or a dead one alive."""
    for tmp in folder.glob(".tmp-*"):
        try:
            fd = os.open(tmp / LOCK, os.O_RDWR | os.O_NOFOLLOW)
        except FileNotFoundError:   # no lock: an older version's, or one made a moment ago, not locked yet
            with contextlib.suppress(OSError):
                if time.time() - tmp.stat().st_mtime > UNLOCKED_GRACE_S:
                    shutil.rmtree(tmp, ignore_errors=True)
            continue
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue   # held: a live run's
        try:
            shutil.rmtree(tmp, ignore_errors=True)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _temp_dir(folder: Path) -> Iterator[Path]:
    """A temp dir of this run's own in ``folder`` (unique even when another run has the same pid), locked
    while in use so that no other run's cleanup takes it; removed afterwards."""
    while True:
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=folder))
        try:
            fd = os.open(tmp / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except FileNotFoundError:
            continue   # another run's cleanup took it before it was locked
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.stat(tmp / LOCK).st_ino == os.fstat(fd).st_ino:
                break
        except OSError:
            pass
        os.close(fd)   # a cleanup took it between our open and our lock: make another
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        os.close(fd)


def map_cached(ds: Dataset, fn: Callable[[dict], dict], key_parts: list[Any], split: str, desc: str) -> tuple[Dataset, bool]:
    """``Dataset.map`` whose result is kept on disk under a key of everything that decides it (the
    split's content fingerprint, the processor's identity and the options, in ``key_parts``).

    ``datasets`` only caches maps of file-backed data sets and re-hashes the function each time;
    an explicit key makes a second run of the same data and tokenizer skip tokenization entirely.
    The map writes into a temp dir of this process, renamed into place when complete.
    Returns the mapped data set and whether it came from the cache.
    """
    from datasets import Dataset

    if len(ds) == 0:   # `map` writes no file for no rows; said as it is, not as a file that went missing
        raise DataError(f"The {split} split has no rows to tokenize.")
    key = hashlib.sha256(json.dumps(key_parts, default=str).encode()).hexdigest()[:24]
    path = cache_dir() / key / f"{split}.arrow"
    if path.parent.is_dir():
        _clean_stale_temp(path.parent)
    if path.exists():
        try:
            return Dataset.from_file(str(path)), True
        except Exception:  # noqa: BLE001 - a damaged cache file is simply rebuilt
            path.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _temp_dir(path.parent) as tmp:
        try:
            ds.map(fn, batched=True, remove_columns=ds.column_names, cache_file_name=str(tmp / path.name),
                   load_from_cache_file=False, desc=desc)
            os.replace(tmp / path.name, path)
        except FileNotFoundError as err:
            if (tmp / LOCK).exists():
                raise
            raise FinetuneError(f"The tokenization cache's temp folder {tmp} was deleted while this run wrote into "
                                f"it ({err.filename or err}): something else removed it (not this run's disk "
                                "space or permissions).", "Run again; if it recurs, give this run a cache of its "
                                "own with HF_FINETUNE_CACHE.") from None
    return Dataset.from_file(str(path)), False
