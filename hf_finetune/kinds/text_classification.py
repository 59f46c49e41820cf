"""Text classification: one label per text (sentiment, topic, intent)."""

from __future__ import annotations

from typing import Any

from ..config import RunConfig
from ..data import tokenized
from . import baselines
from .base import SingleLabelClassification


class TextClassification(SingleLabelClassification):
    name = "text-classification"
    roles = ("text", "label")
    options = ("text_column", "label_column", "label_names", "length_buckets", "linear_probe")
    length_buckets = True
    problem_types: tuple = (None, "single_label_classification")   # of the saved model's config (transformers)

    # -- one run ------------------------------------------------------------------------------------------
    def targets(self, values: list) -> list:
        """The model's `labels` from the target column's values (as they are, for class ids)."""
        return values

    def cache_key(self) -> list:
        """What else decides the tokenized `labels` (a regression target's scaling)."""
        return []

    def preprocess(self, data: Any, processor: Any, config: RunConfig) -> tuple[Any, bool]:
        from datasets import DatasetDict

        tokenizer = processor
        limit = getattr(tokenizer, "model_max_length", None) or config.max_length
        max_length = min(config.max_length, limit)
        prefix = self.prefix

        def tokenize(batch: dict[str, list]) -> dict[str, list]:
            texts = tokenized.bounded([prefix + t for t in batch["text"]], max_length)
            enc = tokenizer(texts, truncation=True, max_length=max_length)
            enc["labels"] = self.targets(batch[self.target_role])
            return dict(enc)

        out, all_cached = DatasetDict(), True
        key = [self.name, tokenized.processor_identity(tokenizer), max_length, prefix, tokenized.CHARS_PER_TOKEN, "v2",
               *self.cache_key()]
        for split, ds in data.splits.items():
            out[split], cached = tokenized.map_cached(ds, tokenize, [data.fingerprints[split], *key], split,
                                                      f"Tokenizing {split}")
            all_cached &= cached
        return out, all_cached

    # TF-IDF + logistic regression fits in seconds up to this many training texts
    TFIDF_MAX_TRAIN = 200_000

    def baseline(self, train: Any, test: Any, labels: list[str] | None, config: RunConfig) -> dict | None:
        """The majority class; also TF-IDF + logistic regression, where the training set is small enough. It
        reads each text as far as tokenization does (a 50 MB line would cost it gigabytes of word strings)."""
        result = baselines.majority_class(train["label"], test["label"], labels or [])
        if len(train) <= self.TFIDF_MAX_TRAIN:
            train_texts, test_texts = (tokenized.bounded(split["text"], config.max_length) for split in (train, test))
            result["also"] = [baselines.tfidf_logistic_regression(train_texts, train["label"], test_texts,
                                                                  test["label"], config.seed)]
        return result

    # -- serving ------------------------------------------------------------------------------------------
    @classmethod
    def serves(cls, model_config: dict) -> bool:
        return ("ForSequenceClassification" in " ".join(model_config.get("architectures") or [])
                and model_config.get("problem_type") in cls.problem_types)

    @classmethod
    def usage(cls, model_ref: str, example: str | None, prefix: str = "") -> str:
        text = " ".join((example or "I love this!").split())
        return (
            "from transformers import pipeline\n\n"
            f'classifier = pipeline("text-classification", model={model_ref!r})\n'
            f"print(classifier({text!r}))"
        )
