"""The model card: metadata through ``ModelCardData``, text from ``card_template.md``.

Everything the card says is read back from the run's own files through ``RunDir``
(``run_config.yaml``, ``metrics.json``, ``log_history.json``, ``run_info.json``), so
``hf-finetune card RUN_DIR`` regenerates exactly the card the run wrote.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from . import hub, kinds, learning_check
from .config import display_value
from .run_info import BaseModel, RunInfo
from .rundir import CARD, CONFUSION, CURVES, RunDir

HYPERPARAMETERS = ["learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
                   "per_device_eval_batch_size", "gradient_accumulation_steps", "weight_decay", "warmup_steps",
                   "lr_scheduler_type", "seed", "max_length", "train_sampling_strategy", "early_stopping_patience"]


FINAL_ROW_NAMES = {"zero_shot_test": "test, base model before fine-tuning (zero-shot)",
                   "validation": "validation (best checkpoint)", "test": "test"}


def _final_row_name(split: str, metrics: dict[str, Any], info: RunInfo) -> str:
    """The final metrics table's name of a split; the zero-shot row says when it is of a sample of the test split
    (--max-zero-shot-samples)."""
    sampled, test = metrics.get("zero_shot_examples"), info.splits.get("test")
    if split == "zero_shot_test" and sampled and test and sampled < test.count:
        return f"test sample ({sampled} of {test.count} examples), base model before fine-tuning (zero-shot)"
    return FINAL_ROW_NAMES[split]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def cell(value: Any) -> str:
    """Text that fits in one Markdown table cell: one line, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _epoch_rows(log_history: list[dict], metric_names: list[str], best_step: int | None) -> list[dict]:
    rows, last_train_loss = [], None
    for entry in log_history:
        if "loss" in entry:
            last_train_loss = entry["loss"]
        if "eval_loss" in entry:
            rows.append({
                "epoch": display_value(round(entry.get("epoch", 0), 2)),
                "step": entry.get("step", ""),
                "train_loss": _fmt(last_train_loss) if last_train_loss is not None else "—",
                "eval_loss": _fmt(entry["eval_loss"]),
                "metrics": [_fmt(entry.get(f"eval_{m}")) for m in metric_names],
                "best": "← best" if entry.get("step") == best_step else "",
            })
    return rows


def _hub_link(repo_id: str, repo_type: str = "model") -> str:
    """A link on the Hub this card's users use (HF_ENDPOINT, else huggingface.co)."""
    prefix = "datasets/" if repo_type == "dataset" else ""
    return f"[`{repo_id}`]({hub.shown_endpoint()}/{prefix}{repo_id})"


def _base_line(base: BaseModel, local: bool) -> str:
    if base.hub_id:
        line = _hub_link(base.hub_id)
        if base.revision:
            line += f" at commit `{base.revision}`"
        return line
    return f"a local model folder `{base.ref}`" if local else f"`{base.ref}`"


def _local_inputs(info: RunInfo, config: dict[str, Any]) -> list[str]:
    """The original run's inputs that were local files (named by file name), for "How to reproduce"."""
    return [f"{key} `{Path(str(config[key])).name}`" for key in ("model", "dataset", "template")
            if getattr(info.local_inputs, key) and config.get(key)]


def _data_stats(info: RunInfo) -> str:
    stats = info.stats
    if not stats:
        return ""
    parts = []
    if "mean_input_tokens" in stats:
        parts.append(f"Training inputs are {stats['mean_input_tokens']:.1f} tokens long on average "
                     f"(95th percentile {stats['p95_input_tokens']:.0f}, longest {stats['max_input_tokens']}, "
                     f"truncated at {stats['max_length']}).")
    if "mean_target_tokens" in stats:
        parts.append(f"Reference summaries are {stats['mean_target_tokens']:.1f} tokens on average; "
                     f"generation is capped at {stats['max_target_length']} new tokens.")
    if stats.get("dropped"):
        parts.append(f"Rows left out (empty text/label or unreadable file): {stats['dropped']}.")
    return " ".join(parts)


