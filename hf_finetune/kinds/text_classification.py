"""Text classification: one label per text (sentiment, topic, intent), or per text pair (NLI, paraphrase).

A text pair (``--text-column sentence1,sentence2``) is tokenized as one input, ``tokenizer(text, text_pair)``:
the model sees both texts, separated and marked as its pre-training did (``[SEP]``, ``token_type_ids``), and
truncation shortens the longer text first. Everything else (length buckets, the token statistics) reads the
joined ``input_ids`` as it reads one text's.
"""

from __future__ import annotations

from typing import Any

from ..config import RunConfig
from ..data import PAIR_ROLE, tokenized
from . import baselines
from .base import SingleLabelClassification, is_pair_input

PAIR_SHOWN = " ‖ "   # between the two texts of a pair where the card shows one line (its test errors)
PAIR_NOTE = "# a text pair: the pipeline tokenizes both texts together, as training did\n"


class TextClassification(SingleLabelClassification):
    name = "text-classification"
    roles = ("text", "label")
    options = ("text_column", "label_column", "label_names", "length_buckets", "linear_probe")
    length_buckets = True
    text_pairs = True
    streams = True
    problem_types: tuple = (None, "single_label_classification")   # of the saved model's config (transformers)

    # -- one run ------------------------------------------------------------------------------------------
    def targets(self, values: list) -> list:
        """The model's `labels` from the target column's values (as they are, for class ids)."""
        return values

    def cache_key(self) -> list:
        """What else decides the tokenized `labels` (a regression target's scaling)."""
        return []

    def _tokenizer(self, tokenizer: Any, config: RunConfig) -> tuple[Any, int]:
        """The batch tokenization of this kind's rows, and the length it truncates to."""
        limit = getattr(tokenizer, "model_max_length", None) or config.max_length
        max_length = min(config.max_length, limit)
        prefix = self.prefix

        def tokenize(batch: dict[str, list]) -> dict[str, list]:
            texts = tokenized.bounded([prefix + t for t in batch["text"]], max_length)
            pairs = tokenized.bounded(batch[PAIR_ROLE], max_length) if PAIR_ROLE in batch else None
            enc = tokenizer(texts, pairs, truncation=True, max_length=max_length)   # longest text cut first
            enc["labels"] = self.targets(batch[self.target_role])
            return dict(enc)

        return tokenize, max_length

    def tokenize_stream(self, stream: Any, processor: Any, config: RunConfig) -> Any:
        tokenize, _ = self._tokenizer(processor, config)
        return stream.map(tokenize, batched=True, remove_columns=[c for c in ("text", PAIR_ROLE, self.target_role)
                                                                  if c in stream.column_names])

    def preprocess(self, data: Any, processor: Any, config: RunConfig) -> tuple[Any, bool]:
        from datasets import DatasetDict

        tokenizer = processor
        tokenize, max_length = self._tokenizer(tokenizer, config)
        prefix = self.prefix
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
            train_texts, test_texts = (self.baseline_texts(split, config) for split in (train, test))
            fitted = baselines.tfidf_logistic_regression(train_texts, train["label"], test_texts, test["label"],
                                                         config.seed)
            if PAIR_ROLE in train.column_names:
                fitted["name"] += ", on the two texts of each pair joined"
            result["also"] = [fitted]
        return result

    @staticmethod
    def baseline_texts(split: Any, config: RunConfig) -> list[str]:
        """Each example's text for the classical baselines, cut as tokenization cuts it; a pair's two texts
        joined (a bag of words of both: the baseline sees what the model sees)."""
        texts = tokenized.bounded(split["text"], config.max_length)
        if PAIR_ROLE not in split.column_names:
            return texts
        return [f"{a}\n{b}" for a, b in zip(texts, tokenized.bounded(split[PAIR_ROLE], config.max_length))]

    # -- the card -----------------------------------------------------------------------------------------
    def example(self, split: Any) -> str | dict[str, str] | None:
        """A pair's example as the pipeline takes one: {"text": ..., "text_pair": ...}."""
        if not len(split) or PAIR_ROLE not in split.column_names:
            return super().example(split)
        return {"text": str(split[0]["text"])[:200], PAIR_ROLE: str(split[0][PAIR_ROLE])[:200]}

    def describe(self, split: Any, index: int) -> str:
        text = super().describe(split, index)
        if PAIR_ROLE not in split.column_names:
            return text
        return text + PAIR_SHOWN + " ".join(str(split[index][PAIR_ROLE]).split())[:200]

    # -- serving ------------------------------------------------------------------------------------------
    @classmethod
    def serves(cls, model_config: dict) -> bool:
        return ("ForSequenceClassification" in " ".join(model_config.get("architectures") or [])
                and model_config.get("problem_type") in cls.problem_types)

    @classmethod
    def usage(cls, model_ref: str, example: str | dict[str, str] | None, prefix: str = "") -> str:
        return (
            "from transformers import pipeline\n\n"
            f'classifier = pipeline("text-classification", model={model_ref!r})\n'
            f"{PAIR_NOTE if isinstance(example, dict) else ''}print(classifier({usage_input(example)!r}))"
        )

    def encode_inputs(self, processor: Any, inputs: list[Any], max_length: int) -> Any:
        """Text pairs, (text, text_pair), tokenized together as in training; single texts as every kind's."""
        if not any(is_pair_input(value) for value in inputs):
            return super().encode_inputs(processor, inputs, max_length)
        texts = tokenized.bounded([self.prefix + a for a, _ in inputs], max_length)
        pairs = tokenized.bounded([b for _, b in inputs], max_length)
        return processor(texts, pairs, return_tensors="pt", padding=True, truncation=True, max_length=max_length)


def usage_input(example: str | dict[str, str] | None) -> str | dict[str, str]:
    """The card's example input on one line each text: a text, or a pair as the pipeline takes one (a dict)."""
    if isinstance(example, dict):
        return {key: " ".join(str(value).split()) for key, value in example.items()}
    return " ".join((example or "I love this!").split())
