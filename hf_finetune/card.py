"""The model card: metadata through ``ModelCardData``, text from ``card_template.md``.

Everything the card says is read back from the run's own files through ``RunDir``
(``run_config.yaml``, ``metrics.json``, ``log_history.json``, ``run_info.json``), so
``hf-finetune card RUN_DIR`` regenerates exactly the card the run wrote.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from . import kinds
from .rundir import CARD, CURVES, RunDir

HYPERPARAMETERS = ["learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
                   "per_device_eval_batch_size", "gradient_accumulation_steps", "weight_decay", "warmup_steps",
                   "lr_scheduler_type", "seed", "max_length", "train_sampling_strategy", "early_stopping_patience"]


FINAL_ROW_NAMES = {"zero_shot_test": "test, base model before fine-tuning (zero-shot)",
                   "validation": "validation (best checkpoint)", "test": "test"}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def _plain(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _epoch_rows(log_history: list[dict], metric_names: list[str], best_step: int | None) -> list[dict]:
    rows, last_train_loss = [], None
    for entry in log_history:
        if "loss" in entry:
            last_train_loss = entry["loss"]
        if "eval_loss" in entry:
            rows.append({
                "epoch": _plain(round(entry.get("epoch", 0), 2)),
                "step": entry.get("step", ""),
                "train_loss": _fmt(last_train_loss) if last_train_loss is not None else "—",
                "eval_loss": _fmt(entry["eval_loss"]),
                "metrics": [_fmt(entry.get(f"eval_{m}")) for m in metric_names],
                "best": entry.get("step") == best_step,
            })
    return rows


def _base_line(base: dict[str, Any], local: bool) -> str:
    if base.get("hub_id"):
        line = f"[`{base['hub_id']}`](https://huggingface.co/{base['hub_id']})"
        if base.get("revision"):
            line += f" at commit `{base['revision']}`"
        return line
    return f"a local model folder `{base.get('ref')}`" if local else f"`{base.get('ref')}`"


def _local_inputs(info: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """The original run's inputs that were local files (named by file name), for "How to reproduce"."""
    local = info.get("local_inputs") or {}
    return [f"{key} `{Path(str(config[key])).name}`" for key in ("model", "dataset", "template")
            if local.get(key) and config.get(key)]


def _data_stats(info: dict[str, Any]) -> str:
    stats = info.get("stats") or {}
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


def build(run: RunDir, repo_id: str | None = None, location: Path | None = None,
          info: dict[str, Any] | None = None) -> ModelCard:
    """Build the card of a finished run directory. Without a repo id, the usage snippet loads the model
    from ``location`` (default: the run dir), as an absolute path, so it works from any folder."""
    config, metrics, history, info = run.config, run.metrics, run.log_history, info or run.info

    metric_names = info["metric_names"]
    eval_results = []
    for split in ("test", "validation"):
        split_metrics = metrics.get(split, {})
        for name in metric_names:
            if name in split_metrics:
                eval_results.append(EvalResult(
                    task_type=info["pipeline_tag"], task_name=info["pipeline_tag"].replace("-", " ").title(),
                    dataset_type=info["dataset"]["hub_id"] or info["dataset"]["name"],
                    dataset_name=info["dataset"]["name"], dataset_config=info["dataset"].get("config"),
                    dataset_split=(split if info["splits"][split]["origin"] == split else
                                   f"{split} (held out from {config.get('train_split', 'train')})"
                                   if "hold-out" in info["splits"][split]["origin"] else info["splits"][split]["origin"]),
                    metric_type=name, metric_name=name.replace("_", " ").title(),
                    metric_value=round(float(split_metrics[name]), 4),
                    metric_args=info["metric_args"].get(name) or None,
                ))
        if eval_results:
            break  # the Hub shows one result table; prefer held-out test over validation

    model_name = repo_id.split("/")[-1] if repo_id else info.get("model_name", run.path.name)
    card_data = ModelCardData(
        model_name=model_name,
        base_model=info["base_model"]["hub_id"],
        datasets=[info["dataset"]["hub_id"]] if info["dataset"]["hub_id"] else None,
        license=info.get("license"),
        language=info.get("language"),
        library_name="transformers",
        pipeline_tag=info["pipeline_tag"],
        tags=["hf-finetune", *info.get("tags", [])],
        metrics=metric_names,
        eval_results=eval_results or None,
    )
    best = metrics.get("best_checkpoint_step")
    labels = info.get("labels") or []
    counts = info.get("label_counts", {})
    label_rows = [{"id": i, "name": name, **{s: counts.get(s, {}).get(name, 0) for s in ("train", "validation", "test")}}
                  for i, name in enumerate(labels)]
    headline = metrics.get("test", {})
    results_line = ""
    if headline:
        results_line = "On the test split ({}): {}.".format(
            info["splits"]["test"]["origin"],
            ", ".join(f"**{name}** {headline[name]:.4f}" for name in metric_names if name in headline))
    base_desc = info["base_model"].get("hub_id") or info["base_model"]["ref"]
    summary = (f"This model is a fine-tuned version of `{base_desc}` for {info['pipeline_tag'].replace('-', ' ')} "
               f"on the {info['dataset']['name']} data set"
               + (f" ({len(labels)} labels)." if labels else "."))
    usage = kinds.get(info["kind"]).usage(repo_id or str((location or run.path).resolve()), info.get("example_input"),
                                          info.get("prefix", ""))
    template_path = Path(str(resources.files("hf_finetune") / "card_template.md"))
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path),
        model_name=model_name,
        summary=summary,
        results_line=results_line,
        label_rows=label_rows,
        usage=usage,
        data_description=info["dataset"].get("description") or f"The {info['dataset']['name']} data set.",
        split_rows=[{"name": s, "count": info["splits"][s]["count"], "origin": info["splits"][s]["origin"]}
                    for s in ("train", "validation", "test") if s in info["splits"]],
        task=info["task"],
        base_line=_base_line(info["base_model"], bool((info.get("local_inputs") or {}).get("model"))),
        data_stats=_data_stats(info),
        best_metric=info["metric_for_best_model"],
        hyperparameters={**{k: _plain(config.get(k)) for k in HYPERPARAMETERS if config.get(k) is not None},
                         **({"precision": info["precision"]} if info.get("precision") else {})},
        install=info.get("install"),
        hf_finetune_version=info.get("versions", {}).get("hf-finetune", ""),
        local_inputs=_local_inputs(info, config),
        metric_headers=metric_names,
        epoch_rows=_epoch_rows(history, metric_names, best),
        has_curves=run.has(CURVES),
        final_rows=[{"split": FINAL_ROW_NAMES[s], "cells": [_fmt(metrics[s].get(m)) for m in metric_names]}
                    for s in FINAL_ROW_NAMES if s in metrics],
        versions=info.get("versions", {}),
    )


def write(run: RunDir, repo_id: str | None = None, location: Path | None = None,
          info: dict[str, Any] | None = None) -> Path:
    """(Re)write README.md: a new file renamed over the old one, never written through a link. ``info``
    is the run's info before run_info.json is written (a run writes that file last)."""
    return run.write_text(CARD, build(run, repo_id, location, info).content)