def _provenance(info: RunInfo) -> str:
    """Where the data came from, in words: the embedded asset's description, the Hub id, or the local files."""
    data = info.dataset
    if data.description:
        return data.description
    if data.hub_id:
        config = f" (configuration `{data.config}`)" if data.config else ""
        return f"The Hub data set {_hub_link(data.hub_id, 'dataset')}{config}."
    listing = "; ".join(f"{split}: {', '.join(f'`{f}`' for f in names)}" for split, names in data.files.items())
    columns = ", ".join(f"`{col}` as {role}" for role, col in info.columns.items())
    text = f"Local data `{data.name}`" + (f" ({listing})" if listing else "") + "."
    if columns:
        text += f" Columns used: {columns}."
    if data.label_names_file:
        text += f" Label names from `{data.label_names_file}`."
    return text


def _pair_note(info: RunInfo) -> str:
    """A model of text pairs: which two columns, and how it reads them (one input, as the pipeline's dict)."""
    columns = info.columns
    if "text_pair" not in columns:
        return ""
    return (f"Each example is a text pair, `{columns['text']}` and `{columns['text_pair']}`, read as one input: "
            "`tokenizer(text, text_pair)`, truncated longest text first (in the pipeline, "
            '`{"text": ..., "text_pair": ...}`).')


def _eval_results(info: RunInfo, metrics: dict[str, Any]) -> list[EvalResult] | None:
    """model-index results, only for a data set on the Hub: its `type` is a Hub data set id."""
    data = info.dataset
    if not data.hub_id:
        return None
    for split in ("test", "validation"):
        values = metrics.get(split, {})
        results = [EvalResult(
            task_type=info.pipeline_tag, task_name=info.pipeline_tag.replace("-", " ").title(),
            dataset_type=data.hub_id, dataset_name=data.name, dataset_config=data.config,
            dataset_split=info.splits[split].origin.split(" (")[0].split(":")[0],
            metric_type=name, metric_name=name.replace("_", " ").title(), metric_value=round(float(values[name]), 4),
            metric_args=info.metric_args.get(name) or None,
        ) for name in info.metric_names if values.get(name) is not None]
        if results:
            return results   # the Hub shows one result table; prefer the test split
    return None


def _tracking(config: dict[str, Any]) -> str:
    """Where the training curves were logged (--report-to), so a reader can open the dashboard."""
    tracker = config.get("report_to") or "none"
    project = config.get("project") or "hf-finetune"
    if tracker == "trackio" and config.get("trackio_space_id"):
        space = config["trackio_space_id"]
        return f"Training metrics were logged with trackio to the Space [{space}](https://huggingface.co/spaces/{space})."
    if tracker == "trackio":
        return f"Training metrics were logged locally with trackio (project `{project}`): `trackio show --project {project}`."
    if tracker == "tensorboard":
        return "Training metrics were logged for TensorBoard (`runs/` of the run's checkpoints folder)."
    if tracker == "wandb":
        return f"Training metrics were logged to Weights & Biases (project `{project}`)."
    return ""


def _baselines(info: RunInfo) -> list[dict[str, Any]]:
    """The run's baselines on the test split (a trivial one first, then cheap classical models)."""
    baseline = info.baseline
    return [baseline, *baseline.get("also", [])] if baseline else []


def _baseline_line(info: RunInfo, metric_names: list[str]) -> str:
    """One sentence putting the headline metric beside the baselines', so a reader sees what fine-tuning added."""
    parts = []
    for entry in _baselines(info):
        shown = [name for name in metric_names if entry["metrics"].get(name) is not None]
        if shown:
            parts.append(f"{entry['name']} " + ", ".join(f"{name} {entry['metrics'][name]:.4f}" for name in shown))
    return ("Baselines on the same test split: " + "; ".join(parts) + ".") if parts else ""


