"""Multi-label text classification: any number of labels per text (emotions, topics, toxicity types).

The same ``AutoModelForSequenceClassification`` with ``problem_type="multi_label_classification"``
(one sigmoid per label, binary cross-entropy on float 0/1 targets). What it needs beyond single-label
classification: a decision threshold, tuned on the validation split at every evaluation and fixed
from the kept checkpoint's evaluation before the test split is scored (saved in the model's config as
``multi_label_threshold`` for ``predict``), and scores per label instead of a confusion matrix. Its
labels come as lists, as separated text or as several 0/1 columns, and held-out splits keep each
label's share by iterative stratification.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Callable, NoReturn

import numpy as np

from ..config import RunConfig
from ..data.labels import check_known, is_missing, replace_feature
from ..errors import DataError, ModelError, did_you_mean
from ..data import tokenized
from . import baselines
from .base import logits_of
from .text_classification import TextClassification

if TYPE_CHECKING:
    from datasets import DatasetDict

log = logging.getLogger("hf_finetune")

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


MIN_POSITIVES = 5   # a label's own threshold needs this many validation texts that carry it; else the common one


def f1_per_label(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    true_pos = ((predicted == 1) & (truth == 1)).sum(axis=0)
    denominator = (predicted == 1).sum(axis=0) + (truth == 1).sum(axis=0)
    return np.divide(2.0 * true_pos, denominator, out=np.zeros(truth.shape[1]), where=denominator > 0)


def best_thresholds(probabilities: np.ndarray, truth: np.ndarray, common: float) -> np.ndarray:
    """A threshold per label, the candidate with that label's best F1 (ties: the one nearest ``common``);
    ``common`` for a label with fewer than MIN_POSITIVES validation texts, where a threshold of its own would
    be fitted to a handful of texts. A rare label's best micro-F1 threshold is often one it never reaches."""
    scores = np.stack([f1_per_label((probabilities >= t).astype(int), truth) for t in THRESHOLDS])   # [t, label]
    nearest = -np.abs(THRESHOLDS - common)[:, None]
    best = THRESHOLDS[np.lexsort((np.broadcast_to(nearest, scores.shape), scores), axis=0)[-1]]
    return np.where(truth.sum(axis=0) >= MIN_POSITIVES, best, common)


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


LABEL_SETS = "__label_set__"   # the column that --label-columns are joined into


def join_label_columns(raw: DatasetDict, config: RunConfig) -> DatasetDict:
    """Multi-label data as several 0/1 columns (``--label-columns a,b,c``): one column holding each row's
    list of label names, which the label role then reads (a split without those columns, an unlabelled
    test file, is left as it is)."""
    from datasets import DatasetDict

    columns = config.label_columns
    if not columns:
        return raw
    if config.label_column:
        raise DataError("--label-column and --label-columns both name the labels.",
                        "Give a column of label lists with --label-column, or several 0/1 columns with "
                        "--label-columns, not both.")
    out = DatasetDict()
    for name, split in raw.items():
        present = [c for c in columns if c in split.column_names]
        if not present:
            out[name] = split
            continue
        if len(present) < len(columns):
            missing = next(c for c in columns if c not in split.column_names)
            raise DataError(f"Split {name!r} has no column {missing!r} (--label-columns). "
                            f"{did_you_mean(missing, split.column_names)}")
        for column in columns:
            bad = next((v for v in split[column] if not is_missing(v) and str(v).strip().lower() not in
                        ("0", "1", "0.0", "1.0", "true", "false")), None)
            if bad is not None:
                raise DataError(f"Column {column!r} (--label-columns) holds {bad!r}; each of those columns must be "
                                "0 or 1 (the label is absent or present).",
                                "Give a column of label lists with --label-column instead.")

        def join(batch: dict[str, list]) -> dict[str, list]:
            rows = zip(*(batch[c] for c in columns))
            return {LABEL_SETS: [None if any(is_missing(v) for v in row) else
                                 [c for c, v in zip(columns, row) if str(v).strip().lower() in ("1", "1.0", "true")]
                                 for row in rows]}

        out[name] = split.map(join, batched=True, remove_columns=columns, desc="Joining label columns")
    return out


def label_ids(seen: list[str], names: list[str] | None, column: str) -> bool:
    """Labels that are whole numbers, with label names given (--label-names, a label_names.txt or labels.txt)
    that are not those numbers themselves: ids, indices into the names, as in single-label data."""
    if not names or not seen or not all(label.isdigit() for label in seen) or set(seen) <= set(names):
        return False
    outside = [label for label in sorted(seen, key=int) if int(label) >= len(names)]
    if outside:
        raise DataError(f"Label column {column!r} holds the id {outside[-1]}, but only {len(names)} label names were "
                        f"given ({', '.join(names[:8])}{', ...' if len(names) > 8 else ''}); ids are read as "
                        "indices into the names.", "Give one name per label id 0, 1, ... in order.")
    return True


