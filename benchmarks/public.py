"""The public suite: what each template's defaults (the settings a user's own data gets) reach on real, public
data sets the project was not built on, beside the classical baseline the run itself reports on the same
test split and the published figure.

    python benchmarks/public.py                                  # every set, every row
    python benchmarks/public.py multi-label                      # one task's sets
    python benchmarks/public.py multi-label --rows defaults      # some rows (merged into the result file)
    python benchmarks/public.py multi-label --rows defaults --keep-as "defaults before 26"   # keep a row's old figures

The sets live in benchmarks/public/<task>/<set>/, each with <set>.source.json beside it (origin, licence,
counts, published figure); benchmarks/public/prepare.py rebuilds their files. Each row is one real command,
`hf-finetune TASK --dataset benchmarks/public/TASK/SET [CAPS] [FLAGS]`, in a fresh process, offline, with a
private cache. CAPS are the sample caps a laptop user would add (none where the set is small enough). Writes
benchmarks/results/public-<task>-<set>.json; the default is the row with the best *validation* figure, never
the test one.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results  # noqa: E402
from defaults_study import HEADLINE, best_by_validation, run_row  # noqa: E402

PUBLIC = Path(__file__).resolve().parent / "public"

# Rows per task: flags added to `hf-finetune TASK --dataset SET` on top of the template's `defaults`.
ROWS: dict[str, dict[str, list[str]]] = {
    "sentiment": {"linear probe first (the template default since issue 26)": [],
                  "template defaults before issue 26 (a new head)": ["--no-linear-probe"]},
    # the template fits the head first since issue 26: its "defaults" row is that, measured beside a new head
    "multi-label": {"linear probe first (the template default since issue 26)": [],
                    "template defaults before issue 26 (a new head)": ["--no-linear-probe"]},
    "regression": {"defaults": [], "linear probe first": ["--linear-probe"]},
    "image-classification": {"defaults": [], "linear probe first": ["--linear-probe"]},
    # the defaults on 800 abstracts ran ~7 CPU-seconds a step at 512 tokens (300 steps): the row a laptop user
    # would run first is capped
    "summarization": {"defaults": [],
                      "laptop caps: 300 pairs, 256 tokens": ["--max-train-samples", "300", "--max-length", "256"]},
}


def sets(task: str | None) -> list[tuple[str, Path, dict[str, Any]]]:
    """(task, folder, source.json) of every set, or of one task's."""
    found = []
    # the record sits beside its folder, not in it: a JSON file inside would be read as data
    for source in sorted(PUBLIC.glob("*/*.source.json")):
        folder = source.parent / source.name.removesuffix(".source.json")
        if task in (None, folder.parent.name):
            found.append((folder.parent.name, folder, json.loads(source.read_text())))
    return found


def classical(row: dict[str, Any]) -> dict[str, Any] | None:
    """The strongest classical baseline the run reported (TF-IDF, pixels, lead-N), by the task's headline."""
    baseline = row.get("baseline") or {}
    entries = [baseline, *baseline.get("also", [])] if baseline else []
    return entries[-1] if entries else None


def run_set(task: str, folder: Path, source: dict[str, Any], only: list[str] | None, keep_as: str | None) -> Path:
    name = f"public-{task}-{folder.name}"
    try:
        figures = results.read(name)["figures"]
    except FileNotFoundError:
        figures = {"task": task, "set": folder.name, "rows": {}}
    figures.update(source={k: v for k, v in source.items() if k != "files"}, caps=source.get("caps", []))
    rows = {k: v for k, v in ROWS[task].items() if not only or k in only}
    for row_name, flags in rows.items():
        if keep_as and row_name in figures["rows"]:
            figures["rows"][keep_as] = figures["rows"][row_name]
        shown = f"benchmarks/public/{task}/{folder.name}"
        print(f"{task} {folder.name}: {row_name} ...", flush=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        row = run_row(task, [*source.get("caps", []), *flags], (shown, folder))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # the command's own CPU time: on cores shared with other jobs its wall time is an upper bound, and CPU
        # seconds / cores the time it would take alone (within the loader's waits)
        row["cpu_seconds"] = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1)
        row["classical"] = classical(row)
        figures["rows"][row_name] = row
        metric = HEADLINE[task]
        print(f"  test {metric} {row['test'].get(metric)}, validation {row['validation'].get(metric)}, "
              f"{row['wall_seconds']} s; classical: {row['classical'] and row['classical']['metrics'].get(metric)}",
              flush=True)
    figures["chosen_by_validation"] = best_by_validation(figures["rows"], HEADLINE[task])
    return results.write(name, figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", nargs="?", choices=sorted(ROWS))
    parser.add_argument("--rows", nargs="*", help="only these rows")
    parser.add_argument("--keep-as", help="keep the row's previous figures under this name first")
    args = parser.parse_args()
    found = sets(args.task)
    if not found:
        sys.exit(f"no public sets under {PUBLIC} for {args.task or 'any task'}")
    for task, folder, source in found:
        print(run_set(task, folder, source, args.rows, args.keep_as))


if __name__ == "__main__":
    main()
