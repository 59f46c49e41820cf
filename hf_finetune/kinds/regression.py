"""Text regression: one number per text (a review score, a toxicity level, annotator agreement).

The same ``AutoModelForSequenceClassification`` with ``num_labels=1`` and ``problem_type="regression"``
(mean squared error on one output). The target is standardised on the training split (mean 0,
standard deviation 1) so the new head starts in range whatever the units; the scaling is saved in the
model's config (``regression_target``), so ``predict``, ``evaluate`` and the metrics report values in
the data's own units.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..config import RunConfig
from ..data.labels import replace_feature
from ..errors import DataError, ModelError
from ..data import tokenized
from . import baselines
from .base import input_fields, logits_of
from .text_classification import PAIR_NOTE, PAIR_ROLE, TextClassification, usage_input

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict


# Targets beyond this size are refused: the squared errors of the metrics (MSE) and the target's variance
# would overflow float64 (about 1.8e308) and come out as inf or NaN.
MAX_TARGET = 1e150


def is_empty_target(value: Any) -> bool:
    """An empty cell (None, blank text): its row is dropped. NaN is not empty: it is a value that is not a number,
    refused from a JSON file (NaN) as from a CSV one ("nan")."""
    return value is None or (isinstance(value, str) and not value.strip())


def encode_target(ds: DatasetDict, column: str) -> DatasetDict:
    """Regression: the target column as float64 ``target``; text that is not a number is an error naming it."""
    from datasets import ClassLabel, Value

    feature = next(iter(ds.values())).features[column]
    if isinstance(feature, ClassLabel):
        raise DataError(f"The target column {column!r} holds classes ({', '.join(feature.names[:5])}), not numbers.",
                        "Classify them with `hf-finetune sentiment`, or name a numeric column with --label-column.")
    for name, split in ds.items():
        for value in split[column]:
            if is_empty_target(value) or isinstance(value, bool):
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise DataError(f"The target column {column!r} of split {name!r} holds {value!r}, not a number.",
                                "Regression predicts one number per text: name a numeric column with "
                                "--label-column, or classify with `hf-finetune sentiment`.") from None
            if not math.isfinite(number):
                raise DataError(f"The target column {column!r} of split {name!r} holds {value!r}, not a finite "
                                "number.", "Give finite numbers; leave the cell empty (or null) to drop the row.")
            if abs(number) > MAX_TARGET:
                raise DataError(f"The target column {column!r} of split {name!r} holds {value!r}, beyond "
                                f"±{MAX_TARGET:g}: the squared errors of the metrics would overflow.",
                                "Rescale the target (e.g. divide it by a power of ten) and say the unit with "
                                "--target-unit.")

    def to_float(batch: dict[str, list]) -> dict[str, list]:
        return {"target": [None if is_empty_target(v) else float(v) for v in batch[column]]}

    features = replace_feature(next(iter(ds.values())).features, column, None)
    features["target"] = Value("float64")
    return ds.map(to_float, batched=True, remove_columns=[column], features=features, desc="Reading the target")


def saved_scaling(model_config: Any) -> dict[str, Any]:
    """The target's scaling that training saved in config.json (``regression_target``); none at all, for a model
    trained elsewhere, maps the output as it is. A model may come from anyone: a scaling that is not finite
    numbers is refused."""
    saved = getattr(model_config, "regression_target", None)
    if saved is None:
        return {"mean": 0.0, "std": 1.0, "name": "score"}
    numbers = isinstance(saved, dict) and all(
        isinstance(saved.get(key), (int, float)) and not isinstance(saved.get(key), bool) and math.isfinite(saved[key])
        for key in ("mean", "std"))
    if not numbers or saved["std"] <= 0 or not isinstance(saved.get("name", ""), str):
        raise ModelError(f"The model's config.json holds regression_target {str(saved)[:200]}, not the target's "
                         "scaling a run saves there (a name, a finite mean and a standard deviation above 0).",
                         "Fix or remove regression_target in config.json (without it the output is read as it is), "
                         "or use the output dir of a finished regression run.")
    return {"name": "score", **saved}


def hold_out_by_quantiles(train: Dataset, fraction: float, seed: int) -> tuple[DatasetDict, str]:
    """A hold-out of a numeric target stratified by the target's deciles, so both parts span its range."""
    from datasets import ClassLabel, DatasetDict

    values = np.asarray(train["target"], dtype=np.float64)
    edges = np.unique(np.quantile(values, np.linspace(0, 1, 11)[1:-1]))
    binned = train.add_column("_bin", np.searchsorted(edges, values, side="right").tolist())
    binned = binned.cast_column("_bin", ClassLabel(num_classes=len(edges) + 1))
    try:
        parts = binned.train_test_split(test_size=fraction, seed=seed, stratify_by_column="_bin")
        how = "target-decile stratified"
    except ValueError:
        parts, how = binned.train_test_split(test_size=fraction, seed=seed), "random"
    return DatasetDict({k: v.remove_columns("_bin") for k, v in parts.items()}), how