def _search(info: RunInfo) -> dict[str, Any] | None:
    """The hyper-parameter search's trials table: each trial's values and validation metric, the chosen one marked."""
    search = info.hp_search
    if not search:
        return None
    names = list(search["space"])
    rows = [{"number": t["number"] + 1, "cells": [cell(display_value(t["params"].get(n, ""))) for n in names],
             "value": _fmt(t["value"]), "chosen": "← trained" if t["number"] == search["best_trial"] else ""}
            for t in search["trials"]]
    space = "; ".join(f"`{n}` " + (f"from {', '.join(map(display_value, spec['choices']))}" if "choices" in spec else
                                   f"{display_value(spec['low'])} to {display_value(spec['high'])}" + (" (log scale)" if spec["log"] else ""))
                      for n, spec in search["space"].items())
    intro = (f"{search['n_trials']} trials with `Trainer.hyperparameter_search` ({search['backend']}, "
             f"{search['sampler']}) over {space}, each trained from the base model and compared by its best validation "
             f"`{search['metric']}`; the model above was trained again with the values of trial "
             f"{search['best_trial'] + 1}, which `run_config.yaml` holds (a repeat needs no search).")
    return {"intro": intro, "names": names, "metric": search["metric"], "rows": rows}


def _task_words(info: RunInfo) -> str:
    """How the card names the task: the kind's words (a regression is served by the text-classification
    pipeline, but is no classification), else its pipeline tag."""
    return kinds.get(info.kind).task_words or info.pipeline_tag.replace("-", " ")


def _the_data_set(name: str) -> str:
    """'the imdb data set'; a name that says data already (a folder `data`, `my_dataset`) is quoted instead,
    not doubled ('the data data set')."""
    if {"data", "dataset", "datasets"} & set(re.split(r"[\W_]+", name.lower())):
        return f"the data set `{name}`"
    return f"the {name} data set"


def _intended_use(info: RunInfo) -> list[str]:
    """What the model is for and where it is weak, from the task, the data and the measured results."""
    labels = info.labels
    task = _task_words(info)
    lines = [f"{task.capitalize()} of inputs like those of {_the_data_set(info.dataset.name)}"
             + (f", into {len(labels)} labels ({', '.join(labels[:10])}{', ...' if len(labels) > 10 else ''})."
                if labels else ".")]
    stats = info.stats
    if "max_length" in stats:
        lines.append(f"Inputs longer than {stats['max_length']} tokens are truncated: the model sees only their "
                     "beginning.")
    train = info.splits["train"].count if "train" in info.splits else None
    if train:
        lines.append(f"It was fine-tuned on {train} examples; inputs unlike them (another domain, language or "
                     "label definition) may get confident wrong answers. Check it on your own data "
                     "(`hf-finetune evaluate`) before relying on it.")
    per_class = (info.test_analysis or {}).get("per_class") or {}
    if per_class:
        weakest = min(per_class.items(), key=lambda item: item[1]["f1"])
        lines.append(f"Weakest label on the test split: `{weakest[0]}` (F1 {weakest[1]['f1']:.3f}).")
    if any("hold-out" in s.origin for s in info.splits.values()):
        lines.append("Some evaluation data was held out at random from the training data; near-duplicates across "
                     "them make such figures optimistic.")
    return lines


