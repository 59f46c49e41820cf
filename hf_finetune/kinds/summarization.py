"""Summarization: a seq2seq model writes a summary of a text.

What a seq2seq task really needs beyond the shared engine: targets tokenized as labels, a
generation length derived from the data (the model's default max_length=20 cuts every summary
short), predictions generated during evaluation, and -100 label padding decoded safely.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from ..data import tokenized
from ..config import RunConfig
from . import baselines
from .base import TaskKind, logits_of

log = logging.getLogger("hf_finetune")
IGNORE_INDEX = -100


def target_length(tokenizer: Any, summaries: list[str], percentile: float = 95, cap: int = 256) -> int:
    """Tokens that cover ``percentile`` % of the reference summaries, rounded up to a multiple of 8."""
    sample = tokenized.bounded(summaries[:2000], cap)
    lengths = [len(ids) for ids in tokenizer(text_target=sample)["input_ids"]] if sample else [32]
    value = int(np.ceil(np.percentile(lengths, percentile)))
    return int(min(cap, max(8, -(-value // 8) * 8)))


def decode(tokenizer: Any, ids: np.ndarray) -> list[str]:
    """Decode generated ids or labels; -100 (ignored label padding) becomes the pad token first."""
    ids = np.asarray(ids)
    if ids.ndim == 3:  # logits rather than ids
        ids = ids.argmax(-1)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = np.where((ids < 0) | (ids >= len(tokenizer)), pad, ids)
    return [text.strip() for text in tokenizer.batch_decode(ids, skip_special_tokens=True)]


def end_tokens(model_config: Any, tokenizer: Any) -> set[int]:
    """The ids that end a generated summary: the model's eos (BERT's [SEP] in a bert2bert), else the tokenizer's."""
    eos = getattr(model_config, "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    return set(eos if isinstance(eos, list) else [] if eos is None else [eos])


class Summarization(TaskKind):
    name = "summarization"
    roles = ("text", "summary")
    target_role = "summary"
    options = ("text_column", "summary_column", "max_target_length", "generation_num_beams", "max_zero_shot_samples")
    evaluate_before_training = True   # zero-shot ROUGE on the same split, for the card
    predict_classes = ("AutoTokenizer", "AutoModelForSeq2SeqLM")
    learned_nothing_cause = ("too few optimizer steps or training pairs: the model has learned the summaries' common "
                             "words and form, not yet to follow each text, so it writes one generic summary")

    def __init__(self, template: Any = None, model_config: Any = None, prefix: str | None = None):
        super().__init__(template, model_config, prefix)
        self.max_target_length: int | None = None
        self.trained_target_length: int | None = None   # what a trained model generates (evaluate)

    # -- one run ------------------------------------------------------------------------------------------
    def preprocess(self, data: Any, processor: Any, config: RunConfig) -> tuple[Any, bool]:
        from datasets import DatasetDict

        tokenizer = processor
        self.max_target_length = (config.max_target_length or self.trained_target_length
                                  or target_length(tokenizer, data.splits["train"]["summary"]))
        limit = getattr(tokenizer, "model_max_length", None) or config.max_length
        max_source = min(config.max_length, limit)
        max_target = self.max_target_length
        prefix = self.prefix

        # The model builds decoder inputs by shifting labels right behind decoder_start_token_id; a
        # tokenizer that also starts each target with that token (BERT's [CLS] in a bert2bert) would
        # teach the model to emit it forever, so it is dropped from the labels.
        start = getattr(self.model_config, "decoder_start_token_id", None)

        def tokenize(batch: dict[str, list]) -> dict[str, list]:
            enc = tokenizer(tokenized.bounded([prefix + t for t in batch["text"]], max_source), truncation=True,
                            max_length=max_source)
            labels = tokenizer(text_target=tokenized.bounded(batch["summary"], max_target), truncation=True,
                               max_length=max_target)["input_ids"]
            enc["labels"] = [ids[1:] if start is not None and ids and ids[0] == start else ids for ids in labels]
            return dict(enc)

        out, all_cached = DatasetDict(), True
        key = [self.name, tokenized.processor_identity(tokenizer), max_source, max_target, prefix, start,
               tokenized.CHARS_PER_TOKEN, "v3"]
        for split, ds in data.splits.items():
            out[split], cached = tokenized.map_cached(ds, tokenize, [data.fingerprints[split], *key], split,
                                                      f"Tokenizing {split}")
            all_cached &= cached
        return out, all_cached

    def prepare_model(self, model: Any, config: RunConfig) -> None:
        """Generation settings saved with the model, so `generate()` after loading writes whole summaries."""
        generation = model.generation_config
        # For an encoder-decoder, max_length counts decoder tokens: the summary plus the start token.
        generation.max_new_tokens = None
        generation.max_length = self.max_target_length + 1
        generation.num_beams = config.generation_num_beams
        if getattr(generation, "min_length", 0):
            generation.min_length = 0

    def use_trained(self, model: Any) -> None:
        """Summaries as long as the trained model writes them (its saved generation length)."""
        self.trained_target_length = max(8, (model.generation_config.max_length or 65) - 1)

    def collator(self, processor: Any, model: Any) -> Any:
        args = {"label_pad_token_id": IGNORE_INDEX, **self.template.collator.args}
        return self.template.collator.resolve()(processor, model=model, **args)

    def training_arguments(self, config: RunConfig) -> dict[str, Any]:
        from transformers import Seq2SeqTrainingArguments

        return {"args_class": Seq2SeqTrainingArguments, "predict_with_generate": True,
                "generation_max_length": None, "generation_num_beams": config.generation_num_beams}

    def compute_metrics(self, suite: Any, processor: Any, config: RunConfig) -> Callable:
        ends = end_tokens(self.model_config, processor)

        def compute(eval_pred) -> dict[str, float]:
            predictions = logits_of(eval_pred.predictions)
            generated = decode(processor, predictions)
            references = decode(processor, eval_pred.label_ids)
            results = suite.compute(generated, references)
            pad = processor.pad_token_id
            lengths = [int(np.count_nonzero((np.asarray(p) != pad) & (np.asarray(p) >= 0))) for p in predictions]
            results["gen_len"] = float(np.mean(lengths)) if lengths else 0.0
            # a model that has not learned to end a summary writes up to the length cap every time
            ended = [bool(ends & set(np.asarray(p).tolist())) for p in predictions]
            results["stopped_before_cap"] = float(np.mean(ended)) if ended else 0.0
            return results

        return compute

    def test_outputs(self, predictions: Any, label_ids: Any, labels: list[str], processor: Any
                     ) -> tuple[list, list] | None:
        """The generated and the reference summary of each test example, by their first 120 characters (two
        summaries that start alike for that long are one summary here)."""
        def quoted(texts: list[str]) -> list[str]:
            return [f'the summary "{text[:120]}' + ('..."' if len(text) > 120 else '"') for text in texts]

        return quoted(decode(processor, logits_of(predictions))), quoted(decode(processor, label_ids))

    def data_stats(self, train: Any) -> dict[str, Any]:
        return {"mean_target_tokens": float(np.mean([len(ids) for ids in train["labels"]])),
                "max_target_length": self.max_target_length}

    LEAD_SENTENCES = 3

    def baseline(self, train: Any, test: Any, labels: list[str] | None, config: RunConfig) -> dict | None:
        """Lead-3: the text's first three sentences, scored with ROUGE as the model is. It reads each text as
        far as tokenization does (a 50 MB line with no sentence end would be its own gigabyte-sized lead)."""
        return baselines.lead_k(tokenized.bounded(test["text"], config.max_length), test["summary"],
                                self.LEAD_SENTENCES)

    # -- serving ------------------------------------------------------------------------------------------
    @classmethod
    def serves(cls, model_config: dict) -> bool:
        architectures = " ".join(model_config.get("architectures") or [])
        return "ForConditionalGeneration" in architectures or "ForSeq2SeqLM" in architectures

    @classmethod
    def usage(cls, model_ref: str, example: str | None, prefix: str = "") -> str:
        text = " ".join((example or "The text to summarize.").split())[:300]
        return (
            "from transformers import AutoModelForSeq2SeqLM, AutoTokenizer\n\n"
            f"tokenizer = AutoTokenizer.from_pretrained({model_ref!r})\n"
            f"model = AutoModelForSeq2SeqLM.from_pretrained({model_ref!r})\n"
            f"inputs = tokenizer({(prefix + text)!r}, return_tensors=\"pt\", truncation=True)\n"
            "# summary length and beams come from the saved generation_config\n"
            "summary_ids = model.generate(input_ids=inputs[\"input_ids\"], attention_mask=inputs[\"attention_mask\"])\n"
            "print(tokenizer.decode(summary_ids[0], skip_special_tokens=True))"
        )

    def predict_batch(self, processor: Any, model: Any, inputs: list[str], max_length: int) -> list[dict[str, Any]]:
        import torch

        enc = processor([self.prefix + t for t in inputs], return_tensors="pt", padding=True, truncation=True,
                        max_length=max_length).to(model.device)
        with torch.inference_mode():   # only what every encoder-decoder's generate() takes
            ids = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        return [{"input": text, "summary": summary.strip()}
                for text, summary in zip(inputs, processor.batch_decode(ids, skip_special_tokens=True))]