class Regression(TextClassification):
    name = "regression"
    roles = ("text", "target")
    target_role = "target"
    options = ("text_column", "label_column", "target_unit", "length_buckets", "linear_probe")
    classification = False
    task_words = "text regression"   # served by the text-classification pipeline
    problem_types = ("regression",)
    streams = False   # a stream's targets would need their checks (and scaling, label sets) row by row
    learned_nothing_cause = ("too little training: the head still outputs about the training mean for every text "
                             "(too few optimizer steps, or a learning rate too low for them)")
    NEAR_CONSTANT = 0.1   # predictions whose spread is under this share of the targets' are (near) one number

    def __init__(self, template: Any = None, model_config: Any = None, prefix: str | None = None):
        super().__init__(template, model_config, prefix)
        self.scaling: dict[str, Any] | None = None   # {"name", "mean", "std", "min", "max", "unit"}

    # -- preparing data -----------------------------------------------------------------------------------
    @classmethod
    def encode_targets(cls, splits: Any, column: str, names: list[str] | None, strict: bool,
                       config: RunConfig) -> tuple[Any, list[str]]:
        return encode_target(splits, column), []

    @classmethod
    def check_targets(cls, splits: Any, labels: list[str], column: str) -> None:
        """Any numbers will do, but not one number only: a constant target teaches nothing (the training mean
        is already exact; every error metric would be 0 and the correlations undefined)."""
        values = {v for v in splits["train"]["target"] if v is not None}
        if len(values) == 1:
            raise DataError(f"The target column {column!r} holds the same value ({values.pop():g}) in every training "
                            "row: there is nothing to learn, and every metric would be 0 or undefined.",
                            "Check the target column (--label-column) and the rows you train on.")

    @classmethod
    def hold_out(cls, train: Any, fraction: float, seed: int) -> tuple[Any, Any, str]:
        """Stratified by the target's deciles, so both parts span its range."""
        parts, how = hold_out_by_quantiles(train, fraction, seed)
        return parts["train"], parts["test"], how + " {share} hold-out of {source}, seed {seed}"

    @classmethod
    def label_counts(cls, split: Any, labels: list[str]) -> dict[str, int]:
        return {}

    # -- one run ------------------------------------------------------------------------------------------
    def preprocess(self, data: Any, processor: Any, config: RunConfig) -> tuple[Any, bool]:
        if self.scaling is None:   # training: from the training split
            values = np.asarray(data.splits["train"]["target"], dtype=np.float64)
            std = float(values.std())
            self.scaling = {"name": data.columns.get("target", "target"), "mean": float(values.mean()),
                            "std": std if std > 0 else 1.0, "min": float(values.min()), "max": float(values.max()),
                            "unit": config.target_unit}
        return super().preprocess(data, processor, config)

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

    def use_trained(self, model: Any) -> None:
        self.scaling = saved_scaling(model.config)

    def compute_metrics(self, suite: Any, processor: Any, config: RunConfig) -> Callable:
        """The metrics in the target's own units."""

        def compute(eval_pred) -> dict[str, float]:
            return suite.compute(self.to_units(logits_of(eval_pred.predictions)), self.to_units(eval_pred.label_ids))

        return compute

    def fit_head(self, train_x: Any, train_y: Any, validation_x: Any, validation_y: Any, outputs: int
                 ) -> tuple[Any, Any, dict[str, Any]]:
        """--linear-probe: a ridge regression on the standardised target, its strength picked on validation."""
        from sklearn.linear_model import Ridge

        from .. import linear_probe

        train_y, validation_y = np.asarray(train_y).reshape(-1), np.asarray(validation_y).reshape(-1)
        candidates = {c: Ridge(alpha=1.0 / c).fit(train_x, train_y) for c in linear_probe.STRENGTHS}
        strength, model, score = linear_probe.pick(
            candidates, lambda m: -float(np.mean((m.predict(validation_x) - validation_y) ** 2)))
        mse = -score * self.scaling["std"] ** 2   # in the target's units
        return model.coef_.reshape(1, -1), np.array([model.intercept_]), {
            "head": "ridge regression", "alpha": 1.0 / strength, "validation_mse": round(mse, 6)}

    def analyse(self, split: Any, predictions: Any, label_ids: Any, labels: list[str]) -> dict[str, Any] | None:
        """For the card: the target's range and unit, and the test texts with the largest errors."""
        predicted, truth = self.to_units(logits_of(predictions)), self.to_units(label_ids)
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

    def one_output(self, predictions: Any, label_ids: Any, labels: list[str], processor: Any) -> str | None:
        """A near-constant prediction: its spread on the test split is under NEAR_CONSTANT of the targets'."""
        predicted, truth = self.to_units(logits_of(predictions)), self.to_units(label_ids)
        if not len(truth) or truth.std() == 0 or predicted.std() >= self.NEAR_CONSTANT * truth.std():
            return None
        return (f"about {predicted.mean():.4g} to every one of the {len(truth)} test examples (standard deviation "
                f"{predicted.std():.3g}, the targets' {truth.std():.3g})")

    def baseline(self, train: Any, test: Any, labels: list[str] | None, config: RunConfig) -> dict | None:
        """The mean predictor: every test text gets the training split's mean target."""
        from .. import metrics as metrics_mod

        mean = float(np.mean(np.asarray(train["target"], dtype=np.float64)))
        truth = np.asarray(test["target"], dtype=np.float64)
        scores = metrics_mod.load("regression").compute(predictions=np.full_like(truth, mean), references=truth)
        result = {"name": f"mean of the training targets ({mean:.4g})", "trivial": True,
                  "metrics": {k: float(v) for k, v in scores.items()}}
        if len(train) <= self.TFIDF_MAX_TRAIN:
            if PAIR_ROLE in train.column_names:   # similarity of two texts: how alike their words are
                train_pairs, test_pairs = ((tokenized.bounded(split["text"], config.max_length),
                                            tokenized.bounded(split[PAIR_ROLE], config.max_length))
                                           for split in (train, test))
                result["also"] = [baselines.tfidf_cosine_regression(train_pairs, train["target"], test_pairs, truth)]
            else:
                train_texts, test_texts = (self.baseline_texts(split, config) for split in (train, test))
                result["also"] = [baselines.tfidf_ridge(train_texts, train["target"], test_texts, truth)]
        return result

    # -- serving ------------------------------------------------------------------------------------------
    @classmethod
    def usage(cls, model_ref: str, example: str | dict[str, str] | None, prefix: str = "") -> str:
        value = usage_input(example)
        first = "" if isinstance(value, dict) else "[0]"   # the pipeline answers a text with a list, a pair with a dict
        return (
            "from transformers import pipeline\n\n"
            f'regressor = pipeline("text-classification", model={model_ref!r}, function_to_apply="none")\n'
            "# the model outputs the standardised target; map it back to the data's units\n"
            "scaling = regressor.model.config.regression_target\n"
            f"{PAIR_NOTE if isinstance(value, dict) else ''}raw = regressor({value!r}){first}[\"score\"]\n"
            'print(raw * scaling["std"] + scaling["mean"])'
        )

    def predictions(self, inputs: list[Any], logits: Any) -> list[dict[str, Any]]:
        """The output mapped back to the target's units with the scaling saved at training (none for a model
        trained elsewhere)."""
        scaling = saved_scaling(self.model_config)
        return [{**input_fields(value), scaling["name"]: round(float(row[0]) * scaling["std"] + scaling["mean"], 6)}
                for value, row in zip(inputs, logits)]
