"""Multi-label text classification: any number of labels per text (emotions, topics, toxicity types).

The same ``AutoModelForSequenceClassification`` with ``problem_type="multi_label_classification"``
(one sigmoid per label, binary cross-entropy on float 0/1 targets). What it needs beyond single-label
classification: a decision threshold, tuned on the validation split at every evaluation and fixed
from the kept checkpoint's evaluation before the test split is scored (saved in the model's config as
``multi_label_threshold`` for ``predict``), and scores per label instead of a confusion matrix.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..config import RunConfig
from .text_classification import TextClassification

THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)   # candidates tuned on validation
DEFAULT_THRESHOLD = 0.5


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def micro_f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    true_pos = float(np.sum((predicted == 1) & (truth == 1)))
    denominator = float(np.sum(predicted == 1) + np.sum(truth == 1))
    return 2 * true_pos / denominator if denominator else 0.0


def best_threshold(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """The candidate threshold with the best micro-F1 (ties: the one nearest 0.5)."""
    scores = [(micro_f1((probabilities >= t).astype(int), truth), -abs(t - 0.5), float(t)) for t in THRESHOLDS]
    return max(scores)[2]


def label_frequency_prior(train_targets: np.ndarray) -> np.ndarray:
    """The best constant prediction: the k most frequent training labels, k chosen for the best micro-F1 on
    the training split (k = 0 is "no label"); returned as one 0/1 row."""
    truth = np.asarray(train_targets, dtype=int)
    order = np.argsort(-truth.sum(axis=0), kind="stable")
    best, best_row = -1.0, np.zeros(truth.shape[1], dtype=int)
    for k in range(truth.shape[1] + 1):
        row = np.zeros(truth.shape[1], dtype=int)
        row[order[:k]] = 1
        score = micro_f1(np.broadcast_to(row, truth.shape), truth)
        if score > best:
            best, best_row = score, row
    return best_row


class MultiLabelClassification(TextClassification):
    name = "multi-label-classification"
    roles = ("text", "labels")
    target_role = "labels"

    def __init__(self) -> None:
        self.threshold: float | None = None   # None: tune it on each validation pass (training)

    def prepare_model(self, model: Any, config: RunConfig) -> None:
        """Training: the threshold is tuned anew (a base model's saved one is not reused)."""
        super().prepare_model(model, config)
        self.threshold = None

    def use_trained(self, model_config: Any) -> None:
        saved = getattr(model_config, "multi_label_threshold", None)
        self.threshold = float(saved) if saved is not None else DEFAULT_THRESHOLD

    def compute_metrics(self, suite: Any, processor: Any, config: RunConfig) -> Callable:
        """Validation (no fixed threshold yet): tune it and report the metrics at it, and `threshold`.
        Test (fixed): the metrics at the fixed threshold."""

        def compute(eval_pred) -> dict[str, float]:
            logits = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
            probabilities, truth = sigmoid(logits), np.asarray(eval_pred.label_ids).round().astype(int)
            threshold = self.threshold if self.threshold is not None else best_threshold(probabilities, truth)
            results = suite.compute((probabilities >= threshold).astype(int), truth)
            results["threshold"] = float(threshold)
            return results

        return compute

    def after_validation(self, model: Any, validation: dict[str, float]) -> None:
        self.threshold = float(validation.get("threshold", DEFAULT_THRESHOLD))
        model.config.multi_label_threshold = self.threshold

    def analyse(self, split: Any, predictions: Any, label_ids: Any, labels: list[str]) -> dict[str, Any] | None:
        """Per-label precision / recall / F1 at the fixed threshold, and a few test texts it gets wrong."""
        from sklearn.metrics import precision_recall_fscore_support

        logits = predictions[0] if isinstance(predictions, tuple) else predictions
        threshold = self.threshold if self.threshold is not None else DEFAULT_THRESHOLD
        predicted = (sigmoid(logits) >= threshold).astype(int)
        truth = np.asarray(label_ids).round().astype(int)
        precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, average=None,
                                                                         zero_division=0)

        def names(row: np.ndarray) -> str:
            return ", ".join(labels[i] for i in np.flatnonzero(row)) or "(none)"

        wrong = np.flatnonzero((predicted != truth).any(axis=1))[:5]
        return {
            "per_class": {name: {"precision": round(float(precision[i]), 4), "recall": round(float(recall[i]), 4),
                                 "f1": round(float(f1[i]), 4), "support": int(support[i])}
                          for i, name in enumerate(labels)},
            "errors": [{"input": self.describe(split, int(i)), "label": names(truth[i]),
                        "predicted": names(predicted[i])} for i in wrong],
            "notes": [f"A label is predicted when its sigmoid score is at least **{threshold:.2f}**: the threshold "
                      "with the best micro-F1 on the validation split (at the kept checkpoint), saved in "
                      "`config.json` as `multi_label_threshold` and used by `hf-finetune predict`."],
        }

    def baseline(self, train: Any, test: Any, labels: list[str] | None, config: RunConfig) -> dict | None:
        """The label-frequency prior: the best constant label set on the training split, scored on test."""
        from .. import metrics as metrics_mod

        train_targets, test_targets = np.asarray(train["labels"]), np.asarray(test["labels"]).round().astype(int)
        row = label_frequency_prior(train_targets)
        predicted = np.broadcast_to(row, test_targets.shape)
        scores = metrics_mod.load("multilabel").compute(predictions=predicted, references=test_targets)
        chosen = [labels[i] for i in np.flatnonzero(row)] if labels else [str(i) for i in np.flatnonzero(row)]
        return {"name": "label-frequency prior (always " + (", ".join(chosen) if chosen else "no label") + ")",
                "metrics": {k: float(v) for k, v in scores.items()}}

    def usage(self, model_ref: str, example: str | None, prefix: str = "") -> str:
        text = " ".join((example or "I love this!").split())
        return (
            "from transformers import pipeline\n\n"
            f'classifier = pipeline("text-classification", model={model_ref!r}, top_k=None)\n'
            "# a sigmoid score per label (problem_type multi_label_classification); the threshold was tuned on\n"
            "# the validation split and saved in the model's config\n"
            "threshold = classifier.model.config.multi_label_threshold\n"
            f"scores = classifier([{text!r}])[0]   # every label's score for the one text\n"
            'print([s["label"] for s in scores if s["score"] >= threshold], scores)'
        )
