"""A small study per template that picks its defaults: the previous default, candidate settings and a
hyper-parameter search, each a real `hf-finetune TASK ...` command on the template's embedded data,
side by side with the baselines the run reports on the same test split (majority class; TF-IDF +
logistic regression; scikit-learn's plain SVC on pixels; lead-3).

    python benchmarks/defaults_study.py image-classification                 # every row of that study
    python benchmarks/defaults_study.py image-classification --rows before   # some rows (merged into the file)
    python benchmarks/defaults_study.py sentiment --rows --import-row "default" default-sentiment   # a default run

Writes benchmarks/results/defaults-<task>.json; the default is the row with the best *validation*
figure (picking on test would tune to the test split), and its test figures are what the README quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results  # noqa: E402

# Per task: rows of flags added to `hf-finetune TASK` (on top of the template's defaults and default_run).
# Not yet run (they did not fit the shared 2-core machine): the image and summarization candidates and the
# image search; results/defaults-*.json holds what was run.
STUDIES: dict[str, dict[str, list[str]]] = {
    "image-classification": {
        # the default itself is imported: --import-row "default (unchanged)" default-image-classification
        "64px, no crop, 6 epochs at 1e-3": ["--image-size", "64", "--image-augmentation", "none",
                                            "--learning-rate", "1e-3", "--num-train-epochs", "6"],
        "hp-search 4 trials": ["--hp-search", "4", "--image-size", "64", "--image-augmentation", "none"],
    },
    "sentiment": {
        # the default itself is imported from default_runs.py's file: --import-row "default" default-sentiment
        # a search costs N runs: on the shared 2 CPU cores it ran on 500 of the default's training tweets and
        # 300 validation tweets (the same 2,000 test tweets)
        "hp-search 2 trials, 500 training tweets": ["--hp-search", "2", "--max-train-samples", "500",
                                                    "--max-eval-samples", "300", "--eval-steps", "8"],
    },
    "summarization": {
        # the default itself is imported: --import-row "default (unchanged)" default-summarization
        "8 epochs at 3e-4": ["--learning-rate", "3e-4", "--num-train-epochs", "8"],
    },
}
HEADLINE = {"image-classification": "accuracy", "sentiment": "f1", "summarization": "rougeLsum"}


def run_row(task: str, flags: list[str]) -> dict[str, Any]:
    """One command in a fresh process, offline, with a private cache: its test / validation metrics, the
    baselines it reports, its wall time (and the search's trials)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=f"{tmp}/hf", HF_FINETUNE_CACHE=f"{tmp}/cache",
                   HF_HUB_DISABLE_TELEMETRY="1")
        out = Path(tmp) / "run"
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "hf_finetune", task, "--output-dir", str(out), *flags], env=env,
                              capture_output=True, text=True)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            sys.exit(f"{task} {shlex.join(flags)} failed:\n{proc.stderr[-3000:]}")
        metrics = json.loads((out / "metrics.json").read_text())
        info = json.loads((out / "run_info.json").read_text())
        config = (out / "run_config.yaml").read_text()
    import yaml

    saved = yaml.safe_load(config)
    return {"command": shlex.join(["hf-finetune", task, *flags]), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "wall_seconds": round(wall, 1),
            "test": metrics["test"], "validation": metrics["validation"], "steps": metrics["train"]["steps"],
            "baseline": info.get("baseline"), "splits": info["splits"], "precision": info["precision"],
            "hp_search": info.get("hp_search"),
            "resolved": {k: saved.get(k) for k in ("learning_rate", "num_train_epochs", "warmup_steps",
                                                   "weight_decay", "per_device_train_batch_size",
                                                   "lr_scheduler_type", "image_size", "image_augmentation")
                         if k in saved}}


def imported_row(file_name: str) -> dict[str, Any]:
    """A row measured by benchmarks/default_runs.py (`hf-finetune TASK`, as a new user runs it), taken with its
    command and date from its own result file, which the row names as its source."""
    record = results.read(file_name)
    figures = record["figures"]
    baseline = figures.get("run_baselines")
    if baseline is None and figures.get("baseline"):   # a file written before runs reported their baselines
        baseline = {"name": f"majority class (always `{figures['baseline']['majority_label']}`)",
                    "metrics": {"accuracy": figures["baseline"]["majority_accuracy"]}}
    return {"command": record["command"], "date": record["date"], "source": f"benchmarks/results/{file_name}.json",
            "wall_seconds": figures["wall_seconds"], "test": figures["test"], "validation": figures["validation"],
            "steps": figures["steps"], "baseline": baseline, "splits": figures["splits"],
            "precision": figures["precision"]}


def default_baseline(task: str) -> dict[str, Any] | None:
    """What a default run now reports as its baselines (TaskKind.baseline), on the default's own splits: for a
    row imported from a file written before runs reported them. Costs seconds, not a run."""
    from hf_finetune import data as data_mod, kinds, resolve_config

    template, config = resolve_config(task)
    kind = kinds.get(template.kind)
    prepared = data_mod.prepare(template, config, kind.roles)
    return kind.baseline(prepared.splits["train"], prepared.splits["test"], prepared.labels, config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=sorted(STUDIES))
    parser.add_argument("--rows", nargs="*", help="run only these rows (names of STUDIES[task]); others are kept")
    parser.add_argument("--import-row", nargs=2, action="append", default=[], metavar=("ROW", "RESULT"),
                        help="add a row from a default_runs.py result file (e.g. 'default now' default-sentiment)")
    args = parser.parse_args()
    name = f"defaults-{args.task}"
    previous = results.read(name)["figures"]["rows"] if (results.RESULTS / f"{name}.json").exists() else {}
    rows = dict(previous)
    for row, file_name in args.import_row:
        rows[row] = imported_row(file_name)
        if not (results.read(file_name)["figures"].get("run_baselines")):
            rows[row]["baseline"] = default_baseline(args.task)
            rows[row]["baseline_measured_by"] = "this study: TaskKind.baseline on the default run's own splits"
    for row, flags in STUDIES[args.task].items():
        if args.rows is not None and row not in args.rows:
            continue
        print(f"{args.task} / {row}: {shlex.join(flags)}", flush=True)
        rows[row] = run_row(args.task, flags)
        print(f"  test {rows[row]['test'].get(HEADLINE[args.task])}, validation "
              f"{rows[row]['validation'].get(HEADLINE[args.task])}, {rows[row]['wall_seconds']} s", flush=True)
    metric = HEADLINE[args.task]
    chosen = max((r for r in rows if "hp-search" not in r),
                 key=lambda r: rows[r]["validation"].get(metric, float("-inf")), default=None)
    path = results.write(name, {"task": args.task, "metric": metric, "rows": rows, "chosen_by_validation": chosen},
                         command=["python", "benchmarks/defaults_study.py", *sys.argv[1:]])
    print(f"wrote {path}; best validation {metric}: {chosen}")


if __name__ == "__main__":
    main()
