"""End to end through the real CLI on the embedded default (real model, real data, few steps)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard

from conftest import read_json, run_cli

QUICK = ["--max-train-samples", "128", "--max-eval-samples", "64", "--max-test-samples", "64",
         "--num-train-epochs", "1", "--max-length", "64"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, session_env):
    out = tmp_path_factory.mktemp("runs") / "sentiment-run"
    proc = run_cli(["sentiment", "--output-dir", str(out), *QUICK], session_env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return out, proc


def test_run_writes_a_complete_output_dir(finished_run):
    out, proc = finished_run
    for name in ("config.json", "model.safetensors", "tokenizer.json", "metrics.json", "log_history.json",
                 "training_curves.png", "README.md", "run_config.yaml", "run_info.json"):
        assert (out / name).is_file(), name
    assert not (out / "checkpoints").exists()
    assert not list(out.parent.glob(".*partial*")), "staging dir left behind"
    metrics = read_json(out / "metrics.json")
    assert set(metrics) >= {"train", "validation", "test"}
    # the reported accuracy is that of the test predictions (their confusion matrix), over the whole split
    matrix = read_json(out / "run_info.json")["test_analysis"]["confusion"]
    assert sum(map(sum, matrix)) == 64
    assert metrics["test"]["accuracy"] == pytest.approx(sum(matrix[i][i] for i in range(3)) / 64, abs=1e-9)
    assert metrics["train"]["examples"] == 128
    assert (out / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "test" in proc.stdout and "accuracy" in proc.stdout  # the final summary table


def test_saved_model_loads_in_pipeline_with_real_label_names(finished_run):
    from transformers import AutoConfig, pipeline

    out, _ = finished_run
    config = AutoConfig.from_pretrained(out)
    assert set(config.id2label.values()) == {"negative", "neutral", "positive"}
    assert config.label2id == {v: k for k, v in config.id2label.items()}
    classifier = pipeline("text-classification", model=str(out))
    prediction = classifier("@united thanks for the great flight!")[0]
    # the pipeline reads the saved model as the test does: the softmax of its logits, named by id2label
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model, tokenizer = AutoModelForSequenceClassification.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    with torch.no_grad():
        probabilities = model(**tokenizer("@united thanks for the great flight!", return_tensors="pt")).logits.softmax(-1)[0]
    assert prediction["label"] == config.id2label[int(probabilities.argmax())]
    assert prediction["score"] == pytest.approx(float(probabilities.max()), abs=1e-5)
    # single-label: the pipeline applies a softmax (a saved multi-label problem_type would make it a sigmoid)
    scores = classifier("@united thanks for the great flight!", top_k=None)
    assert {s["label"] for s in scores} == {"negative", "neutral", "positive"}
    assert sum(s["score"] for s in scores) == pytest.approx(1.0, abs=1e-5)
    assert max(s["score"] for s in scores) == pytest.approx(prediction["score"], abs=1e-6)


def test_card_parses_with_metadata_and_the_measured_results(finished_run):
    out, _ = finished_run
    card = ModelCard.load(out / "README.md")
    data = card.data
    assert data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert data.pipeline_tag == "text-classification"
    assert data.license == "apache-2.0"                     # the base model's license, from the catalogue
    assert "The training data is licensed `cc-by-4.0`" in card.text   # the data's, stated beside it
    assert data.metrics == ["accuracy", "f1"]
    assert not data.eval_results      # model-index names a Hub data set; the embedded tweets are not one
    metrics = read_json(out / "metrics.json")
    test = metrics["test"]
    assert f"| test | {test['accuracy']:.4f} | {test['f1']:.4f} |" in card.text
    text = card.text
    assert 'pipeline("text-classification", model=' in text and "| negative |" in text
    assert "← best" in text and "training_curves.png" in text


def test_usage_snippet_in_card_runs_as_written(finished_run, tmp_path, session_env):
    import re
    import subprocess
    import sys

    out, _ = finished_run
    snippet = re.search(r"```python\n(.*?)```", (out / "README.md").read_text(), re.S).group(1)
    proc = subprocess.run([sys.executable, "-c", snippet], env=session_env, capture_output=True, text=True,
                          cwd=Path.cwd(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "'label'" in proc.stdout


def test_run_config_repeats_the_run_and_reuses_tokenization(finished_run, tmp_path, session_env):
    out, first = finished_run
    assert "tokenization: done" in first.stdout
    saved = yaml.safe_load((out / "run_config.yaml").read_text())
    assert saved["task"] == "sentiment" and saved["max_train_samples"] == 128
    assert "token" not in saved
    again = tmp_path / "again"
    proc = run_cli(["--config", str(out / "run_config.yaml"), "--output-dir", str(again)], session_env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "tokenization: reused from cache" in proc.stdout
    first_metrics, second_metrics = read_json(out / "metrics.json"), read_json(again / "metrics.json")
    # same seed, same data, same CPU: the repeated run reproduces the test metrics
    assert second_metrics["test"]["accuracy"] == first_metrics["test"]["accuracy"]
    assert second_metrics["test"]["loss"] == pytest.approx(first_metrics["test"]["loss"], rel=1e-5)


def test_tasks_and_help(cli):
    proc = cli(["tasks"])
    assert proc.returncode == 0 and "sentiment" in proc.stdout
    helped = cli(["sentiment", "--help"])
    assert helped.returncode == 0
    for flag in ("--learning-rate", "--num-train-epochs", "--per-device-train-batch-size", "--text-column",
                 "--max-train-samples", "--push-to-hub"):
        assert flag in helped.stdout
    assert "(default: 0.0001)" in helped.stdout  # the template's learning rate, not the schema's
