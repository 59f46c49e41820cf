"""Length buckets: few fixed shapes, least padding, batches inside one bucket, seen by the model."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from hf_finetune import batching, data as data_mod, finetune, templates


def _padding(lengths, widths) -> int:
    return sum(batching.width_for(int(n), widths) - int(n) for n in lengths)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 96), min_size=1, max_size=60), st.integers(1, 4))
def test_boundaries_are_the_least_padding_choice(lengths, n):
    widths = batching.boundaries(lengths, n)
    assert 1 <= len(widths) <= n
    assert all(w % batching.MULTIPLE == 0 for w in widths) and widths == sorted(set(widths))
    assert widths[-1] >= max(lengths)
    # brute force over every choice of n widths among the multiples of 8 up to the top one
    candidates = range(8, widths[-1] + 1, 8)
    best = min(_padding(lengths, list(c) + [widths[-1]])
               for k in range(0, n) for c in itertools.combinations(candidates[:-1], k))
    assert _padding(lengths, widths) == best


def test_buckets_beat_fixed_steps_of_64_on_imdb_like_lengths():
    lengths = np.clip(np.random.default_rng(0).lognormal(np.log(229), 0.55, 5000).astype(int), 16, 512)
    widths = batching.boundaries(lengths, 8)
    ours = batching.padding_stats(lengths, widths)["real_token_fraction"]
    steps_of_64 = batching.padding_stats(lengths, list(range(64, 513, 64)))["real_token_fraction"]
    pad_to_max = batching.padding_stats(lengths, [512])["real_token_fraction"]
    assert len(widths) == 8 and ours > steps_of_64 > pad_to_max
    # the reported fraction is the real one: computed here directly from the padded widths
    padded = sum(min(w for w in widths if w >= n) for n in lengths)
    assert ours == pytest.approx(lengths.sum() / padded, abs=1e-4)


def test_sampler_batches_stay_in_one_bucket_and_cover_every_example():
    rng = np.random.default_rng(1)
    lengths = rng.integers(5, 120, size=1003)
    widths = batching.boundaries(lengths, 5)
    sampler = batching.BucketSampler(lengths, widths, batch_size=16, seed=7)
    order = list(sampler)
    assert sorted(order) == list(range(1003))
    batches = [order[i:i + 16] for i in range(0, len(order), 16)]
    assert [len(b) for b in batches[:-1]] == [16] * (len(batches) - 1)
    bucket = lambda i: batching.width_for(int(lengths[i]), widths)  # noqa: E731
    mixed = [b for b in batches if len({bucket(i) for i in b}) > 1]
    assert len(mixed) < len(widths)          # only the pooled remainders of the buckets mix
    sampler.set_epoch(0)
    assert list(sampler) == order            # same seed and epoch: same order (resume, all processes)
    sampler.set_epoch(1)
    assert list(sampler) != order


@pytest.mark.parametrize("workers", [0, 2])   # 2: the GPU default, collating in worker processes
def test_training_sees_only_bucket_widths(tiny_model, tmp_path, workers):
    """The model's own inputs during a real run: every training batch is padded to a bucket width."""
    shapes: list[tuple[bool, tuple[int, ...]]] = []

    def record(module, args):
        # the word embeddings receive the input ids of every forward pass
        if isinstance(module, torch.nn.Embedding) and module.num_embeddings > 1000:
            shapes.append((module.training, tuple(args[0].shape)))

    handle = torch.nn.modules.module.register_module_forward_pre_hook(record)
    try:
        result = finetune("sentiment", model=str(tiny_model), output_dir=str(tmp_path / "run"), max_steps=12,
                          max_train_samples=400, max_eval_samples=64, max_test_samples=64,
                          per_device_train_batch_size=16, length_buckets=4, eval_strategy="no",
                          dataloader_num_workers=workers)
    finally:
        handle.remove()
    info = json.loads((result.output_dir / "run_info.json").read_text())
    buckets = info["stats"]["length_buckets"]
    widths = buckets["buckets"]
    assert 1 < len(widths) <= 4 and 0.5 < buckets["real_token_fraction"] <= 1
    # the reported share of real tokens, recomputed from the run's training texts and the tokenizer alone
    from transformers import AutoTokenizer

    texts = list(data_mod.prepare(templates.load("sentiment"), result.config).splits["train"]["text"])
    lengths = [len(ids) for ids in AutoTokenizer.from_pretrained(tiny_model)(
        texts, truncation=True, max_length=result.config.max_length)["input_ids"]]
    padded = sum(min(w for w in widths if w >= n) for n in lengths)
    assert buckets["real_token_fraction"] == pytest.approx(sum(lengths) / padded, abs=5e-5)
    train_shapes = {s for training, s in shapes if training}
    assert len([1 for training, _ in shapes if training]) == 12
    assert {s[1] for s in train_shapes} <= set(widths)
    assert {s[0] for s in train_shapes} == {16}
    # evaluation batches are padded to a width too (bounded shapes for compiled models)
    eval_lengths = {s[1] for training, s in shapes if not training}
    assert all(n % batching.MULTIPLE == 0 for n in eval_lengths)
    assert result.config.train_sampling_strategy == "length_buckets"


