"""Metrics through `evaluate`, offline by default.

The default metrics are `evaluate` modules shipped in this package (one folder each, loaded by
path). Any other name goes to `evaluate.load` as usual: a Hub metric id (online) or a local path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, OfflineError
from .. import hub

log = logging.getLogger("hf_finetune")


TIMING_SUFFIXES = ("runtime", "per_second", "preparation_time")   # Trainer bookkeeping, not model quality


def is_timing(key: str) -> bool:
    return key.endswith(TIMING_SUFFIXES)


def bundled_dir() -> Path:
    return Path(str(resources.files("hf_finetune.metrics")))


def bundled_names() -> list[str]:
    return sorted(p.name for p in bundled_dir().iterdir() if (p / f"{p.name}.py").exists())


def load(name: str):
    """Load a metric module: a bundled name, a local module path, or a Hub metric id."""
    import evaluate

    path = bundled_dir() / name
    target = str(path) if (path / f"{name}.py").exists() else name
    try:
        return evaluate.load(target)
    except FileNotFoundError as err:
        if not Path(name).exists() and not hub.reachable():
            raise OfflineError(
                f"Metric {name!r} is not built in, so `evaluate` must fetch it from the Hub, which can't be reached.",
                f"Built-in metrics that work offline: {', '.join(bundled_names())}.") from None
        raise ConfigError(f"Metric {name!r} can't be loaded: {err}") from None
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"Metric {name!r} can't be loaded: {str(err).splitlines()[0]}") from None


@dataclass
class MetricSuite:
    """The metrics of a run, computed together from (logits, labels)."""

    specs: list[tuple[str, dict[str, Any]]]
    modules: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, _ in self.specs:
            if name not in self.modules:
                self.modules[name] = load(name)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.specs]

    def compute(self, predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
        results: dict[str, float] = {}
        for name, args in self.specs:
            out = self.modules[name].compute(predictions=predictions, references=references, **args)
            for key, value in out.items():
                if isinstance(value, (int, float, np.floating, np.integer)):
                    results[key] = float(value)
        return results
