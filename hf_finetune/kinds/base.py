"""The interface every task kind implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from datasets import DatasetDict

from ..config import RunConfig
from ..templates import TaskTemplate

if TYPE_CHECKING:
    import datasets


class TaskKind:
    name: str = ""
    roles: tuple[str, ...] = ()          # column roles of the data, e.g. ("text", "label")
    classification: bool = False         # a `label` role with a ClassLabel and id2label
    input_role: str = "text"             # what the card's example input is taken from
    prefix: str = ""                     # input prefix for this model family (set by the engine)
    tokenizes: bool = True               # inputs are tokenized once and cached (not images)
    model_config: Any = None             # the loaded model's config (set by the engine)
    length_buckets: bool = False         # batches may be padded to fixed widths (batching.py)
    bf16_on_cpu: bool = True             # bf16 autocast keeps this kind's results on CPUs with bf16 instructions

    def preprocess(self, data: Any, processor: Any, config: RunConfig,
                   template: TaskTemplate) -> tuple[DatasetDict, bool]:
        """Turn prepared splits into model inputs; return them and whether they came from the cache."""
        raise NotImplementedError

    def collator(self, template: TaskTemplate, processor: Any, model: Any) -> Any:
        return template.collator.resolve()(processor, **template.collator.args)

    def compute_metrics(self, suite: Any, processor: Any, config: RunConfig) -> Callable:
        """Default for classification kinds: the metrics of the argmax over the logits."""

        def compute(eval_pred) -> dict[str, float]:
            logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
            return suite.compute(np.argmax(logits, axis=-1), eval_pred.label_ids)

        return compute

    def training_arguments(self, config: RunConfig) -> dict[str, Any]:
        """Extra TrainingArguments this kind needs."""
        return {}

    evaluate_before_training: bool = False   # also report the base model's metrics (zero-shot)

    def prepare_model(self, model: Any, config: RunConfig) -> None:
        """Adjust the loaded model (e.g. its generation config) before training."""
        if self.classification:
            # One label per example: the model's loss is a batch mean that ignores `num_items_in_batch`
            # although its forward takes **kwargs. Without this the Trainer multiplies that mean by the
            # number of processes (eval and train losses reported 2x under 2-process DDP, gradients 2x
            # before clipping) and skips the division by gradient_accumulation_steps.
            model.accepts_loss_kwargs = False

    def usage(self, model_ref: str, example: str | None, prefix: str = "") -> str:
        raise NotImplementedError

    def save_example(self, split: Any, path: Any) -> None:
        """Save an example input beside the model when the card's snippet needs a file (images)."""

    def describe(self, split: Any, index: int) -> str:
        """One example input of ``split``, as the card shows it."""
        return " ".join(str(split[index][self.input_role]).split())[:200]

    def analyse(self, split: Any, predictions: Any, label_ids: Any, labels: list[str]) -> dict[str, Any] | None:
        """For the card: the confusion matrix, per-label precision / recall / F1 and a few errors of the test
        split (classification kinds; None for others)."""
        if not self.classification or not labels:
            return None
        from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

        logits = predictions[0] if isinstance(predictions, tuple) else predictions
        predicted, truth = np.argmax(logits, axis=-1), np.asarray(label_ids)
        ids = list(range(len(labels)))
        precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=ids,
                                                                         zero_division=0)
        wrong = np.flatnonzero(predicted != truth)[:5]
        return {
            "confusion": confusion_matrix(truth, predicted, labels=ids).tolist(),
            "per_class": {name: {"precision": round(float(precision[i]), 4), "recall": round(float(recall[i]), 4),
                                 "f1": round(float(f1[i]), 4), "support": int(support[i])}
                          for i, name in enumerate(labels)},
            "errors": [{"input": self.describe(split, int(i)), "label": labels[int(truth[i])],
                        "predicted": labels[int(predicted[i])]} for i in wrong],
        }

    def example(self, split: Any) -> str | None:
        return str(split[0][self.input_role])[:200] if len(split) else None

    def use_trained(self, model_config: Any) -> None:
        """Scoring a trained model (`evaluate`): take what training saved in its config (a threshold, a
        target's scaling) instead of deciding it from the data."""

    def after_validation(self, model: Any, validation: dict[str, float]) -> None:
        """Fix what the kept checkpoint's validation metrics decided (a tuned threshold) before the test split
        is scored, and save it in the model's config."""

    def baseline(self, train: "datasets.Dataset", test: "datasets.Dataset", labels: list[str] | None,
                 config: RunConfig) -> dict | None:
        """A trivial predictor's metrics on the test split, for the card: {"name": str, "metrics": {...}}.

        It may add ``"also": [{"name", "metrics"}, ...]``: cheap classical models (TF-IDF, pixels) that
        say more than the trivial one. None: this kind has no baseline."""
        return None

    def real_tokens(self, split: Any) -> int | None:
        """Non-pad input tokens in a split (for tokens/s figures)."""
        if "input_ids" in split.column_names:
            return sum(len(ids) for ids in split["input_ids"])
        return None
