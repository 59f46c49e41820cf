"""Baselines beside the metrics, the best-checkpoint notes, and --hp-search: one shared tiny run (tiny random
BERT, the review table, 2 trials of a few steps) that the tests below read."""

from __future__ import annotations

import contextlib
import io
import pytest
import yaml
from huggingface_hub import ModelCard

from hf_finetune.cli import main

from conftest import read_json, write_reviews_csv

# a wide learning-rate range, so the two trials learn differently even in 8 steps
TEMPLATE_SPACE = """
search_space:
  learning_rate: {low: 1.0e-5, high: 1.0e-2, log: true}
  warmup_steps: {low: 0.0, high: 0.2}
  per_device_train_batch_size: {choices: [8, 16]}
"""


@pytest.fixture(scope="module")
def searched(tmp_path_factory, tiny_model):
    """The real CLI, in this process: `sentiment --hp-search 2` on a tiny model and a 120-row review table."""
    from hf_finetune import templates

    root = tmp_path_factory.mktemp("search")
    template = root / "reviews.yaml"
    text = (templates.bundled_dir() / "sentiment.yaml").read_text()
    template.write_text(text.split("\nsearch_space:")[0].split("\ncard:")[0] + "\n" + TEMPLATE_SPACE + "\ncard:\n"
                        + text.split("\ncard:\n")[1])
    reviews = write_reviews_csv(root / "r.csv")
    lines = reviews.read_text().splitlines()
    bad = [line for line in lines[1:] if line.endswith(",1")]
    # 60 five-star and 30 one-star reviews: one majority class, so a wrong pick of it shows
    reviews.write_text("\n".join([lines[0], *[line for line in lines[1:] if line not in bad[30:]]]) + "\n")
    out = root / "out"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main([str(template), "--model", str(tiny_model), "--dataset", str(reviews),
                     "--output-dir", str(out), "--hp-search", "2", "--max-steps", "8", "--eval-strategy", "steps",
                     "--eval-steps", "4", "--logging-steps", "4"])
    assert code == 0, stdout.getvalue()[-2000:]
    return {"out": out, "stdout": stdout.getvalue(), "info": read_json(out / "run_info.json"),
            "card": ModelCard.load(out / "README.md").text}


def test_card_puts_the_majority_class_and_tfidf_beside_the_metrics(searched):
    info, card = searched["info"], searched["card"]
    counts = info["label_counts"]
    top = max(counts["train"], key=counts["train"].get)           # the most frequent training label
    assert counts["train"][top] > min(counts["train"].values())
    expected = counts["test"][top] / sum(counts["test"].values())
    baseline = info["baseline"]
    assert baseline["name"] == f"majority class (always `{top}`)"
    assert baseline["metrics"]["accuracy"] == pytest.approx(expected)
    tfidf = baseline["also"][0]
    assert tfidf["name"].startswith("TF-IDF") and tfidf["metrics"]["accuracy"] > expected + 0.2  # words separate them
    assert f"| test, baseline: majority class (always `{top}`) | {expected:.4f} |" in card
    assert "Baselines on the same test split: majority class" in card
    assert "baseline on the test split, majority class" in searched["stdout"]


def test_small_held_out_validation_is_said_in_the_output_and_the_card(searched):
    validation = searched["info"]["splits"]["validation"]["count"]
    assert validation < 500
    for where in (searched["stdout"], searched["card"]):
        assert f"chosen on {validation} validation examples (fewer than 500)" in where
        assert "hold-out of train" in where and "quote the test figures" in where


def test_search_trains_the_best_trial_and_records_it(searched):
    search, out = searched["info"]["hp_search"], searched["out"]
    values = [t["value"] for t in search["trials"]]
    assert len(values) == 2 and all(t["state"] == "COMPLETE" for t in search["trials"])
    best = search["trials"][search["best_trial"]]
    assert best["value"] == max(values) == search["best_value"]   # f1: greater is better
    for t in search["trials"]:
        assert 1e-5 <= t["params"]["learning_rate"] <= 1e-2 and t["params"]["per_device_train_batch_size"] in (8, 16)
    for t in search["trials"]:     # each trial's data loader used the batch size the trial reports
        assert t["train_batch_size"] == t["params"]["per_device_train_batch_size"], t
    # the trained run is the best trial again: same seed, same path through Trainer.train(model_init), so its
    # kept checkpoint scores what the trial scored (the search's figure is the run's, not a lucky draw)
    metrics = read_json(out / "metrics.json")
    validation = metrics["validation"]
    assert validation["f1"] == pytest.approx(best["value"], abs=1e-6)
    # the template's linear probe is fitted once, before the trials, and every trial starts from its head
    assert metrics["linear_probe"]["examples"] == searched["info"]["splits"]["train"]["count"]
    assert searched["stdout"].count("linear probe: fitting") == 1
    assert validation["loss"] == pytest.approx(best["validation_loss"], abs=1e-5)
    saved = yaml.safe_load((out / "run_config.yaml").read_text())
    assert saved["hp_search"] is None                               # a repeat needs no search
    for name, value in best["params"].items():
        assert saved[name] == pytest.approx(value), name
    card = searched["card"]
    assert "### Hyper-parameter search" in card
    assert f"| {search['best_trial'] + 1} | " in card and card.count("← trained") == 1
    for n in (1, 2):
        assert f"hp-search trial {n}/2: learning_rate" in searched["stdout"]


