"""Metrics of a finished run on any data set and split, with the same metric modules as training."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml

from . import batching, data as data_mod, kinds, metrics as metrics_mod, modeling, templates
from .config import RunConfig
from .errors import ConfigError
from .training import precision, stock_sampling_strategy


def evaluate_run(run_dir: str | Path, dataset: str, *, split: str = "test", dataset_config: str | None = None,
                 max_samples: int | None = None, columns: dict[str, str | None] | None = None) -> dict[str, Any]:
    from transformers import TrainingArguments

    run_dir = Path(run_dir)
    if not (run_dir / "run_config.yaml").exists() or not (run_dir / "run_info.json").exists():
        raise ConfigError(f"{run_dir} is not a finished hf-finetune run (no run_config.yaml / run_info.json).")
    saved = yaml.safe_load((run_dir / "run_config.yaml").read_text(encoding="utf-8"))
    info = json.loads((run_dir / "run_info.json").read_text(encoding="utf-8"))
    template = templates.load(saved.get("template") or saved["task"])
    kind = kinds.get(template.kind)
    overrides = {"dataset": dataset, "dataset_config": dataset_config, "model": str(run_dir), "revision": None,
                 **({"max_test_samples": max_samples} if max_samples else {}),
                 **{k: v for k, v in (columns or {}).items() if v}}
    config = RunConfig(**{**saved, **overrides})
    if split != "test":
        config.test_split = split
    prepared = data_mod.prepare(template, config, kind.roles, labels=info.get("labels") or None)
    model_source = modeling.ModelSource(str(run_dir), run_dir.name, None)
    processor = modeling.load_processor(template, model_source)
    model = modeling.load_model(template, model_source)
    kind.prefix = info.get("prefix", "")
    kind.model_config = model.config
    if template.kind == "summarization":
        config.max_target_length = config.max_target_length or max(8, (model.generation_config.max_length or 65) - 1)
    tokenized, _ = kind.preprocess(prepared, processor, config, template)
    metric_specs = [(name, info.get("metric_args", {}).get(name) or {}) for name in
                    ([m.name for m in template.metrics] if not config.metrics else config.metrics)]
    suite = metrics_mod.MetricSuite(metric_specs)
    extra = kind.training_arguments(config)
    args_class = extra.pop("args_class", TrainingArguments)
    with tempfile.TemporaryDirectory() as tmp:
        args = args_class(output_dir=tmp, per_device_eval_batch_size=config.per_device_eval_batch_size,
                          report_to="none", disable_tqdm=True, log_level="error", **precision(config, kind),
                          # the same (length-grouped, seeded) evaluation batches as the run itself
                          seed=config.seed, data_seed=config.seed,
                          **{"train_sampling_strategy": stock_sampling_strategy(config), **extra})
        collator = kind.collator(template, processor, model)
        widths = info.get("stats", {}).get("length_buckets", {}).get("buckets")
        if widths and batching.pads_to_width(collator):   # pad as the run's own evaluation did
            collator = batching.PadToBucket(collator, widths)
        trainer = template.trainer.resolve()(model=model, args=args, processing_class=processor,
                                             data_collator=collator,
                                             compute_metrics=kind.compute_metrics(suite, processor, config))
        output = trainer.predict(tokenized["test"], metric_key_prefix="eval")
    result = {k[len("eval_"):]: float(v) for k, v in output.metrics.items()
              if k.startswith("eval_") and not metrics_mod.is_timing(k)}
    result["examples"] = len(tokenized["test"])
    result["split"] = prepared.split_origin.get("test", split)
    return result
