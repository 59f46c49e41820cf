"""Summarization: generation length, -100 decoding, ROUGE-Lsum, and the seq2seq run path."""

from __future__ import annotations


import numpy as np
import pytest

from hf_finetune import finetune, metrics
from hf_finetune.kinds.summarization import decode, target_length

from conftest import read_json

TOPICS = ["the council approved a new park", "a storm closed the coastal road", "the team won the final",
          "prices of bread rose again", "the library opens on sundays now"]   # as in conftest.summaries_jsonl


def _tokenizer(tiny_seq2seq):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_seq2seq)


def test_decoding_handles_label_padding(tiny_seq2seq):
    tokenizer = _tokenizer(tiny_seq2seq)
    ids = tokenizer(text_target=["the cat sat", "a much longer reference summary here"], padding=True)["input_ids"]
    labels = np.array(ids)
    labels[labels == tokenizer.pad_token_id] = -100   # what DataCollatorForSeq2Seq does
    assert (labels == -100).any()
    assert decode(tokenizer, labels) == ["the cat sat", "a much longer reference summary here"]


def test_target_length_comes_from_the_data_not_the_default_20(tiny_seq2seq):
    tokenizer = _tokenizer(tiny_seq2seq)
    summaries = [" ".join(["word"] * n) for n in range(30, 60)]
    length = target_length(tokenizer, summaries)
    assert length > 20 and length % 8 == 0
    assert length >= int(np.percentile([n + 2 for n in range(30, 60)], 95))


def test_stopped_before_cap_counts_the_summaries_that_ended(tiny_seq2seq):
    """The figure that tells a model that learned to end a summary from one that runs to the length cap."""
    from types import SimpleNamespace

    from transformers import EvalPrediction

    from hf_finetune.config import RunConfig
    from hf_finetune.kinds.summarization import Summarization

    tokenizer = _tokenizer(tiny_seq2seq)
    kind = Summarization(model_config=SimpleNamespace(eos_token_id=7))
    pad = tokenizer.pad_token_id
    words = [i for i in range(10, 40) if i not in (7, pad)]
    generated = np.array([[0, *words[:3], 7, pad, pad], [0, *words[3:9]], [0, *words[9:12], 7, pad, pad],
                          [0, *words[12:18]]])
    compute = kind.compute_metrics(metrics.MetricSuite([("rouge", {})]), tokenizer, RunConfig())
    result = compute(EvalPrediction(predictions=generated, label_ids=generated))
    assert result["stopped_before_cap"] == 0.5 and result["rougeLsum"] == pytest.approx(1.0)


def test_rouge_lsum_splits_sentences_without_nltk():
    rouge = metrics.load("rouge")
    prediction = "The cat sat on the mat. It was happy."
    reference = "It was happy. The cat sat on the mat."
    scores = rouge.compute(predictions=[prediction], references=[reference])
    assert scores["rougeLsum"] == pytest.approx(1.0)      # same sentences, other order
    assert scores["rougeL"] < 1.0                          # the plain LCS sees the reordering
    assert scores["rouge1"] == pytest.approx(1.0)
    none = rouge.compute(predictions=["completely different words"], references=[reference])
    assert none["rouge2"] == 0.0


def test_seq2seq_run_reports_zero_shot_and_after(tiny_seq2seq, summaries_jsonl, tmp_path):
    result = finetune("summarization", model=str(tiny_seq2seq), dataset=str(summaries_jsonl),
                      output_dir=str(tmp_path / "out"), num_train_epochs=1, max_length=64, learning_rate=1e-3,
                      per_device_train_batch_size=8, logging_steps=2)
    out = result.output_dir
    m = read_json(out / "metrics.json")
    for split in ("test", "zero_shot_test", "validation"):
        assert {"rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len", "stopped_before_cap"} <= set(m[split]), split
    from transformers import GenerationConfig

    generation = GenerationConfig.from_pretrained(out)
    # the data decides the summary length (the summary plus the decoder's start token), not the default 20
    info = read_json(out / "run_info.json")
    assert generation.max_length == info["stats"]["max_target_length"] + 1 and generation.max_new_tokens is None
    assert info["stats"]["max_target_length"] == target_length(_tokenizer(tiny_seq2seq),
                                                               [f"{t.capitalize()}." for t in TOPICS])
    from huggingface_hub import ModelCard

    card = ModelCard.load(out / "README.md")
    assert card.data.metrics == ["rouge"]                    # the evaluate metric id
    assert "| test, base model before fine-tuning (zero-shot) |" in card.text
    lead = info["baseline"]        # lead-3 holds the whole short report, so it shares the topic's words
    assert lead["name"].startswith("lead-3") and lead["metrics"]["rouge1"] > m["zero_shot_test"]["rouge1"] + 0.1
    assert "| test, baseline: lead-3 (the text's first 3 sentences) |" in card.text
    assert "model.generate" in card.text and "pipeline(" not in card.text
    import re
    import subprocess
    import sys

    snippet = re.search(r"```python\n(.*?)```", card.text, re.S).group(1)
    ran = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr            # the usage snippet runs as written


@pytest.mark.slow
def test_searched_run_is_its_best_trial_despite_the_zero_shot_step(tiny_seq2seq, summaries_jsonl, tmp_path):
    """A run scores the base model (generation) before training and a search trial does not: that step must
    not move the random streams, or the best trial, trained again, lands elsewhere."""
    out = tmp_path / "out"
    finetune("summarization", model=str(tiny_seq2seq), dataset=str(summaries_jsonl), output_dir=str(out),
             hp_search=2, max_length=64, per_device_train_batch_size=8, max_steps=6, eval_strategy="steps",
             eval_steps=3)
    search = read_json(out / "run_info.json")["hp_search"]
    best = search["trials"][search["best_trial"]]
    validation = read_json(out / "metrics.json")["validation"]
    assert validation["loss"] == pytest.approx(best["validation_loss"], abs=1e-6)
    assert "zero_shot_test" in read_json(out / "metrics.json")           # the step was there
