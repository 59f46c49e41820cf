"""Task kinds: everything the engine does differently for one kind of task.

A template's ``kind`` names one. A kind is one module of this package, named after it (the kind
``multi-label-classification`` lives in ``multi_label_classification.py``), holding one ``TaskKind``
subclass: its data roles and options, how targets are encoded and held out, how examples become model
inputs, its collator, metrics and baselines, how a trained model predicts, and its card's sections.
Adding a kind is adding such a module and a template that names it; nothing else names kinds.

Nothing here is imported until a kind is used, so listing the kinds costs no import of torch.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from ..errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from .base import TaskKind

_NOT_KINDS = {"base", "baselines"}   # shared code of the kinds


def names() -> list[str]:
    """Every kind, from the module names of this package (no module is imported)."""
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(__path__)
                  if m.name not in _NOT_KINDS and not m.name.startswith("_"))


def get(name: str) -> type["TaskKind"]:
    """The TaskKind class of a kind; a run makes one instance of it once its model is loaded."""
    from .base import TaskKind

    if name not in names():
        raise ConfigError(f"Task kind {name!r} is not supported. {did_you_mean(name, names())}")
    module = importlib.import_module(f"{__name__}.{name.replace('-', '_')}")
    found = [obj for obj in vars(module).values()
             if isinstance(obj, type) and issubclass(obj, TaskKind) and obj.name == name]
    if len(found) != 1:
        raise TypeError(f"{module.__name__} must define one TaskKind subclass named {name!r}.")
    return found[0]


def serving(model_config: dict) -> type["TaskKind"] | None:
    """The kind that serves a saved model with no run record (a plain model folder or Hub model), from its
    config.json (architecture, problem type)."""
    matches = [kind for kind in map(get, names()) if kind.serves(model_config)]
    return matches[0] if len(matches) == 1 else None


__all__ = ["get", "names", "serving"]
