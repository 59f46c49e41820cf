"""Metrics of a finished run on any data set and split, with the same metric modules as training."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from . import arguments, batching, config as config_mod, data as data_mod, kinds, metrics as metrics_mod, modeling, \
    templates
from .data.sources import content_hash
from .errors import DataError
from .run_info import RunInfo
from .rundir import RunDir


def _is_run_data(dataset: str, saved: dict[str, Any], info: RunInfo) -> bool:
    """Whether ``dataset`` is the data the run was trained on (the same reference, or the same bytes)."""
    if dataset == saved.get("dataset"):
        return True
    content = info.dataset.content
    path = Path(dataset).expanduser()
    return bool(content) and path.exists() and content_hash(path) == content


def _check_inputs_match(trained: dict[str, str], found: dict[str, str], dataset: str) -> None:
    """A model trained on text pairs is scored on pairs, one trained on single texts on single texts: the other
    form would be scored, wrongly, without a word."""
    pair = data_mod.PAIR_ROLE
    if not trained or (pair in trained) == (pair in found):
        return
    if pair in trained:
        raise DataError(f"The model was trained on text pairs ({trained['text']}, {trained[pair]}); in {dataset} "
                        f"the text column found is {found['text']!r} alone.",
                        "Name the two columns of each pair: --text-column FIRST,SECOND.")
    raise DataError(f"The model was trained on one text per example ({trained['text']}); in {dataset} a text pair "
                    f"was found ({found['text']}, {found[pair]}).", "Name one column with --text-column.")


def evaluate_run(run_dir: str | Path, dataset: str, *, split: str | None = None, dataset_config: str | None = None,
                 max_samples: int | None = None, columns: dict[str, str | None] | None = None,
                 trust_remote_code: bool = False) -> dict[str, Any]:
    """The run's metrics on ``dataset``, computed as the run computed its own.

    On the run's own data (and ``split`` None or "test") that is the run's own test split, held-out
    splits included, so the figures of metrics.json are reproduced exactly. On other data: the named
    split, else its test split, else the whole of a single file, all its rows (not the run's
    --max-test-samples; ``max_samples`` caps them).

    The run's saved config and template are read as data: a template naming code from outside
    transformers, or a metric that is not built in, is refused unless ``trust_remote_code``.
    """
    run = RunDir.open(run_dir)
    saved, info = run.config, run.info
    template = templates.load(saved.get("template") or saved["task"], trust_remote_code=trust_remote_code)
    kind_class = kinds.get(template.kind)
    own_data = split in (None, "test") and _is_run_data(dataset, saved, info)
    # the run's own test split is capped as the run capped it (its figures are reproduced); other data is
    # scored whole unless ``max_samples`` says otherwise
    cap = max_samples or (saved.get("max_test_samples") if own_data else None)
    overrides = {"dataset": dataset, "dataset_config": dataset_config, "model": str(run.path), "revision": None,
                 "max_test_samples": cap, **{k: v for k, v in (columns or {}).items() if v}}
    config = config_mod.resolve(saved, overrides)
    metric_specs = [(name, info.metric_args.get(name) or {}) for name in
                    ([name for name, _ in template.metrics] if not config.metrics else config.metrics)]
    metrics_mod.check_trusted([name for name, _ in metric_specs], trust_remote_code)
    labels = info.labels or None
    if own_data:
        prepared = data_mod.prepare(template, config, kind_class, labels=labels)
    else:
        prepared = data_mod.prepare_split(template, config, kind_class, labels, split)
    _check_inputs_match(info.columns, prepared.columns, dataset)
    model_source = modeling.ModelSource(str(run.path), run.path.name, None, local=True)
    processor = modeling.load_processor(template, model_source)
    model = modeling.load_model(template, model_source)
    kind = kind_class(template, model.config)
    kind.use_trained(model)
    tokenized, _ = kind.preprocess(prepared, processor, config)
    suite = metrics_mod.MetricSuite(metric_specs, trust_remote_code)
    with tempfile.TemporaryDirectory() as tmp:
        collator = kind.collator(processor, model)
        widths = info.stats.get("length_buckets", {}).get("buckets")
        if widths and batching.pads_to_width(collator):   # pad as the run's own evaluation did
            collator = batching.PadToBucket(collator, widths)
        trainer = template.trainer.resolve()(model=model, args=arguments.evaluation_arguments(config, kind, tmp),
                                             processing_class=processor, data_collator=collator,
                                             compute_metrics=kind.compute_metrics(suite, processor, config))
        output = trainer.predict(tokenized["test"], metric_key_prefix="eval")
    result = {k[len("eval_"):]: float(v) for k, v in output.metrics.items()
              if k.startswith("eval_") and not metrics_mod.is_timing(k)}
    result["examples"] = len(tokenized["test"])
    result["split"] = prepared.split_origin.get("test", split)
    return result
