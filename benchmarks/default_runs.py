"""The README's default-run figures: `hf-finetune TASK` with no other arguments, as a new user runs it.

    python benchmarks/default_runs.py sentiment summarization image-classification

Each task runs in a fresh process (offline, a private cache, so nothing is reused from an earlier run)
and writes benchmarks/results/default-<task>.json: its test metrics (and zero-shot ones for
summarization), the wall time of the whole command and the training throughput.
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results  # noqa: E402


def run(task: str) -> Path:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, metrics, info, _ = results.run_offline(task, [])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = {
        "task": task, "baseline": baseline(task), "wall_seconds": round(wall, 1), "test": metrics["test"],
        # the command's own CPU time: on cores shared with other jobs the wall time is an upper bound
        "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
        "zero_shot_test": metrics.get("zero_shot_test"), "validation": metrics["validation"],
        "train_samples_per_second": metrics["train"].get("train_samples_per_second"),
        "train_examples": metrics["train"]["examples"], "steps": metrics["train"]["steps"],
        "splits": info["splits"], "precision": info["precision"],
        "run_baselines": info.get("baseline"),   # what the run itself reports in its card
    }
    return results.write(f"default-{task}", figures, command=["hf-finetune", task, "--output-dir", "RUN"])


def baseline(task: str) -> dict | None:
    """For classification: the accuracy, on the run's own test split, of always answering the most frequent
    training label; for multi-label and regression, the kind's baseline (the best constant label set, the
    training mean); summarization's baseline is the zero-shot model, measured by the run itself."""
    from collections import Counter

    from hf_finetune import data as data_mod, kinds, resolve_config

    template, config = resolve_config(task)
    kind = kinds.get(template.kind)
    if template.kind in ("multi-label-classification", "regression"):
        # the kind's own trivial predictor (label-frequency prior / training mean) on the run's test split
        prepared = data_mod.prepare(template, config, kind)
        return kind(template).baseline(prepared.splits["train"], prepared.splits["test"], prepared.labels, config)
    if not kind.classification:
        return None
    prepared = data_mod.prepare(template, config, kind)
    top = Counter(prepared.splits["train"]["label"]).most_common(1)[0][0]
    test = prepared.splits["test"]["label"]
    return {"majority_label": prepared.labels[top], "majority_accuracy": sum(y == top for y in test) / len(test)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tasks", nargs="+")
    for task in parser.parse_args().tasks:
        print(f"{task}: wrote {run(task)}", flush=True)


if __name__ == "__main__":
    main()
