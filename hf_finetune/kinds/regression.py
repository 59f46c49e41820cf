"""Text regression: one number per text (a review score, a toxicity level, annotator agreement).

The same ``AutoModelForSequenceClassification`` with ``num_labels=1`` and ``problem_type="regression"``
(mean squared error on one output). The target is standardised on the training split (mean 0,
standard deviation 1) so the new head starts in range whatever the units; the scaling is saved in the
model's config (``regression_target``), so ``predict``, ``evaluate`` and the metrics report values in
the data's own units.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..config import RunConfig
from .text_classification import TextClassification


class Regression(TextClassification):
    name = "regression"
    roles = ("text", "target")
    classification = False
    target_role = "target"

    def __init__(self) -> None:
        self.scaling: dict[str, Any] | None = None   # {"name", "mean", "std", "min", "max", "unit"}

    def preprocess(self, data: Any, processor: Any, config: RunConfig, template: Any) -> tuple[Any, bool]:
        if self.scaling is None:   # training: from the training split
            values = np.asarray(data.splits["train"]["target"], dtype=np.float64)
            std = float(values.std())
            self.scaling = {"name": data.columns.get("target", "target"), "mean": float(values.mean()),
                            "std": std if std > 0 else 1.0, "min": float(values.min()), "max": float(values.max()),
                            "unit": config.target_unit}
        return super().preprocess(data, processor, config, template)

    def targets(self, values: list) -> list:
        return [(float(v) - self.scaling["mean"]) / self.scaling["std"] for v in values]

    def cache_key(self) -> list:
        return [self.scaling["mean"], self.scaling["std"]]

    def to_units(self, standardised: Any) -> np.ndarray:
        return np.asarray(standardised, dtype=np.float64).reshape(-1) * self.scaling["std"] + self.scaling["mean"]

    def prepare_model(self, model: Any, config: RunConfig) -> None:
        """The scaling and the target's name go into config.json, so the saved model maps its output back."""
        model.accepts_loss_kwargs = False   # MSE is a batch mean, as the classification losses (see base)
        model.config.regression_target = dict(self.scaling)
        model.config.id2label, model.config.label2id = {0: self.scaling["name"]}, {self.scaling["name"]: 0}

    def use_trained(self, model_config: Any) -> None:
        self.scaling = dict(model_config.regression_target)

    def compute_metrics(self, suite: Any, processor: Any, config: RunConfig) -> Callable:
        """The metrics in the target's own units."""

        def compute(eval_pred) -> dict[str, float]:
            outputs = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
            return suite.compute(self.to_units(outputs), self.to_units(eval_pred.label_ids))

        return compute

    def analyse(self, split: Any, predictions: Any, label_ids: Any, labels: list[str]) -> dict[str, Any] | None:
        """For the card: the target's range and unit, and the test texts with the largest errors."""
        outputs = predictions[0] if isinstance(predictions, tuple) else predictions
        predicted, truth = self.to_units(outputs), self.to_units(label_ids)
        worst = np.argsort(-np.abs(predicted - truth), kind="stable")[:5]
        s = self.scaling
        unit = f" ({s['unit']})" if s.get("unit") else ""
        return {
            "target": dict(s),
            "errors": [{"input": self.describe(split, int(i)), "label": f"{truth[i]:.4g}",
                        "predicted": f"{predicted[i]:.4g}"} for i in worst],
            "notes": [f"Target `{s['name']}`{unit}: from {s['min']:.4g} to {s['max']:.4g} on the training split, "
                      f"mean {s['mean']:.4g}, standard deviation {s['std']:.4g}. The model was trained on the "
                      "standardised target; its raw output is mapped back with that mean and standard deviation "
                      "(saved in `config.json` as `regression_target`), so predictions and metrics are in these "
                      "units."],
        }

    def baseline(self, train: Any, test: Any, labels: list[str] | None, config: RunConfig) -> dict | None:
        """The mean predictor: every test text gets the training split's mean target."""
        from .. import metrics as metrics_mod

        mean = float(np.mean(np.asarray(train["target"], dtype=np.float64)))
        truth = np.asarray(test["target"], dtype=np.float64)
        scores = metrics_mod.load("regression").compute(predictions=np.full_like(truth, mean), references=truth)
        return {"name": f"mean of the training targets ({mean:.4g})", "metrics": {k: float(v) for k, v in scores.items()}}

    def usage(self, model_ref: str, example: str | None, prefix: str = "") -> str:
        text = " ".join((example or "I love this!").split())
        return (
            "from transformers import pipeline\n\n"
            f'regressor = pipeline("text-classification", model={model_ref!r}, function_to_apply="none")\n'
            "# the model outputs the standardised target; map it back to the data's units\n"
            "scaling = regressor.model.config.regression_target\n"
            f"raw = regressor({text!r})[0][\"score\"]\n"
            'print(raw * scaling["std"] + scaling["mean"])'
        )
