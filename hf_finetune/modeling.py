"""Loading the base checkpoint and its processor through the template's Auto classes."""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import embedded, hub
from .config import RunConfig
from .errors import ModelError, OfflineError
from .templates import TaskTemplate

log = logging.getLogger("hf_finetune")


@dataclass
class ModelSource:
    """The base model as the card and the output-dir name need it."""

    ref: str                    # what from_pretrained gets (path or Hub id)
    name: str                   # short name for the output dir
    hub_id: str | None          # Hub id for the card's base_model, when there is one
    revision: str | None = None
    description: str = ""
    license: str | None = None
    local: bool = False         # a folder on this machine (its path is never written into shared files)

    @property
    def shareable_ref(self) -> str:
        """How files others read name this model: the Hub id, else the local folder's name."""
        return self.hub_id or self.name


def resolve(template: TaskTemplate, config: RunConfig, token: str | None = None) -> ModelSource:
    ref = config.model or template.default_model
    if not ref:
        raise ModelError(f"Task {template.name!r} has no default model; pass --model.")
    if embedded.is_embedded(ref):
        asset = embedded.model(ref)
        return ModelSource(str(asset.locate()), asset.name, asset.hub_id, None, asset.source, asset.license)
    path = Path(ref).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").exists():
            raise ModelError(f"{path} is not a model folder (no config.json).",
                             "Give a folder written by save_pretrained, or a Hub model id.")
        return ModelSource(str(path), path.resolve().name, None, local=True, license=hub.card_license(str(path)))
    if ref.startswith((".", "/", "~")):
        raise ModelError(f"Model folder {ref} does not exist.")
    # A Hub id: fetch only what a checkpoint needs, pinned to the commit the revision points at.
    path, sha = hub.pull(ref, config.revision, token=token)
    return ModelSource(path, ref.rstrip("/").split("/")[-1], ref, sha, license=hub.card_license(path))


def from_pretrained(what: str, loader: Any, ref: str, trust_remote_code: bool, **kwargs: Any) -> Any:
    """``loader.from_pretrained`` with ``trust_remote_code`` always given: left unset, transformers asks on stdin
    whether to run a checkpoint's own code, and a piped ``yes`` would answer it."""
    from huggingface_hub.errors import StrictDataclassError   # a config value of the wrong type (transformers 5)

    try:
        return loader.from_pretrained(ref, trust_remote_code=bool(trust_remote_code), **kwargs)
    except ValueError as err:
        if "trust_remote_code" in str(err) and not trust_remote_code:
            raise ModelError(f"The {what} in {ref!r} needs its own Python code (a custom architecture, named by "
                             "its auto_map), which is never run by default.",
                             "If you trust its author, pass --trust-remote-code (trust_remote_code=True in the "
                             "API).") from None
        _refuse_unreadable_folder(what, ref, err)
        raise
    except (TypeError, AttributeError, KeyError, RuntimeError, StrictDataclassError) as err:
        _refuse_unreadable_folder(what, ref, err)
        raise
    except pickle.UnpicklingError:   # torch.load(weights_only=True) refused a .bin: never retried without it
        raise ModelError(f"The {what} in {ref!r} has weights in a pickle (.bin) that is not plain tensor data: "
                         "loading it could run code, so it was refused and not loaded.",
                         "Use a checkpoint with safetensors weights (model.safetensors).") from None


def _refuse_unreadable_folder(what: str, ref: str, err: Exception) -> None:
    """A model folder whose config.json (or weights) transformers can't make sense of: a value of the wrong
    type (``"id2label": "abc"``), label ids that are not numbers, sizes that are negative or that the weights
    don't have. The folder may come from anyone: that is its fault, said so, not a crash of ours."""
    if not Path(ref).is_dir():
        return
    if isinstance(err, RuntimeError) and "out of memory" in str(err).lower():
        return
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    raise ModelError(f"Could not load the {what} from {ref!r}: its config.json (or its weights) holds values "
                     f"transformers can't read ({type(err).__name__}: {first[:200]}).",
                     "Check config.json (id2label, label2id, sizes) against what save_pretrained writes, or use the "
                     "output dir of a finished run.") from None


def _load(what: str, loader: Any, source: ModelSource, trust_remote_code: bool = False, **kwargs: Any) -> Any:
    is_hub = source.hub_id is not None and not Path(source.ref).exists()
    offline = hub.go_offline_if_unreachable() if is_hub else False
    try:
        return from_pretrained(what, loader, source.ref, trust_remote_code, **kwargs)
    except (OSError, ValueError) as err:
        if is_hub and offline:
            raise OfflineError(
                f"The {what} {source.ref!r} is not a local folder, so it must come from the Hugging Face Hub "
                f"({hub.shown_endpoint()}), which can't be reached from here, and it is not in the local cache.",
                hub.OFFLINE_ADVICE,
            ) from None
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"Could not load the {what} from {source.ref!r}: {first}",
                         "Check the model id or folder; it must hold a checkpoint saved with save_pretrained.") from None


def load_processor(template: TaskTemplate, source: ModelSource) -> Any:
    return _load("processor", template.processor.resolve(), source, template.trust_remote_code,
                 **template.processor.args)


def load_model(template: TaskTemplate, source: ModelSource, labels: list[str] | None = None) -> Any:
    kwargs: dict[str, Any] = dict(template.model_load_args)
    kwargs.update(template.auto_class.args)
    if labels is not None:
        kwargs.update(num_labels=len(labels), id2label=dict(enumerate(labels)),
                      label2id={name: i for i, name in enumerate(labels)}, ignore_mismatched_sizes=True)
    return _load("model", template.auto_class.resolve(), source, template.trust_remote_code, **kwargs)