def build(run: RunDir, repo_id: str | None = None, location: Path | None = None,
          info: RunInfo | None = None) -> ModelCard:
    """Build the card of a finished run directory. Without a repo id, the usage snippet loads the model
    from ``location`` (default: the run dir), as an absolute path, so it works from any folder."""
    config, metrics, history, info = run.config, run.metrics, run.log_history, info or run.info
    metric_names = info.metric_names
    model_name = repo_id.split("/")[-1] if repo_id else (info.model_name or run.path.name)
    kind = kinds.get(info.kind)
    card_data = ModelCardData(
        model_name=model_name,
        base_model=info.base_model.hub_id,
        datasets=[info.dataset.hub_id] if info.dataset.hub_id else None,
        license=info.license,
        language=info.language,
        library_name="transformers",
        pipeline_tag=info.pipeline_tag,
        tags=["hf-finetune", *info.tags],
        metrics=list(info.metric_args or metric_names),   # the evaluate metric ids ("rouge", "f1")
        eval_results=_eval_results(info, metrics),
    )
    labels = info.labels
    counts = info.label_counts
    analysis = info.test_analysis or {}
    per_class = analysis.get("per_class") or {}
    label_rows = [{"id": i, "name": cell(name), **{s: counts.get(s, {}).get(name, 0) for s in
                                                    ("train", "validation", "test")},
                   "scores": [_fmt(per_class.get(name, {}).get(k)) for k in ("precision", "recall", "f1")]}
                  for i, name in enumerate(labels)]
    headline = metrics.get("test", {})
    results_line = ""
    if headline:
        results_line = "On the test split ({}): {}.".format(
            info.splits["test"].origin,
            ", ".join(f"**{name}** " + (f"{headline[name]:.4f}" if headline[name] is not None else "not a number")
                      for name in metric_names if name in headline))
        results_line += (" " + _baseline_line(info, metric_names)).rstrip()
    base_desc = info.base_model.hub_id or info.base_model.ref
    summary = (f"This model is a fine-tuned version of `{base_desc}` for {_task_words(info)} "
               f"on {_the_data_set(info.dataset.name)}"
               + (f" ({len(labels)} labels)." if labels else "."))
    usage = kind.usage(repo_id or str((location or run.path).resolve()), info.example_input, info.prefix)
    confusion = analysis.get("confusion")
    license_note = ""
    if info.license == "unknown":
        license_note = (f"The base model `{base_desc}` states no license on its card, so this card states "
                        "`unknown`: find the base model's terms, then set them with `--license`. ")
    if info.data_license and info.data_license != info.license:
        license_note += (f"The training data is licensed `{info.data_license}`; this card states `{info.license}`"
                        + (", the base model's license" if info.license == info.model_license else "")
                        + ". Check that the data's terms allow your use of the model.")
    template_path = Path(str(resources.files("hf_finetune") / "card_template.md"))
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path),
        model_name=model_name,
        summary=summary,
        results_line=results_line,
        learning_note=learning_check.card_note(metrics.get("learning_check")),
        task_notes=analysis.get("notes") or [],   # what the task kind decided: a threshold, a target's scaling
        label_rows=label_rows,
        has_per_class=bool(per_class),
        confusion_labels=[cell(n) for n in labels] if confusion else [],
        confusion_rows=[{"label": cell(labels[i]), "cells": row} for i, row in enumerate(confusion or [])],
        has_confusion_png=run.has(CONFUSION),
        errors=[{k: cell(v) for k, v in e.items()} for e in analysis.get("errors", [])],
        intended_use=_intended_use(info),
        usage=usage,
        data_description=" ".join(filter(None, [_provenance(info), _pair_note(info)])),
        license_note=license_note,
        split_rows=[{"name": s, "count": info.splits[s].count, "origin": cell(info.splits[s].origin)}
                    for s in ("train", "validation", "test") if s in info.splits],
        task=info.task,
        base_line=_base_line(info.base_model, info.local_inputs.model),
        data_stats=_data_stats(info),
        best_metric=info.metric_for_best_model,
        tracking=_tracking(config),
        hyperparameters={**{k: cell(display_value(config.get(k)))
                            for k in [*HYPERPARAMETERS, *kind.card_hyperparameters] if config.get(k) is not None},
                         **({"precision": info.precision} if info.precision else {})},
        install=info.install,
        hf_finetune_version=info.versions.get("hf-finetune", ""),
        local_inputs=_local_inputs(info, config),
        metric_headers=metric_names,
        epoch_rows=_epoch_rows(history, metric_names, metrics.get("best_checkpoint_step")),
        has_curves=run.has(CURVES),
        final_rows=[{"split": _final_row_name(s, metrics, info),
                     "cells": [_fmt(metrics[s].get(m)) for m in metric_names]} for s in FINAL_ROW_NAMES if s in metrics]
        + [{"split": cell(f"test, baseline: {b['name']}"), "cells": [_fmt(b["metrics"].get(m)) for m in metric_names]}
           for b in _baselines(info)],
        checkpoint_notes=info.checkpoint_notes,
        search=_search(info),
        versions=info.versions,
    )


def write(run: RunDir, repo_id: str | None = None, location: Path | None = None,
          info: RunInfo | None = None) -> Path:
    """(Re)write README.md: a new file renamed over the old one, never written through a link. ``info``
    is the run's info before run_info.json is written (a run writes that file last)."""
    return run.write_text(CARD, build(run, repo_id, location, info).content)
