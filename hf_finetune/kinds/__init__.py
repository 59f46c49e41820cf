"""Task kinds: the few places where a kind of task needs its own engine code.

A template's ``kind`` picks one of these. Each says which column roles its data has, how examples
become model inputs, which collator and metrics adapter it needs, and how its card's usage
snippet reads. Everything else (loading, splitting, training, saving, cards) is shared.
"""

from __future__ import annotations

from ..errors import ConfigError, did_you_mean
from .base import TaskKind
from .image_classification import ImageClassification
from .multi_label import MultiLabelClassification
from .regression import Regression
from .summarization import Summarization
from .text_classification import TextClassification

_KINDS: dict[str, type[TaskKind]] = {k.name: k for k in (TextClassification, Summarization, ImageClassification,
                                                          MultiLabelClassification, Regression)}


def register(kind: type[TaskKind]) -> type[TaskKind]:
    _KINDS[kind.name] = kind
    return kind


def get(name: str) -> TaskKind:
    if name not in _KINDS:
        raise ConfigError(f"Task kind {name!r} is not supported. {did_you_mean(name, sorted(_KINDS))}")
    return _KINDS[name]()


__all__ = ["TaskKind", "get", "register"]
