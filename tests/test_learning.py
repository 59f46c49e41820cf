"""Each task learns: a short run on its embedded default (real pretrained model, real data) beats a baseline
that the test computes itself, on the same test split, by a stated margin. Seeds are fixed, so the runs
are deterministic on a CPU; the margins leave room for another CPU's arithmetic."""

from __future__ import annotations

from collections import Counter

import pytest

from hf_finetune import data as data_mod, finetune, resolve_config

pytestmark = pytest.mark.slow   # long learning runs on the embedded models and data


def majority_accuracy(task: str, **settings) -> float:
    """Accuracy on the run's test split of always answering the training split's most frequent label."""
    template, config = resolve_config(task, **settings)
    prepared = data_mod.prepare(template, config)
    top = Counter(prepared.splits["train"]["label"]).most_common(1)[0][0]
    test = prepared.splits["test"]["label"]
    return sum(label == top for label in test) / len(test)


def test_sentiment_beats_the_majority_class(tmp_path):
    settings = dict(max_train_samples=800, max_eval_samples=200, max_test_samples=400, num_train_epochs=1,
                    max_length=64, eval_strategy="no")
    baseline = majority_accuracy("sentiment", **settings)
    result = finetune("sentiment", output_dir=str(tmp_path / "run"), **settings)
    assert result.metrics["test"]["accuracy"] >= baseline + 0.10, (result.metrics["test"], baseline)
    assert result.metrics["learning_check"]["learned_nothing"] is False   # it learned: no warning says otherwise


def test_image_classification_beats_the_majority_class(tmp_path):
    settings = dict(max_train_samples=600, max_eval_samples=100, num_train_epochs=3, learning_rate=3e-3,
                    image_size=64, eval_strategy="no", dataloader_num_workers=0)
    baseline = majority_accuracy("image-classification", **settings)
    result = finetune("image-classification", output_dir=str(tmp_path / "run"), **settings)
    assert result.metrics["test"]["accuracy"] >= baseline + 0.40, (result.metrics["test"], baseline)
    assert result.metrics["learning_check"]["learned_nothing"] is False


def test_summarization_beats_the_zero_shot_model_on_the_same_split(tmp_path):
    result = finetune("summarization", output_dir=str(tmp_path / "run"), num_train_epochs=2, max_length=128,
                      max_target_length=64, max_test_samples=20, eval_strategy="no")
    zero_shot, tuned = result.metrics["zero_shot_test"]["rougeLsum"], result.metrics["test"]["rougeLsum"]
    assert tuned >= zero_shot + 0.05, (tuned, zero_shot)


def mean_predictor_mse(task: str, **settings) -> float:
    """MSE on the run's test split of always predicting the training split's mean target."""
    import numpy as np

    template, config = resolve_config(task, **settings)
    prepared = data_mod.prepare(template, config)
    mean = float(np.mean(prepared.splits["train"]["target"]))
    return float(np.mean((np.asarray(prepared.splits["test"]["target"], dtype=float) - mean) ** 2))


@pytest.mark.parametrize("task", ["sentiment", "regression"])
def test_the_linear_probe_alone_beats_the_baseline_a_new_head_stays_at(task, tmp_path):
    """With training all but switched off (one step at 1e-9), only --linear-probe's fitted head can predict
    anything: it beats the majority class / mean predictor, the randomly initialised head does not."""
    settings = dict(max_train_samples=500, max_eval_samples=200, max_test_samples=300, max_length=64,
                    max_steps=1, learning_rate=1e-9, eval_strategy="no")
    probed = finetune(task, output_dir=str(tmp_path / "probed"), linear_probe=True, **settings).metrics
    fresh = finetune(task, output_dir=str(tmp_path / "fresh"), linear_probe=False, **settings).metrics
    assert probed["linear_probe"]["examples"] == 500
    if task == "sentiment":
        baseline = majority_accuracy(task, **settings)
        assert probed["test"]["accuracy"] >= baseline + 0.10, (probed["test"], baseline)
        assert fresh["test"]["accuracy"] < baseline + 0.05, (fresh["test"], baseline)
    else:
        baseline = mean_predictor_mse(task, **settings)
        # annotator confidence is hard to read from a tweet: 0.92 of the mean predictor's MSE measured
        assert probed["test"]["mse"] <= 0.95 * baseline, (probed["test"], baseline)
        assert fresh["test"]["mse"] >= baseline, (fresh["test"], baseline)


def test_a_nearly_constant_feature_gets_no_giant_weight_from_the_probe():
    """Standardising by a std of 1e-7 would turn a coefficient of 1 into a weight of 1e7."""
    import numpy as np

    from hf_finetune import linear_probe

    rng = np.random.default_rng(0)
    features = np.column_stack([rng.normal(0, 1, 500), rng.normal(0, 2, 500), 3 + rng.normal(0, 1e-7, 500)])
    mean, scale = linear_probe.standardisation(features)
    assert np.allclose(mean, features.mean(axis=0))
    assert scale[0] == pytest.approx(features[:, 0].std()) and scale[1] == pytest.approx(features[:, 1].std())
    assert scale[2] >= linear_probe.SCALE_FLOOR * np.median(features.std(axis=0))
