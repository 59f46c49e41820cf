"""Metrics through `evaluate`, offline by default.

The default metrics are `evaluate` modules shipped in this package (one folder each, loaded by
path). Any other name goes to `evaluate.load` as usual, a Hub metric id (online) or a local module
path, but only with ``trust_remote_code``: either way `evaluate` imports and runs that module's code.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..errors import ConfigError, OfflineError
from .. import hub

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("hf_finetune")


TIMING_SUFFIXES = ("runtime", "per_second", "preparation_time")   # Trainer bookkeeping, not model quality


def is_timing(key: str) -> bool:
    return key.endswith(TIMING_SUFFIXES)


SUMMARY_SPLITS = {"zero_shot_test": "test (before fine-tuning)", "validation": "validation (best checkpoint)",
                  "test": "test"}


def summary_rows(metrics: dict[str, Any]) -> Iterator[tuple[str, str, float]]:
    """(split label, metric name, value) from a metrics.json, for every summary of a run (the CLI's last
    table, the CI step summary, a Job's end), so that they all show the same: model quality per split."""
    for split, label in SUMMARY_SPLITS.items():
        if split == "zero_shot_test" and metrics.get("zero_shot_examples"):
            label = f"test (before fine-tuning, {metrics['zero_shot_examples']} examples)"   # a sample, maybe
        for name, value in sorted((metrics.get(split) or {}).items()):
            if value is None:
                value = math.nan   # metrics.json holds a figure that was not a number as null
            if isinstance(value, (int, float)) and not is_timing(name):
                yield label, name, value


def summary_grid(metrics: dict[str, Any]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """summary_rows laid out as (metric names, [(split label, its cells)]): a row per split, a column per
    metric, a blank cell where a split lacks that metric."""
    by_split: dict[str, dict[str, float]] = {}
    for label, name, value in summary_rows(metrics):
        by_split.setdefault(label, {})[name] = value
    names = sorted({name for values in by_split.values() for name in values})
    return names, [(label, [f"{values[n]:.4f}" if n in values else "" for n in names])
                   for label, values in by_split.items()]


def bundled_dir() -> Path:
    return Path(str(resources.files("hf_finetune.metrics")))


def bundled_names() -> list[str]:
    return sorted(p.name for p in bundled_dir().iterdir() if (p / f"{p.name}.py").exists())


def check_trusted(names: list[str], trust_remote_code: bool) -> None:
    """Refuse, before any work, a metric whose loading would run code hf-finetune did not ship."""
    if trust_remote_code:
        return
    for name in names:
        if name not in bundled_names():
            raise ConfigError(
                f"Metric {name!r} is not one of hf-finetune's built-in metrics ({', '.join(bundled_names())}); "
                "loading it (a Hub metric or a local module) runs its Python code, so it is refused by default.",
                "If you trust it, pass --trust-remote-code (trust_remote_code=True in the API).")


def load(name: str, trust_remote_code: bool = False):
    """Load a metric module: a bundled name; a local module path or a Hub metric id when trusted."""
    import evaluate

    check_trusted([name], trust_remote_code)
    path = bundled_dir() / name
    target = str(path) if name in bundled_names() else name
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
    trust_remote_code: bool = False
    modules: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, _ in self.specs:
            if name not in self.modules:
                self.modules[name] = load(name, self.trust_remote_code)

    def compute(self, predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
        import numpy as np

        results: dict[str, float] = {}
        for name, args in self.specs:
            out = self.modules[name].compute(predictions=predictions, references=references, **args)
            for key, value in out.items():
                if isinstance(value, (int, float, np.floating, np.integer)):
                    results[key] = float(value)
        return results