def test_group_by_length_is_still_available(tiny_model, tmp_path):
    result = finetune("sentiment", model=str(tiny_model), output_dir=str(tmp_path / "run"), max_steps=3,
                      max_train_samples=120, max_eval_samples=32, max_test_samples=32,
                      train_sampling_strategy="group_by_length", eval_strategy="no")
    info = json.loads((result.output_dir / "run_info.json").read_text())
    assert "length_buckets" not in info["stats"]
    assert result.metrics["train"]["steps"] == 3


@pytest.mark.parametrize("bad", [0, -2])
def test_length_buckets_must_be_positive(bad, tmp_path):
    from hf_finetune.errors import ConfigError

    with pytest.raises(ConfigError, match="length_buckets"):
        finetune("sentiment", output_dir=str(tmp_path / "x"), length_buckets=bad)


@pytest.mark.slow
def test_torch_compile_on_bucketed_shapes(tiny_model, tmp_path, caplog):
    """--torch-compile really compiles (dynamo captures graphs), and no bucket shape falls back to eager at
    a recompile limit. The template picks dynamo's aot_eager backend, as a template may: the graph capture
    and recompiles are the same as with inductor, without its minutes of code generation on a CPU."""
    import logging

    import torch._dynamo
    import yaml
    from torch._dynamo.utils import counters

    from hf_finetune import templates

    raw = yaml.safe_load((templates.bundled_dir() / "sentiment.yaml").read_text())
    raw["trainer"]["args"] = {"torch_compile_backend": "aot_eager"}
    template = tmp_path / "compiled.yaml"
    template.write_text(yaml.safe_dump(raw))
    torch._dynamo.reset()
    counters.clear()
    caplog.set_level(logging.WARNING, logger="torch._dynamo")
    result = finetune(template=str(template), model=str(tiny_model), output_dir=str(tmp_path / "run"), max_steps=4,
                      max_train_samples=128, max_eval_samples=16, max_test_samples=16, per_device_train_batch_size=16,
                      per_device_eval_batch_size=16, length_buckets=2, eval_strategy="no", torch_compile=True)
    assert counters["stats"]["unique_graphs"] >= 1                       # compiled, not silently eager
    assert not [r for r in caplog.records if "recompile_limit" in r.getMessage() or "cache_size_limit" in
                r.getMessage()]                                          # no shape left to eager mode
    assert result.metrics["train"]["steps"] == 4 and "accuracy" in result.metrics["test"]
    # the saved weights load without the compile wrapper's prefixes
    from transformers import AutoModelForSequenceClassification

    _, loading = AutoModelForSequenceClassification.from_pretrained(result.output_dir, output_loading_info=True)
    assert not loading["missing_keys"] and not loading["unexpected_keys"]
