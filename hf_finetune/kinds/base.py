"""The interface every task kind implements, with the defaults most kinds share.

A kind is used at three moments, each with what it knows then:
- **preparing data** (class methods: no model yet): its column roles, how its target column is encoded,
  checked and held out;
- **one run or one evaluation** (an instance, made once the model is loaded, from the template and the
  model's config): pre-processing, collator, metrics, training arguments, the model's own settings,
  the card's analysis and baselines;
- **serving a trained model** (``predict``): which saved models it serves, how it loads and runs them,
  and the card's usage snippet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..config import RunConfig

if TYPE_CHECKING:
    import datasets

    from ..templates import TaskTemplate


def logits_of(predictions: Any) -> Any:
    """The logits of a Trainer prediction (some models return a tuple: logits first)."""
    return predictions[0] if isinstance(predictions, tuple) else predictions


def is_pair_input(value: Any) -> bool:
    """A prediction input that is a text pair: (text, text_pair)."""
    return isinstance(value, (tuple, list)) and len(value) == 2


def input_fields(value: Any) -> dict[str, Any]:
    """A prediction's input as its row shows it: ``input``, and ``input_pair`` for a text pair's second text."""
    if is_pair_input(value):
        return {"input": value[0], "input_pair": value[1]}
    return {"input": value}


NEARLY_ALL = 0.95   # one output for this share of the test examples, or more, is (nearly) one output for all


def most_common_output(outputs: list, truth: list) -> tuple[Any, float] | None:
    """The output a model gave (nearly) every test example, and its share, when it did while the truth varies
    more (one output on a test split of one class is no sign)."""
    from collections import Counter

    if not outputs:
        return None
    value, count = Counter(outputs).most_common(1)[0]
    share = count / len(outputs)
    truth_share = Counter(truth).most_common(1)[0][1] / len(truth) if truth else 1.0
    return (value, share) if share >= NEARLY_ALL and share > truth_share else None


class TaskKind:
    name: str = ""
    roles: tuple[str, ...] = ()          # column roles of the data, e.g. ("text", "label")
    target_role: str = ""                # the role the model learns to predict
    options: tuple[str, ...] = ()        # the per-kind RunConfig options it reads (config.py: per_kind)
    classification: bool = False         # a `label` role with a ClassLabel and id2label
    input_role: str = "text"             # what a model of this kind takes as input (predict, the card)
    text_pairs: bool = False             # reads a text pair per example (a second text column: text_pair)
    tokenizes: bool = True               # inputs are tokenized once and cached (not images)
    streams: bool = False                # trains on a stream (--streaming): one label per text, tokenized on the fly
    length_buckets: bool = False         # batches may be padded to fixed widths (batching.py)
    bf16_on_cpu: bool = True             # bf16 autocast keeps this kind's results on CPUs with bf16 instructions
    evaluate_before_training: bool = False   # also report the base model's metrics (zero-shot)
    card_hyperparameters: tuple[str, ...] = ()   # options beyond the shared ones that shaped a run (card table)
    task_words: str = ""                 # how the card names the task, when not its pipeline tag
    # why a run of this kind learns nothing, most often (the learned-nothing warning, learning_check.py)
    learned_nothing_cause: str = ("too little training to move the model off its starting point: too few optimizer "
                                  "steps (epochs x examples / batch size), or a learning rate too low for them")
    predict_classes = ("AutoTokenizer", "AutoModelForSequenceClassification")   # what `predict` loads
    # --linear-probe: fit_head(train_x, train_y, validation_x, validation_y, outputs) -> (weight, bias, record)
    # fits the output layer on frozen features (linear_probe.py); None where the kind has no such layer
    fit_head: Any = None

    def __init__(self, template: "TaskTemplate | None" = None, model_config: Any = None,
                 prefix: str | None = None):
        """``prefix``: the input prefix when there is no template to take it from (a pushed run's record)."""
        self.template = template
        self.model_config = model_config
        if prefix is None and template is not None:
            prefix = template.input_prefix(getattr(model_config, "model_type", None))
        self.prefix = prefix or ""
        self.choices: list[str] = []   # what preprocess chose from the data, and why: said and put in the card

    # -- preparing data (before any model is loaded) ------------------------------------------------------
    @classmethod
    def read_columns(cls, raw: "datasets.DatasetDict", config: RunConfig) -> tuple[Any, dict[str, str]]:
        """The raw splits as the roles read them, and any role -> column the options declare."""
        return raw, {}

    @classmethod
    def encode_targets(cls, splits: "datasets.DatasetDict", column: str, names: list[str] | None, strict: bool,
                       config: RunConfig) -> tuple[Any, list[str]]:
        """The target column as the model's targets, named by the target role, and the label names (none for
        kinds without labels). The default keeps the values (a summary's text)."""
        return (splits.rename_column(column, cls.target_role) if column != cls.target_role else splits), []

    @classmethod
    def named_labels(cls, config: RunConfig) -> list[str] | None:
        """The label names the options give (their order is the label ids'), if any."""
        return config.label_names

    @classmethod
    def check_targets(cls, splits: "datasets.DatasetDict", labels: list[str], column: str) -> None:
        """Refuse training data this kind can't learn from (a single class), before any model is loaded."""

    @classmethod
    def hold_out(cls, train: "datasets.Dataset", fraction: float, seed: int) -> tuple[Any, Any, str]:
        """(rest, held out, origin): a split missing from the data, taken out of train; its origin, for the
        output and the card, with the fields {share}, {source} and {seed}."""
        parts = train.train_test_split(test_size=fraction, seed=seed)
        return parts["train"], parts["test"], "random {share} hold-out of {source}, seed {seed}"

    @classmethod
    def label_counts(cls, split: "datasets.Dataset", labels: list[str]) -> dict[str, int]:
        """Examples per label in a split, for the card."""
        return {}

    @classmethod
    def model_labels(cls, labels: list[str]) -> list[str] | None:
        """The labels the model's head is sized and named for (None: the head stays as the base model has it)."""
        return labels if cls.classification else None

    # -- one run or one evaluation ------------------------------------------------------------------------
    def preprocess(self, data: Any, processor: Any, config: RunConfig) -> tuple["datasets.DatasetDict", bool]:
        """Turn prepared splits into model inputs; return them and whether they came from the cache."""
        raise NotImplementedError

    def tokenize_stream(self, stream: Any, processor: Any, config: RunConfig) -> Any:
        """The training stream's model inputs, tokenized as batches are drawn (``streams`` kinds)."""
        raise NotImplementedError

    def collator(self, processor: Any, model: Any) -> Any:
        return self.template.collator.resolve()(processor, **self.template.collator.args)

    def compute_metrics(self, suite: Any, processor: Any, config: RunConfig) -> Callable:
        """The Trainer's compute_metrics: the suite's metrics of an evaluation's predictions."""
        raise NotImplementedError

    def training_arguments(self, config: RunConfig) -> dict[str, Any]:
        """Extra TrainingArguments this kind needs."""
        return {}

    def prepare_model(self, model: Any, config: RunConfig) -> None:
        """Adjust the loaded model (e.g. its generation config) before training."""
        if self.classification:
            # One label per example: the model's loss is a batch mean that ignores `num_items_in_batch`
            # although its forward takes **kwargs. Without this the Trainer multiplies that mean by the
            # number of processes (eval and train losses reported 2x under 2-process DDP, gradients 2x
            # before clipping) and skips the division by gradient_accumulation_steps.
            model.accepts_loss_kwargs = False

    def use_trained(self, model: Any) -> None:
        """Scoring a trained model (`evaluate`): take what training saved with it (a threshold, a target's
        scaling, a summary length) instead of deciding it from the data."""

    def after_validation(self, model: Any, validation: dict[str, float], predict_validation: Callable[[], Any]
                         ) -> None:
        """Fix what the kept checkpoint's validation metrics decided (a tuned threshold) before the test split
        is scored, and save it in the model's config. ``predict_validation()``: the kept model's prediction
        output on the validation split, for a kind that decides more than its metrics carry (a pass over it)."""

    def data_stats(self, train: Any) -> dict[str, Any]:
        """What else the card says about the tokenized training split (a target length)."""
        return {}

    def real_tokens(self, split: Any) -> int | None:
        """Non-pad input tokens in a split (for tokens/s figures)."""
        if "input_ids" in split.column_names:
            return sum(len(ids) for ids in split["input_ids"])
        return None

    def baseline(self, train: "datasets.Dataset", test: "datasets.Dataset", labels: list[str] | None,
                 config: RunConfig) -> dict | None:
        """A trivial predictor's metrics on the test split, for the card: {"name": str, "metrics": {...}}.

        It may add ``"also": [{"name", "metrics"}, ...]``: cheap classical models (TF-IDF, pixels) that
        say more than the trivial one. None: this kind has no baseline."""
        return None

    def time_levers(self, config: RunConfig, train: Any, processor: Any) -> list[tuple[str, float]]:
        """This kind's flags that make a run cheaper, mildest first, each with the share of the time a step would
        take with it (the time estimate names them when a run is long): a shorter --max-length, from the
        training texts' token lengths (it saves only where texts are cut at the current one)."""
        import numpy as np

        if "input_ids" not in train.column_names:
            return []
        lengths = np.array([len(ids) for ids in train["input_ids"]])
        now = max(int(np.minimum(lengths, config.max_length).sum()), 1)
        levers, length = [], config.max_length // 2
        while length >= 32:
            levers.append((f"--max-length {length}", float(np.minimum(lengths, length).sum()) / now))
            length //= 2
        return levers

    def test_outputs(self, predictions: Any, label_ids: Any, labels: list[str], processor: Any
                     ) -> tuple[list, list] | None:
        """The test predictions and the true targets as comparable values, as the output names them (a label, a
        label set, a summary), for ``one_output``; None: this kind compares no such values."""
        return None

    def one_output(self, predictions: Any, label_ids: Any, labels: list[str], processor: Any) -> str | None:
        """What the model answered for (nearly) every test example, when it did ("`positive` to 100% of the 12
        test examples"): the sign of a run that learned nothing, whatever its metrics."""
        pair = self.test_outputs(predictions, label_ids, labels, processor)
        found = most_common_output(*pair) if pair else None
        if found is None:
            return None
        value, share = found
        return f"{value} to {share:.0%} of the {len(pair[0])} test examples"

    # -- the card -----------------------------------------------------------------------------------------
    def example(self, split: Any) -> str | None:
        return str(split[0][self.input_role])[:200] if len(split) else None

    def save_example(self, split: Any, path: Any) -> None:
        """Save an example input beside the model when the card's snippet needs a file (images)."""

    def describe(self, split: Any, index: int) -> str:
        """One example input of ``split``, as the card shows it."""
        return " ".join(str(split[index][self.input_role]).split())[:200]

    def analyse(self, split: Any, predictions: Any, label_ids: Any, labels: list[str]) -> dict[str, Any] | None:
        """For the card: what the test predictions say beyond the metrics (a confusion matrix, per-label scores,
        the largest errors, notes); None: nothing."""
        return None

    @classmethod
    def usage(cls, model_ref: str, example: str | None, prefix: str = "") -> str:
        """The card's code snippet that loads the model and runs it on an example."""
        raise NotImplementedError

    # -- serving a trained model (hf-finetune predict) ----------------------------------------------------
    @classmethod
    def serves(cls, model_config: dict) -> bool:
        """Whether a saved model with this config.json, and no run record, is of this kind."""
        return False

    @classmethod
    def load_trained(cls, folder: str, trust_remote_code: bool) -> tuple[Any, Any]:
        """(processor, model) of a saved model, through the Auto classes of ``predict_classes``."""
        import transformers

        from ..modeling import from_pretrained

        processor_class, model_class = (getattr(transformers, name) for name in cls.predict_classes)
        return (from_pretrained("processor", processor_class, folder, trust_remote_code),
                from_pretrained("model", model_class, folder, trust_remote_code))

    def encode_inputs(self, processor: Any, inputs: list[str], max_length: int) -> Any:
        """A batch of inputs as model tensors."""
        from ..data.tokenized import bounded

        return processor(bounded([self.prefix + t for t in inputs], max_length), return_tensors="pt",
                         padding=True, truncation=True, max_length=max_length)

    def predict_batch(self, processor: Any, model: Any, inputs: list[str], max_length: int) -> list[dict[str, Any]]:
        """One prediction per input (model on its device, in eval mode)."""
        import torch

        encoded = self.encode_inputs(processor, inputs, max_length).to(model.device)
        with torch.inference_mode():
            logits = model(**encoded).logits.float().cpu()
        return self.predictions(inputs, logits)

    def predictions(self, inputs: list[str], logits: Any) -> list[dict[str, Any]]:
        """The batch's predictions from its logits (one row per input)."""
        raise NotImplementedError


class SingleLabelClassification(TaskKind):
    """One label per example, whatever the input (text, image): labels as one ClassLabel, hold-outs
    stratified by label, a softmax over the labels when predicting."""

    target_role = "label"
    classification = True
    card_hyperparameters: tuple[str, ...] = ("linear_probe",)

    @classmethod
    def encode_targets(cls, splits: Any, column: str, names: list[str] | None, strict: bool,
                       config: RunConfig) -> tuple[Any, list[str]]:
        from ..data.labels import encode_labels

        # a stream's first rows need not hold every label named
        return encode_labels(splits, column, names, strict, all_occur=not config.streaming)

    @classmethod
    def check_targets(cls, splits: Any, labels: list[str], column: str) -> None:
        from ..errors import DataError

        present = set(splits["train"]["label"])
        if len(present) < 2:
            only = labels[present.pop()] if present else "none"
            raise DataError(f"The training data holds a single class ({only!r}); a classifier needs at least two.",
                            f"Check the label column {column!r}, or the split/sample options.")

    @classmethod
    def hold_out(cls, train: Any, fraction: float, seed: int) -> tuple[Any, Any, str]:
        """Stratified by label, when every class has enough rows for it."""
        import logging

        try:
            parts = train.train_test_split(test_size=fraction, seed=seed, stratify_by_column="label")
        except ValueError:
            logging.getLogger("hf_finetune").warning("Some class has too few rows for a stratified split; "
                                                     "splitting at random.")
            return super().hold_out(train, fraction, seed)
        return parts["train"], parts["test"], "stratified {share} hold-out of {source}, seed {seed}"

    def compute_metrics(self, suite: Any, processor: Any, config: RunConfig) -> Callable:
        """The metrics of the most probable label (the argmax over the logits)."""
        import numpy as np

        def compute(eval_pred) -> dict[str, float]:
            return suite.compute(np.argmax(logits_of(eval_pred.predictions), axis=-1), eval_pred.label_ids)

        return compute

    def analyse(self, split: Any, predictions: Any, label_ids: Any, labels: list[str]) -> dict[str, Any] | None:
        """For the card: the confusion matrix, per-label precision / recall / F1 and a few errors of the test
        split."""
        if not labels:
            return None
        import numpy as np
        from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

        predicted, truth = np.argmax(logits_of(predictions), axis=-1), np.asarray(label_ids)
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

    def fit_head(self, train_x: Any, train_y: Any, validation_x: Any, validation_y: Any, outputs: int
                 ) -> tuple[Any, Any, dict[str, Any]]:
        """--linear-probe: a multinomial logistic regression, its strength picked on validation accuracy."""
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        from .. import linear_probe

        train_y, validation_y = train_y.astype(int), validation_y.astype(int)
        candidates = {c: LogisticRegression(C=c, max_iter=500).fit(train_x, train_y) for c in linear_probe.STRENGTHS}
        strength, model, accuracy = linear_probe.pick(
            candidates, lambda m: float((m.predict(validation_x) == validation_y).mean()))
        coef, intercept = model.coef_, model.intercept_
        if len(model.classes_) == 2:   # scikit-learn keeps one row for two classes: logit(1) - logit(0)
            coef, intercept = np.vstack([-coef[0] / 2, coef[0] / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
        weight, bias = np.zeros((outputs, train_x.shape[1])), np.full(outputs, -10.0)   # unseen classes: never
        weight[model.classes_], bias[model.classes_] = coef, intercept
        return weight, bias, {"head": "logistic regression", "C": strength, "validation_accuracy": round(accuracy, 4)}

    def test_outputs(self, predictions: Any, label_ids: Any, labels: list[str], processor: Any
                     ) -> tuple[list, list] | None:
        """The predicted and the true label of each test example."""
        import numpy as np

        if not labels:
            return None
        name = (lambda i: f"`{labels[int(i)]}`")
        return ([name(i) for i in np.argmax(logits_of(predictions), axis=-1)],
                [name(i) for i in np.asarray(label_ids)])

    @classmethod
    def label_counts(cls, split: Any, labels: list[str]) -> dict[str, int]:
        from collections import Counter

        counts = Counter(split["label"])
        return {name: counts.get(i, 0) for i, name in enumerate(labels)}

    def predictions(self, inputs: list[str], logits: Any) -> list[dict[str, Any]]:
        """The most probable label of each input, and every label's probability (a softmax over the labels)."""
        id2label = self.model_config.id2label
        probabilities = logits.softmax(-1)
        results = []
        for value, row in zip(inputs, probabilities):
            best = int(row.argmax())
            results.append({**input_fields(value), "label": id2label[best], "score": round(float(row[best]), 6),
                            "scores": {id2label[i]: round(float(p), 6) for i, p in enumerate(row)}})
        return results