def test_search_without_evaluation_is_refused_before_any_work(tiny_model, reviews_csv, tmp_path, capsys):
    code = main(["sentiment", "--model", str(tiny_model), "--dataset", str(reviews_csv), "--hp-search", "2",
                 "--eval-strategy", "no", "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code != 0 and "needs eval_strategy" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def _review_splits(folder, extra_train_text: str | None = None):
    """The review table as the TF-IDF baseline gets it (text, class id): half of each class to train, half to test."""
    from datasets import Dataset

    rows = [line.rsplit(",", 1) for line in write_reviews_csv(folder / "r.csv").read_text().splitlines()[1:]]
    texts, labels = [text.strip('"') for text, _ in rows], [int(stars == "5") for _, stars in rows]
    train, test = [i for i in range(len(rows)) if i % 4 < 2], [i for i in range(len(rows)) if i % 4 >= 2]
    extra = [extra_train_text] if extra_train_text is not None else []
    return (Dataset.from_dict({"text": [texts[i] for i in train] + extra,
                               "label": [labels[i] for i in train] + [1] * len(extra)}),
            Dataset.from_dict({"text": [texts[i] for i in test], "label": [labels[i] for i in test]}))


def test_the_tfidf_baseline_reads_a_huge_text_only_as_far_as_tokenization_does(tmp_path):
    """One 5 MB single-line text cost the TF-IDF baseline ~30x its size (word and bigram strings), though the
    model reads only max_length tokens of it: the baseline reads as far as tokenization does."""
    import tracemalloc

    from hf_finetune import kinds
    from hf_finetune.config import RunConfig
    from hf_finetune.kinds import baselines

    kind, config = kinds.get("text-classification")(), RunConfig(max_length=128)
    # on ordinary texts the figures are those of the unbounded baseline (and its imports are done before measuring)
    train, test = _review_splits(tmp_path)
    bounded = kind.baseline(train, test, ["bad", "good"], config)["also"][0]
    unbounded = baselines.tfidf_logistic_regression(list(train["text"]), train["label"], list(test["text"]),
                                                    test["label"], config.seed)
    assert bounded == unbounded and bounded["metrics"]["accuracy"] > 0.5

    huge_text = "word " * 1_000_000
    train, test = _review_splits(tmp_path, huge_text)
    tracemalloc.start()
    try:
        kind.baseline(train, test, ["bad", "good"], config)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(huge_text), f"peak {peak / 2**20:.0f} MiB for a {len(huge_text) / 2**20:.0f} MiB text"


def test_the_lead_baseline_reads_a_huge_text_only_as_far_as_tokenization_does():
    import tracemalloc

    from datasets import Dataset

    from hf_finetune import kinds
    from hf_finetune.config import RunConfig

    kind, config = kinds.get("summarization")(), RunConfig(max_length=128)
    texts = ["The council approved a new park. Officials said more would follow. Residents reacted. It rained.",
             "A storm closed the coastal road. Drivers waited for hours. The road opened at noon. Nobody was hurt."]
    summaries = ["The council approved a new park.", "A storm closed the coastal road."]
    ordinary = kind.baseline(None, Dataset.from_dict({"text": texts, "summary": summaries}), None, config)
    assert ordinary["metrics"]["rouge1"] > 0.5   # the lead holds each summary; its figures come before measuring

    huge_text = "word " * 1_000_000   # one sentence of 5 MB: its own lead
    test = Dataset.from_dict({"text": [*texts, huge_text], "summary": [*summaries, "word word"]})
    tracemalloc.start()
    try:
        kind.baseline(None, test, None, config)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(huge_text), f"peak {peak / 2**20:.0f} MiB for a {len(huge_text) / 2**20:.0f} MiB text"


def test_classical_baselines_of_multi_label_and_regression_read_the_words():
    """The classical references a multi-label or regression run now reports beside its trivial predictor: each
    learns from the words where the trivial one cannot (the label set, the score, follows a word)."""
    import random

    import numpy as np

    from hf_finetune.kinds import baselines

    rng = random.Random(0)
    words = ["price", "quality", "delivery", "colour", "size", "screen"]

    def texts(n: int) -> tuple[list[str], np.ndarray]:
        rows, labels = [], []
        for _ in range(n):
            present = [w for w in words[:3] if rng.random() < 0.4]
            rows.append(" ".join(present + rng.sample(words[3:], 2) + ["item"]))
            labels.append([float(w in present) for w in words[:3]])
        return rows, np.asarray(labels)

    (train, train_y), (test, test_y) = texts(300), texts(100)
    tagged = baselines.tfidf_one_vs_rest(train, train_y, test, test_y, seed=0)["metrics"]
    assert tagged["f1_micro"] > 0.95 and tagged["f1_macro"] > 0.95, tagged
    scored = baselines.tfidf_ridge(train, train_y.sum(axis=1), test, test_y.sum(axis=1))["metrics"]
    assert scored["pearson"] > 0.9, scored

    def pairs(n: int) -> tuple[tuple[list[str], list[str]], np.ndarray]:
        first, second, shared = [], [], []
        for _ in range(n):
            sentence = rng.sample(words, 4)
            k = rng.randint(0, 4)   # how many of its words the second sentence keeps
            first.append(" ".join(sentence))
            second.append(" ".join(sentence[:k] + [f"other{i}" for i in range(4 - k)]))
            shared.append(k)
        return (first, second), np.asarray(shared, dtype=float)

    (train_pairs, train_k), (test_pairs, test_k) = pairs(300), pairs(100)
    similar = baselines.tfidf_cosine_regression(train_pairs, train_k, test_pairs, test_k)["metrics"]
    assert similar["pearson"] > 0.9, similar