def encode_label_sets(ds: DatasetDict, column: str, names: list[str] | None = None, strict: bool = False,
                      separator: str = ",") -> tuple[DatasetDict, list[str]]:
    """Multi-label: a column of label lists (or of labels joined by ``separator``) becomes ``labels``, one
    float 0/1 per label name (what BCEWithLogitsLoss takes), in the order of ``names`` or sorted; labels that
    are ids (0, 1, ...) with ``names`` given are the names at those indices."""
    from datasets import ClassLabel, Sequence, Value

    feature = next(iter(ds.values())).features[column]
    inner = getattr(feature, "feature", None)
    names_of_ids = list(inner.names) if isinstance(inner, ClassLabel) else None
    is_list = type(feature).__name__ in ("List", "Sequence", "LargeList")
    if not is_list and not (isinstance(feature, Value) and feature.dtype in ("string", "large_string")):
        raise DataError(f"The label column {column!r} holds {feature}; multi-label needs a list of labels per row, "
                        f"labels joined by {separator!r}, or several 0/1 columns.",
                        "Name the columns with --label-columns a,b,c, or the separator with --label-separator.")

    joined = next((name for name in names or [] if not is_list and separator in name), None)
    if joined is not None:   # split at the separator, it would be read as other labels (or none)
        raise DataError(f"The label {joined!r} contains the label separator {separator!r}, so labels joined by "
                        f"{separator!r} in column {column!r} can't be told apart.",
                        "Give the labels as a list per row (e.g. JSON Lines), or join them with a separator no "
                        "label contains (--label-separator).")

    def as_read(value: Any) -> list[str] | None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if isinstance(value, str):
            return [part.strip() for part in value.split(separator) if part.strip()]
        return [names_of_ids[v] if names_of_ids else str(v) for v in value]

    seen = sorted({label for split in ds.values() for value in split[column] for label in (as_read(value) or [])})
    ids = label_ids(seen, names, column)
    if ids:
        seen = sorted({names[int(i)] for i in seen})

    def as_set(value: Any) -> list[str] | None:
        read = as_read(value)
        return [names[int(i)] for i in read] if ids and read is not None else read
    label_names = list(names) if names else seen
    index = {name: i for i, name in enumerate(label_names)}
    unknown = [label for label in seen if label not in index]
    check_known(unknown, strict, column, label_names, "Ignoring labels the model does not know")

    def to_rows(batch: dict[str, list]) -> dict[str, list]:
        rows = []
        for value in batch[column]:
            labels = as_set(value)
            if labels is None:
                rows.append(None)
                continue
            row = [0.0] * len(label_names)
            for label in labels:
                if label in index:
                    row[index[label]] = 1.0
            rows.append(row)
        return {"labels": rows}

    features = replace_feature(next(iter(ds.values())).features, column, None)
    features["labels"] = Sequence(Value("float32"))
    ds = ds.map(to_rows, batched=True, remove_columns=[column], features=features, desc="Encoding label sets")
    return ds, label_names


