"""The README's tables of measured figures, rendered from benchmarks/results/*.json.

    python benchmarks/readme_tables.py           # print each table
    python benchmarks/readme_tables.py --write   # replace the tables in README.md

In the README each table sits between `<!-- results: NAME -->` and `<!-- end results -->`;
tests/test_readme_figures.py checks that what is there is exactly what this renders, so no figure in
those tables can drift from the file (and the command) that produced it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"(<!-- results: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end results -->)", re.S)
TASK_METRICS = {"sentiment": ("accuracy", "f1"), "image-classification": ("accuracy", "f1"),
                "summarization": ("rougeLsum", "rouge1", "rouge2"),
                "multi-label": ("f1_micro", "f1_macro", "subset_accuracy"), "regression": ("mse", "mae", "pearson")}
NAMES = {"f1": "macro-F1", "rougeLsum": "ROUGE-Lsum", "rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "accuracy": "accuracy",
         "f1_micro": "micro-F1", "f1_macro": "macro-F1", "subset_accuracy": "subset accuracy", "mse": "MSE",
         "mae": "MAE", "pearson": "Pearson r"}


def _minutes(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 60} min {whole % 60:02d} s"


def _lengths(metrics: dict) -> str:
    """For generated text: how long the outputs were and how many ended on their own."""
    if "gen_len" not in metrics:
        return ""
    ended = metrics.get("stopped_before_cap")
    return (f" (mean output {metrics['gen_len']:.0f} tokens"
            + (f", {ended:.0%} ended before the length cap)" if ended is not None else ")"))


def _own_baseline(row: dict, chosen: dict, metric: str) -> str:
    """A row measured on other splits than the chosen one (another seed, fewer examples) is compared with
    the strongest baseline of its own run, not with the rows below."""
    baseline = row.get("baseline")
    if not baseline or row.get("splits") == chosen.get("splits"):
        return ""
    sign = -1 if metric in results.LOWER_IS_BETTER else 1
    best = max([baseline, *baseline.get("also", [])], key=lambda b: sign * b["metrics"].get(metric, sign * -1e9))
    return f"; this run's own splits: {best['name']} {NAMES[metric]} {best['metrics'][metric]:.3f}"


def default_runs() -> str:
    rows = ["| command | test split | fine-tuned | baseline on the same split | whole command | result file |",
            "|---|---|---|---|---:|---|"]
    for task in ("sentiment", "summarization", "image-classification", "multi-label", "regression"):
        name = f"default-{task}"
        if not (results.RESULTS / f"{name}.json").exists():
            continue
        record = results.read(name)["figures"]
        metrics = TASK_METRICS[task]
        tuned = ", ".join(f"{NAMES[m]} **{record['test'][m]:.3f}**" for m in metrics) + _lengths(record["test"])
        if record.get("zero_shot_test"):
            baseline = ", ".join(f"{NAMES[m]} {record['zero_shot_test'][m]:.3f}" for m in metrics) + " (zero-shot)"
        elif "metrics" in (record.get("baseline") or {}):   # the kind's own trivial predictor
            baseline = (", ".join(f"{NAMES[m]} {record['baseline']['metrics'][m]:.3f}" for m in metrics)
                        + f" ({record['baseline']['name']})")
        else:
            baseline = f"accuracy {record['baseline']['majority_accuracy']:.3f} (majority class)"
        for extra in (record.get("run_baselines") or {}).get("also", []):
            baseline += f"; {NAMES[metrics[0]]} {extra['metrics'][metrics[0]]:.3f} ({extra['name']})"
        if record.get("run_baselines") and record.get("zero_shot_test"):
            lead = record["run_baselines"]
            baseline += "; " + ", ".join(f"{NAMES[m]} {lead['metrics'][m]:.3f}" for m in metrics) + f" ({lead['name']})"
        rows.append(f"| `hf-finetune {task}` | {record['splits']['test']['count']} examples | {tuned} | {baseline} "
                    f"| {_minutes(record['wall_seconds'])}"
                    + (f" ({record['cpu_seconds'] / 60:.0f} CPU min)" if record.get("cpu_seconds") else "")
                    + f" | `benchmarks/results/{name}.json` |")
    return "\n".join(rows) + "\n"


def side_by_side(name: str) -> str:
    figures = results.read(name)["figures"]
    rows = [f"| {figures['steps']} steps x {figures['batch']} | samples/s | real tokens/s | validation accuracy |",
            "|---|---:|---:|---:|"]
    stock = None
    for row, r in figures["results"].items():
        tokens = f"{r['real_tokens_per_s']:,.0f}" if r["real_tokens_per_s"] is not None else "n/a"
        label = f"**{row}**" if row == next(iter(figures["results"])) else row
        rows.append(f"| {label} | {r['samples_per_s']:.1f} | {tokens} | {r['accuracy']:.3f} |")
        if r.get("baseline") and stock is None:
            stock = (row, r)
    first_name, first = next(iter(figures["results"].items()))
    for base_name, base in figures["results"].items():
        if base.get("baseline"):
            rows.append(f"| ratio, {first_name} / {base_name} | **{first['samples_per_s'] / base['samples_per_s']:.2f}x** | "
                        f"{first['real_tokens_per_s'] / base['real_tokens_per_s']:.2f}x | "
                        f"{first['accuracy'] - base['accuracy']:+.3f} |")
    return "\n".join(rows) + "\n"


def defaults_study() -> str:
    """Per template: the previous default, the candidates, the search, and the baselines on the same test split."""
    rows = ["| template | setting (command) | validation | test | whole command | result file |",
            "|---|---|---:|---:|---:|---|"]
    studies = [(task, f"defaults-{task}") for task in ("sentiment", "summarization", "image-classification",
                                                      "multi-label", "regression")]
    studies.append(("image-classification on Animal-MNIST", "defaults-image-classification-animal-mnist"))
    for task, name in studies:
        if not (results.RESULTS / f"{name}.json").exists():
            continue
        figures = results.read(name)["figures"]
        metric, chosen = figures["metric"], figures["chosen_by_validation"]
        chosen_row = figures["rows"][chosen or next(iter(figures["rows"]))]
        for row, r in figures["rows"].items():
            compared = sum("hp-search" not in r for r in figures["rows"]) > 1
            label = f"**{row}**" + (" (chosen)" if compared else "") if row == chosen else row
            rows.append(f"| {task} | {label}: `{r['command']}` | {NAMES[metric]} {r['validation'][metric]:.3f} "
                        f"| {NAMES[metric]} **{r['test'][metric]:.3f}**{_lengths(r['test'])}"
                        f"{_own_baseline(r, chosen_row, metric)} | {_minutes(r['wall_seconds'])} "
                        f"| `{r.get('source') or f'benchmarks/results/{name}.json'}` |")
        source = ((chosen_row.get("source") if not chosen_row.get("baseline_measured_by") else None)
                  or f"benchmarks/results/{name}.json")
        baseline = chosen_row.get("baseline")
        for b in ([baseline, *baseline.get("also", [])] if baseline else []):
            shown = metric if metric in b["metrics"] else next(iter(b["metrics"]))
            rows.append(f"| {task} | baseline on the same test split: {b['name']} | | {NAMES[shown]} "
                        f"{b['metrics'][shown]:.3f} | | `{source}` |")
    return "\n".join(rows) + "\n"


def public_suite() -> str:
    """Per public set: each row's validation and test figures and time, the classical baseline the run reported
    on the same test split, and the published figure (benchmarks/public.py)."""
    rows = ["| template, data set | setting (command) | validation | test | classical baseline, same test split "
            "| published | whole command | result file |", "|---|---|---:|---:|---|---|---:|---|"]
    for path in sorted(results.RESULTS.glob("public-*.json")):
        figures = results.read(path.stem)["figures"]
        task, chosen = figures["task"], figures.get("chosen_by_validation")
        metrics = TASK_METRICS[task]
        headline = metrics[0]
        published = "; ".join(f"{p['value']} ({p['model']}, {p['citation']})" for p in
                              (figures["source"].get("published") or []) if p.get("value") is not None
                              ) or "none checked (see its source.json)"
        for name, r in figures["rows"].items():
            label = f"**{name}** (best on validation)" if name == chosen and len(figures["rows"]) > 1 else name
            classical = r.get("classical")
            baseline = (", ".join(f"{NAMES[m]} {classical['metrics'][m]:.3f}" for m in metrics
                                  if m in classical["metrics"]) + f" ({classical['name']})") if classical else ""
            rows.append(f"| {task}, `{figures['set']}` | {label}: `{r['command']}` "
                        f"| {NAMES[headline]} {r['validation'][headline]:.3f} "
                        f"| " + ", ".join(f"{NAMES[m]} **{r['test'][m]:.3f}**" for m in metrics if m in r["test"])
                        + f"{_lengths(r['test'])} | {baseline} | {published} | {_minutes(r['wall_seconds'])}"
                        + (f" ({r['cpu_seconds'] / 60:.0f} CPU min)" if r.get("cpu_seconds") else "") + " "
                        f"| `benchmarks/results/{path.name}` |")
    return "\n".join(rows) + "\n"


def startup() -> str:
    """Start-up times of each install measured (this checkout, and the one it was compared with)."""
    record = results.read("startup")
    installs = [name for name, value in record["figures"].items() if isinstance(value, dict)]
    rows = ["| command | " + " | ".join(installs) + " |", "|---|" + "---:|" * len(installs)]
    for command in record["figures"][installs[0]]:
        cells = []
        for name in installs:
            figure = record["figures"][name][command]
            heavy = ", ".join(figure["heavy_modules_imported"])
            cells.append(f"{figure['median_seconds']:.2f} s ({figure['ratio_to_import_huggingface_hub']:.1f}x)"
                         + (f", imports {heavy}" if heavy else ""))
        rows.append(f"| `{command}` | " + " | ".join(cells) + " |")
    return "\n".join(rows) + f"\n\nMedian of {record['figures']['rounds']} rounds, fresh interpreters, the installs " \
        f"interleaved; `{record['command']}` (`benchmarks/results/startup.json`).\n"


def streaming() -> str:
    """Peak RSS and disk of a --streaming run per data set size, beside the same run reading the whole file."""
    record = results.read("streaming")
    rows = ["| rows | file | run | peak RSS | disk after the run (caches + output) | of which tokenized |",
            "|---:|---:|---|---:|---:|---:|"]
    for run in record["figures"]["runs"]:
        rows.append(f"| {run['rows']:,} | {run['file_mib']:.1f} MiB | {'--streaming' if run['streaming'] else 'whole file'} "
                    f"| {run['peak_rss_mib']:.0f} MiB | {run['disk_total_mib']:.2f} MiB "
                    f"| {run['disk_mib']['tokenization_cache']:.2f} MiB |")
    return "\n".join(rows) + f"\n\n`{record['command']}` (`benchmarks/results/streaming.json`).\n"


def render(name: str) -> str:
    if name == "streaming":
        return streaming()
    if name == "default-runs":
        return default_runs()
    if name == "defaults-study":
        return defaults_study()
    if name == "startup":
        return startup()
    if name == "public-suite":
        return public_suite()
    return side_by_side(name)


def blocks(text: str) -> list[tuple[str, str]]:
    """(name, body) of every results block of a README text."""
    return [(m.group("name"), m.group("body")) for m in BLOCK.finditer(text)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    text = README.read_text()
    if args.write:
        README.write_text(BLOCK.sub(lambda m: m.group(1) + render(m.group("name")) + m.group(4), text))
        print(f"rewrote {len(blocks(text))} tables in {README}")
    else:
        for name, _ in blocks(text):
            print(f"<!-- results: {name} -->\n{render(name)}")


if __name__ == "__main__":
    main()
