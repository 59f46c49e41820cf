"""The tokenization cache: a split's model inputs kept on disk across runs, under a key of everything
that decides them (the split's content, the processor's whole state, the kind's options).

The task kinds import this module, and the ``card`` command imports the kinds without reading any
data, so ``datasets`` (like torch and transformers) is imported only inside the functions that use it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .. import embedded

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
    import tempfile

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


def _clean_stale_temp(folder: Path) -> None:
    """Temp dirs of processes that died while tokenizing (kill -9)."""
    for tmp in folder.glob(".tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def map_cached(ds: Dataset, fn: Callable[[dict], dict], key_parts: list[Any], split: str, desc: str) -> tuple[Dataset, bool]:
    """``Dataset.map`` whose result is kept on disk under a key of everything that decides it (the
    split's content fingerprint, the processor's identity and the options, in ``key_parts``).

    ``datasets`` only caches maps of file-backed data sets and re-hashes the function each time;
    an explicit key makes a second run of the same data and tokenizer skip tokenization entirely.
    The map writes into a temp dir of this process, renamed into place when complete.
    Returns the mapped data set and whether it came from the cache.
    """
    from datasets import Dataset

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
    tmp = path.parent / f".tmp-{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    try:
        ds.map(fn, batched=True, remove_columns=ds.column_names, cache_file_name=str(tmp / path.name),
               load_from_cache_file=False, desc=desc)
        os.replace(tmp / path.name, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Dataset.from_file(str(path)), False