def iterative_stratification(rows: Any, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split multi-label rows into (rest, held out) keeping each label's share in both, by iterative
    stratification (Sechidis, Tsoumakas & Vlahavas, ECML 2011): the rarest label's rows are placed first,
    each where that label is most wanted, ties by the fold size still wanted, then at random. A label too rare
    for the held-out part to get one row of by its share has its rows placed at random by the shares (placed
    greedily, all would be kept, and with them most rows of data with many rare labels), and a part that
    has its size takes no more rows: the held-out part is ``fraction`` of the rows, rounded up."""
    rng = np.random.default_rng(seed)
    y = np.asarray(rows, dtype=np.int64).reshape(len(rows), -1)
    shares = np.array([1 - fraction, fraction])
    wanted = shares * len(y)
    wanted_per_label = np.outer(shares, y.sum(axis=0)).astype(np.float64)
    fold = np.full(len(y), -1)
    left = np.ones(len(y), dtype=bool)

    rare = fraction * y.sum(axis=0) < 1   # labels whose share of the held-out part is less than one row
    held_size = min(math.ceil(fraction * len(y)), len(y) - 1)   # as `train_test_split` rounds: at least one row
    room = np.array([len(y) - held_size, held_size])

    def place(i: int, candidates: np.ndarray) -> None:
        roomy = np.flatnonzero(room > 0)   # a part that has its size takes no more rows while the other has room
        if len(roomy) == 1 and roomy[0] not in candidates:
            candidates = roomy
        if len(candidates) > 1:
            candidates = candidates[wanted[candidates] == wanted[candidates].max()]
        f = int(rng.choice(candidates))
        fold[i], left[i] = f, False
        wanted[f] -= 1
        room[f] -= 1
        wanted_per_label[f] -= y[i]

    while left.any():
        counts = y[left].sum(axis=0)
        if not counts.any():   # rows without any label: by fold size alone
            for i in rng.permutation(np.flatnonzero(left)):
                place(int(i), np.array([0, 1]))
            break
        label = int(np.where(counts > 0, counts, np.iinfo(np.int64).max).argmin())
        for i in rng.permutation(np.flatnonzero(left & (y[:, label] > 0))):
            if rare[label]:   # by the shares, at random: greedily, every row of a rare label would be kept
                place(int(i), np.array([int(rng.random() < fraction)]))
                continue
            need = wanted_per_label[:, label]
            place(int(i), np.flatnonzero(need == need.max()))
    return np.flatnonzero(fold == 0).tolist(), np.flatnonzero(fold == 1).tolist()


class MultiLabelClassification(TextClassification):
    name = "multi-label-classification"
    roles = ("text", "labels")
    target_role = "labels"
    options = ("text_column", "label_column", "label_columns", "label_separator", "label_names", "length_buckets",
               "linear_probe")
    task_words = "multi-label text classification"   # served by the text-classification pipeline
    problem_types = ("multi_label_classification",)
    streams = False   # a stream's targets would need their checks (and scaling, label sets) row by row
    text_pairs = False   # its baselines, thresholds and predictions read one text per example
    learned_nothing_cause = ("class imbalance: a few frequent labels dominate the loss, so the model gives every "
                             "text the same few labels (near the label-frequency prior) and the rare ones never reach "
                             "their thresholds; it needs more optimizer steps (epochs, learning rate) and more examples "
                             "of the rare labels")

    def __init__(self, template: Any = None, model_config: Any = None, prefix: str | None = None):
        super().__init__(template, model_config, prefix)
        self.threshold: float | None = None   # None: tune it on each validation pass (training)
        self.thresholds: np.ndarray | None = None   # one per label, once fixed

    # -- preparing data -----------------------------------------------------------------------------------
    @classmethod
    def read_columns(cls, raw: Any, config: RunConfig) -> tuple[Any, dict[str, str]]:
        """Labels given as several 0/1 columns (--label-columns) are read as one column of label lists."""
        return join_label_columns(raw, config), ({"labels": LABEL_SETS} if config.label_columns else {})

    @classmethod
    def named_labels(cls, config: RunConfig) -> list[str] | None:
        """--label-columns name the labels too (each column is one)."""
        return config.label_names or config.label_columns

    @classmethod
    def encode_targets(cls, splits: Any, column: str, names: list[str] | None, strict: bool,
                       config: RunConfig) -> tuple[Any, list[str]]:
        return encode_label_sets(splits, column, names, strict, config.label_separator)

    @classmethod
    def check_targets(cls, splits: Any, labels: list[str], column: str) -> None:
        from ..errors import DataError

        if len(labels) < 2:
            raise DataError(f"The label column {column!r} holds {len(labels)} distinct label(s); multi-label "
                            "classification needs at least two.", "Check the label column and --label-separator.")

    @classmethod
    def hold_out(cls, train: Any, fraction: float, seed: int) -> tuple[Any, Any, str]:
        rest, held = iterative_stratification(train["labels"], fraction, seed)
        return (train.select(rest), train.select(held),
                "{share} hold-out of {source} by iterative stratification of the label sets, seed {seed}")

    @classmethod
    def label_counts(cls, split: Any, labels: list[str]) -> dict[str, int]:
        """Rows that carry each label."""
        rows = np.asarray(split["labels"]).reshape(-1, len(labels))
        return {name: int(rows[:, i].sum()) for i, name in enumerate(labels)}

    # -- one run ------------------------------------------------------------------------------------------
    def prepare_model(self, model: Any, config: RunConfig) -> None:
        """Training: the threshold is tuned anew (a base model's saved one is not reused)."""
        super().prepare_model(model, config)
        self.threshold = None

    def use_trained(self, model: Any) -> None:
        self.threshold = saved_threshold(model.config)
        self.thresholds = saved_thresholds(model.config)

    def compute_metrics(self, suite: Any, processor: Any, config: RunConfig) -> Callable:
        """Validation (no fixed threshold yet): tune it and report the metrics at it, and `threshold`.
        Test (fixed): the metrics at the fixed threshold."""

        def compute(eval_pred) -> dict[str, float]:
            probabilities = sigmoid(logits_of(eval_pred.predictions))
            truth = np.asarray(eval_pred.label_ids).round().astype(int)
            threshold = self.threshold if self.threshold is not None else best_threshold(probabilities, truth)
            thresholds = (self.thresholds if self.thresholds is not None
                          else best_thresholds(probabilities, truth, threshold))
            results = suite.compute((probabilities >= thresholds).astype(int), truth)
            results["threshold"] = float(threshold)
            return results

        return compute

    def fit_head(self, train_x: Any, train_y: Any, validation_x: Any, validation_y: Any, outputs: int
                 ) -> tuple[Any, Any, dict[str, Any]]:
        """--linear-probe: a logistic regression per label (a label every training text has or lacks: a
        constant), one strength for all, picked on the validation micro-F1 at its best threshold."""
        from sklearn.linear_model import LogisticRegression

        from .. import linear_probe

        train_y, truth = np.asarray(train_y).round().astype(int), np.asarray(validation_y).round().astype(int)

        def fitted(strength: float) -> tuple[np.ndarray, np.ndarray]:
            weight, bias = np.zeros((outputs, train_x.shape[1])), np.zeros(outputs)
            for j in range(outputs):
                positives = int(train_y[:, j].sum())
                if 0 < positives < len(train_y):
                    model = LogisticRegression(C=strength, max_iter=500).fit(train_x, train_y[:, j])
                    weight[j], bias[j] = model.coef_[0], model.intercept_[0]
                else:
                    bias[j] = 10.0 if positives else -10.0
            return weight, bias

        def score(head: tuple[np.ndarray, np.ndarray]) -> float:
            probabilities = sigmoid(validation_x @ head[0].T + head[1])
            return micro_f1((probabilities >= best_threshold(probabilities, truth)).astype(int), truth)

        strength, (weight, bias), f1 = linear_probe.pick({c: fitted(c) for c in linear_probe.STRENGTHS}, score)
        return weight, bias, {"head": "logistic regression per label", "C": strength,
                              "validation_f1_micro": round(f1, 4)}

    def after_validation(self, model: Any, validation: dict[str, float], predict_validation: Callable[[], Any]
                         ) -> None:
        """The kept checkpoint's common threshold (from its validation metrics) and, tuned on its validation
        predictions, each label's own; both saved in config.json for `predict` and `evaluate`."""
        self.threshold = float(validation.get("threshold", DEFAULT_THRESHOLD))
        output = predict_validation()
        self.thresholds = best_thresholds(sigmoid(logits_of(output.predictions)),
                                          np.asarray(output.label_ids).round().astype(int), self.threshold)
        model.config.multi_label_threshold = self.threshold
        model.config.multi_label_thresholds = [float(t) for t in self.thresholds]

    def analyse(self, split: Any, predictions: Any, label_ids: Any, labels: list[str]) -> dict[str, Any] | None:
        """Per-label precision / recall / F1 at the fixed threshold, and a few test texts it gets wrong."""
        from sklearn.metrics import precision_recall_fscore_support

        threshold = self.threshold if self.threshold is not None else DEFAULT_THRESHOLD
        thresholds = self.fixed_thresholds(len(labels))
        predicted = self.predicted(predictions, len(labels))
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
            "notes": [f"A label is predicted when its sigmoid score reaches its own threshold: the one with that "
                      "label's best F1 on the validation split (at the kept checkpoint), for labels with at least "
                      f"{MIN_POSITIVES} validation texts; the others use **{threshold:.2f}**, the threshold with the "
                      "best micro-F1 there. They are saved in `config.json` as `multi_label_thresholds` (one per "
                      "label; `multi_label_threshold` holds the common one) and used by `hf-finetune predict`. "
                      "Thresholds: " + ", ".join(f"{name} {t:.2f}" for name, t in zip(labels, thresholds)) + "."],
        }

    def fixed_thresholds(self, n_labels: int) -> np.ndarray:
        """Each label's threshold, once fixed; else the common one (or the default) for every label."""
        if self.thresholds is not None:
            return self.thresholds
        return np.full(n_labels, self.threshold if self.threshold is not None else DEFAULT_THRESHOLD)

    def predicted(self, predictions: Any, n_labels: int) -> np.ndarray:
        """The 0/1 label sets of a prediction, at the fixed thresholds."""
        return (sigmoid(logits_of(predictions)) >= self.fixed_thresholds(n_labels)).astype(int)

    def test_outputs(self, predictions: Any, label_ids: Any, labels: list[str], processor: Any
                     ) -> tuple[list, list] | None:
        """The predicted and the true label set of each test example (at the fixed thresholds)."""
        predicted = self.predicted(predictions, len(labels))
        truth = np.asarray(label_ids).round().astype(int)

        def named(row: np.ndarray) -> str:
            return "`" + ", ".join(labels[i] for i in np.flatnonzero(row)) + "`" if row.any() else "no label"

        return [named(row) for row in predicted], [named(row) for row in truth]

    def baseline(self, train: Any, test: Any, labels: list[str] | None, config: RunConfig) -> dict | None:
        """The label-frequency prior: the best constant label set on the training split, scored on test."""
        from .. import metrics as metrics_mod

        train_targets, test_targets = np.asarray(train["labels"]), np.asarray(test["labels"]).round().astype(int)
        row = label_frequency_prior(train_targets)
        predicted = np.broadcast_to(row, test_targets.shape)
        scores = metrics_mod.load("multilabel").compute(predictions=predicted, references=test_targets)
        chosen = [labels[i] for i in np.flatnonzero(row)] if labels else [str(i) for i in np.flatnonzero(row)]
        result = {"name": "label-frequency prior (always " + (", ".join(chosen) if chosen else "no label") + ")",
                  "trivial": True, "metrics": {k: float(v) for k, v in scores.items()}}
        if len(train) <= self.TFIDF_MAX_TRAIN:
            train_texts, test_texts = (tokenized.bounded(split["text"], config.max_length) for split in (train, test))
            result["also"] = [baselines.tfidf_one_vs_rest(train_texts, train_targets, test_texts, test_targets,
                                                          config.seed)]
        return result

    # -- serving ------------------------------------------------------------------------------------------
    @classmethod
    def usage(cls, model_ref: str, example: str | None, prefix: str = "") -> str:
        text = " ".join((example or "I love this!").split())
        return (
            "from transformers import pipeline\n\n"
            f'classifier = pipeline("text-classification", model={model_ref!r}, top_k=None)\n'
            "# a sigmoid score per label (problem_type multi_label_classification); the threshold was tuned on\n"
            "# the validation split and saved in the model's config\n"
            "config = classifier.model.config\n"
            "thresholds = dict(zip(config.id2label.values(), config.multi_label_thresholds))\n"
            f"scores = classifier([{text!r}])[0]   # every label's score for the one text\n"
            'print([s["label"] for s in scores if s["score"] >= thresholds[s["label"]]], scores)'
        )

    def predictions(self, inputs: list[str], logits: Any) -> list[dict[str, Any]]:
        """Every label whose sigmoid score reaches the threshold saved at training (tuned on the validation
        split; 0.5 for a model trained elsewhere)."""
        id2label = self.model_config.id2label
        threshold = saved_threshold(self.model_config)
        thresholds = saved_thresholds(self.model_config)
        if thresholds is None:
            thresholds = np.full(len(id2label), threshold)
        scores = logits.sigmoid()
        return [{"input": value, "labels": [id2label[i] for i, p in enumerate(row) if float(p) >= thresholds[i]],
                 "threshold": threshold,
                 "thresholds": {id2label[i]: float(t) for i, t in enumerate(thresholds)},
                 "scores": {id2label[i]: round(float(p), 6) for i, p in enumerate(row)}}
                for value, row in zip(inputs, scores)]


def _is_threshold(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


def _refuse_threshold(key: str, value: Any) -> NoReturn:
    raise ModelError(f"The model's config.json holds {key} {str(value)[:200]}, not what a run saves there (a score "
                     f"threshold from 0 to 1{', one per label' if key.endswith('s') else ''}).",
                     f"Fix or remove {key} in config.json (0.5 is used without it), or use the output dir of a "
                     "finished multi-label run.")


def saved_threshold(model_config: Any) -> float:
    """The common threshold training saved in config.json (0.5 for a model trained elsewhere)."""
    saved = getattr(model_config, "multi_label_threshold", None)
    if saved is None:
        return DEFAULT_THRESHOLD
    if not _is_threshold(saved):
        _refuse_threshold("multi_label_threshold", saved)
    return float(saved)


def saved_thresholds(model_config: Any) -> np.ndarray | None:
    """The per-label thresholds training saved in config.json, if they fit the model's labels."""
    saved = getattr(model_config, "multi_label_thresholds", None)
    if not isinstance(saved, (list, tuple)) or len(saved) != len(model_config.id2label):
        return None
    if not all(map(_is_threshold, saved)):
        _refuse_threshold("multi_label_thresholds", saved)
    return np.asarray([float(t) for t in saved])
