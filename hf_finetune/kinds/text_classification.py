"""Text classification: one label per text (sentiment, topic, intent)."""

from __future__ import annotations

from typing import Any

from datasets import DatasetDict

from .. import data as data_mod
from . import baselines
from ..config import RunConfig
from ..templates import TaskTemplate
from .base import TaskKind


class TextClassification(TaskKind):
    name = "text-classification"
    roles = ("text", "label")
    classification = True
    length_buckets = True
    target_role = "label"   # the column that becomes the model's `labels`

    def targets(self, values: list) -> list:
        """The model's `labels` from the target column's values (as they are, for class ids)."""
        return values

    def preprocess(self, data: Any, processor: Any, config: RunConfig,
                   template: TaskTemplate) -> tuple[DatasetDict, bool]:
        tokenizer = processor
        limit = getattr(tokenizer, "model_max_length", None) or config.max_length
        max_length = min(config.max_length, limit)
        prefix = self.prefix

        def tokenize(batch: dict[str, list]) -> dict[str, list]:
            texts = data_mod.bounded([prefix + t for t in batch["text"]], max_length)
            enc = tokenizer(texts, truncation=True, max_length=max_length)
            enc["labels"] = self.targets(batch[self.target_role])
            return dict(enc)

        out, all_cached = DatasetDict(), True
        key = [self.name, data_mod.processor_identity(tokenizer), max_length, prefix, data_mod.CHARS_PER_TOKEN, "v2",
               *self.cache_key()]
        for split, ds in data.splits.items():
            out[split], cached = data_mod.map_cached(ds, tokenize, [data.fingerprints[split], *key], split,
                                                     f"Tokenizing {split}")
            all_cached &= cached
        return out, all_cached

    # TF-IDF + logistic regression fits in seconds up to this many training texts
    TFIDF_MAX_TRAIN = 200_000

    def baseline(self, train: Any, test: Any, labels: list[str] | None, config: RunConfig) -> dict | None:
        """The majority class; also TF-IDF + logistic regression, where the training set is small enough."""
        result = baselines.majority_class(train["label"], test["label"], labels or [])
        if len(train) <= self.TFIDF_MAX_TRAIN:
            result["also"] = [baselines.tfidf_logistic_regression(train["text"], train["label"], test["text"],
                                                                  test["label"], config.seed)]
        return result

    def cache_key(self) -> list:
        """What else decides the tokenized `labels` (a regression target's scaling)."""
        return []

    def usage(self, model_ref: str, example: str | None, prefix: str = "") -> str:
        text = " ".join((example or "I love this!").split())
        return (
            "from transformers import pipeline\n\n"
            f'classifier = pipeline("text-classification", model={model_ref!r})\n'
            f"print(classifier({text!r}))"
        )
