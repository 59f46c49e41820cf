"""What a run says about itself beyond its metrics (issue 26): card wording that fits the task and the data's
name, a run that learned nothing said so, the estimated time before training, the zero-shot step bounded."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from hf_finetune import finetune

from conftest import read_json


def _write_rows(folder: Path, rows: list[tuple[str, object]], target: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "train.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", target])
        writer.writerows(rows)
    return folder


# -- card wording (item 6) ---------------------------------------------------------------------------------

def test_a_regression_card_on_a_folder_named_data_reads_right(tmp_path, tiny_model):
    rows = [(f"this row has target {i % 10} number {i}", i % 10) for i in range(60)]
    data = _write_rows(tmp_path / "data", rows, "target")
    run = finetune("regression", model=str(tiny_model), dataset=str(data), output_dir=str(tmp_path / "run"),
                   max_steps=2, max_length=16, per_device_train_batch_size=16).output_dir
    card = (run / "README.md").read_text()
    assert "data data set" not in card and "the data set `data`" in card
    assert "for text classification" not in card and "for text regression on" in card
    # the small-validation note speaks of the metric that chose the checkpoint (MSE), not of an accuracy
    assert "chosen on 6 validation examples (fewer than 500)" in card
    assert "standard error of an accuracy" not in card and "validation mse" in card
    # two steps leave the head on the training mean: a near-constant regressor learned nothing, although its MSE
    # is under the mean predictor's on 6 examples
    check = read_json(run / "metrics.json")["learning_check"]
    assert check["learned_nothing"] is True and [f["signal"] for f in check["findings"]] == ["one_output"]
    assert "to every one of the 6 test examples" in card and "outputs about the training mean" in card


# -- summarization's zero-shot step: bounded by default, with progress (item 6) -----------------------------

def test_zero_shot_is_scored_on_a_stated_sample_with_progress(tiny_seq2seq, summaries_jsonl, tmp_path, cli):
    out = tmp_path / "run"
    proc = cli(["summarization", "--model", tiny_seq2seq, "--dataset", summaries_jsonl, "--output-dir", out,
                "--max-steps", "1", "--max-length", "32", "--max-target-length", "8", "--eval-strategy", "no",
                "--max-zero-shot-samples", "4", "--per-device-eval-batch-size", "2"])
    assert proc.returncode == 0, proc.stderr + proc.stdout
    # one step: the same summary for every text, under lead-3
    check = read_json(out / "metrics.json")["learning_check"]
    assert check["learned_nothing"] is True
    assert {f["signal"] for f in check["findings"]} == {"one_output", "baseline"}
    assert "one generic summary" in check["cause"] and "WARNING: This run learned nothing useful." in proc.stdout
    # 60 rows: a 6-example test hold-out, of which the zero-shot step scores a seeded sample of 4, in 2 batches
    assert "evaluating the base model on a sample of 4 of the 6 test examples (seed 42" in proc.stdout
    assert "[hf-finetune] zero-shot (base model): batch 1/2" in proc.stdout
    assert "[hf-finetune] zero-shot (base model): batch 2/2" in proc.stdout
    assert "batch 3/" not in proc.stdout
    metrics = read_json(out / "metrics.json")
    assert metrics["zero_shot_examples"] == 4 and "rougeLsum" in metrics["zero_shot_test"]
    card = (out / "README.md").read_text()
    assert "| test sample (4 of 6 examples), base model before fine-tuning (zero-shot) |" in card


def test_the_zero_shot_step_is_skipped_with_0_and_shows_a_bar_on_a_terminal(tiny_seq2seq, summaries_jsonl, tmp_path):
    import io

    from rich.console import Console

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    result = finetune("summarization", model=str(tiny_seq2seq), dataset=str(summaries_jsonl),
                      output_dir=str(tmp_path / "run"), max_steps=1, max_length=32, max_target_length=8,
                      eval_strategy="no", quiet=False, console=console)
    assert result.metrics["zero_shot_examples"] == 6          # 6 test examples: under the default cap of 100
    assert "zero-shot (base model)" in screen.getvalue()      # its bar, on the terminal
    skipped = finetune("summarization", model=str(tiny_seq2seq), dataset=str(summaries_jsonl),
                       output_dir=str(tmp_path / "skipped"), max_steps=1, max_length=32, max_target_length=8,
                       eval_strategy="no", max_zero_shot_samples=0)
    assert "zero_shot_test" not in skipped.metrics


# -- a run that learned nothing says so (item 5) ------------------------------------------------------------

def test_a_run_that_learned_nothing_says_so_in_the_output_the_card_and_metrics(tiny_model, tiny_run_data, tmp_path,
                                                                                cli):
    # the tiny random BERT, one epoch of 7 steps at the default learning rate: it stays on one class
    out = tmp_path / "run"
    proc = cli(["sentiment", "--model", tiny_model, "--dataset", tiny_run_data, "--text-column", "review",
                "--output-dir", out, "--max-length", "16", "--num-train-epochs", "1",
                "--per-device-train-batch-size", "16"])
    assert proc.returncode == 0, proc.stderr + proc.stdout
    check = read_json(out / "metrics.json")["learning_check"]
    assert check["learned_nothing"] is True and check["behind_a_baseline"] is True
    majority = next(f for f in check["findings"] if f["signal"] == "baseline" and f["trivial"])
    assert majority["baseline"].startswith("majority class") and majority["metric"] == "f1"
    assert majority["test"] == pytest.approx(majority["baseline_value"])          # it ties the baseline majority class
    one = next(f for f in check["findings"] if f["signal"] == "one_output")
    assert "to 100% of the 12 test examples" in one["output"]
    assert "--num-train-epochs 2 (this run: 1)" in check["try"][0]
    assert "WARNING: This run learned nothing useful." in proc.stdout
    assert "estimated time: " in proc.stdout and "to shorten it" not in proc.stdout   # a short run: no hint
    assert "ties the baseline majority class" in proc.stdout and "--num-train-epochs 2 (this run: 1)" in proc.stdout
    card = (out / "README.md").read_text()
    assert "> **Warning: This run learned nothing useful.**" in card
    assert "ties the baseline majority class" in card and "Likely cause: too little training" in card


def _check(test: float, baselines: list[tuple[str, float, bool]], metric: str = "f1", greater: bool = True,
           one_output: str | None = None) -> dict:
    from hf_finetune.config import RunConfig
    from hf_finetune.learning_check import check

    entries = [{"name": name, "metrics": {metric: value}, **({"trivial": True} if trivial else {})}
               for name, value, trivial in baselines]
    baseline = {**entries[0], "also": entries[1:]} if entries else None
    return check({metric: test}, baseline, metric, greater, one_output, "a cause", RunConfig(), 5000)


def test_a_test_figure_within_1_percent_of_a_baseline_ties_it_and_a_perfect_one_is_no_sign():
    learned = _check(0.80, [("majority", 0.33, True), ("tf-idf", 0.78, False)])
    assert learned == {"learned_nothing": False, "behind_a_baseline": False, "findings": []}
    tie = _check(0.785, [("majority", 0.33, True), ("tf-idf", 0.78, False)])          # 0.6% above: a tie
    assert not tie["learned_nothing"] and tie["behind_a_baseline"]
    assert [(f["baseline"], f["relation"]) for f in tie["findings"]] == [("tf-idf", "ties")]
    assert _check(0.30, [("prior", 0.30, True)])["learned_nothing"]
    assert _check(0.20, [("lead-3", 0.27, False)])["findings"][0]["relation"] == "trails"
    assert not _check(0.20, [("lead-3", 0.27, False)])["learned_nothing"]            # a classical baseline
    assert _check(1.0, [("svc", 1.0, False)])["findings"] == []                       # nothing beats 1.0
    # lower is better (MSE): 0.0330 beats the mean's 0.0362, 0.0360 ties it
    assert _check(0.0330, [("mean", 0.0362, True)], "mse", greater=False)["findings"] == []
    assert _check(0.0360, [("mean", 0.0362, True)], "mse", greater=False)["learned_nothing"]
    assert _check(0.9, [], one_output="`a` to 100% of the 9 test examples")["learned_nothing"]


def test_a_multi_label_model_that_gives_every_text_one_label_set_is_caught():
    import numpy as np

    from hf_finetune.kinds.multi_label_classification import MultiLabelClassification

    kind = MultiLabelClassification()
    kind.threshold = 0.5
    truth = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]] * 5, dtype=np.float32)
    collapsed = np.tile(np.array([[3.0, -3.0, -3.0]]), (20, 1))            # `joy` for every text
    names = ["joy", "fear", "neutral"]
    assert kind.one_output(collapsed, truth, names, None) == "`joy` to 100% of the 20 test examples"
    varied = np.where(truth > 0, 3.0, -3.0)                                # each text its own labels
    assert kind.one_output(varied, truth, names, None) is None
    silent = np.full((20, 3), -3.0)                                        # no label for any text
    assert kind.one_output(silent, truth, names, None) == "no label to 100% of the 20 test examples"


# -- the estimated time, before most of the run (item 3) -----------------------------------------------------

def test_a_long_run_says_its_time_and_the_flags_that_shorten_it(tiny_model, tiny_run_data, tmp_path, cli,
                                                                 monkeypatch):
    import re

    monkeypatch.setenv("HF_FINETUNE_LONG_RUN_MINUTES", "0.0001")   # any run is long: the hint must come
    proc = cli(["sentiment", "--model", tiny_model, "--dataset", tiny_run_data, "--text-column", "review",
                "--output-dir", tmp_path / "run", "--max-length", "16", "--num-train-epochs", "2",
                "--per-device-train-batch-size", "16"])
    assert proc.returncode == 0, proc.stderr + proc.stdout
    about = r"(?:under 1|about \d+) s"
    said = re.search(rf"estimated time: {about} \(training {about}: (\d+) steps at ([\d.]+) s; evaluation {about}\), "
                     r"from the first 5 steps", proc.stdout)
    assert said, proc.stdout
    assert int(said[1]) == 14 and float(said[2]) > 0     # 97 training rows in batches of 16: 7 steps, 2 epochs
    assert proc.stdout.index("estimated time") < proc.stdout.index("[hf-finetune] epoch 1.00")   # before epoch 1 ends
    assert "that is over 0.0001 min on this machine (HF_FINETUNE_LONG_RUN_MINUTES); to shorten it: " in proc.stdout
    assert re.search(rf"--num-train-epochs 1 \({about}\)", proc.stdout), proc.stdout


def test_the_flags_that_shorten_a_long_run_aim_at_two_thirds_of_the_limit(monkeypatch):
    from hf_finetune import estimate
    from hf_finetune.errors import ConfigError

    # 30 min: 27 of training (3 epochs of 5,000 images), 2 of validation passes, 1 of the test split
    shape = estimate.RunShape(5000, 500, 500, 3.0, -1, levers=lambda: [("--image-size 160", (160 / 224) ** 2),
                                                                        ("--image-size 128", (128 / 224) ** 2)],
                              limit=15 * 60)
    time = estimate.Estimate(train=27 * 60, evaluation=2 * 60, final=60, steps=480, seconds_per_step=3.375)
    lines = estimate.message(shape, time)
    assert lines[0] == ("estimated time: about 30 min (training about 27 min: 480 steps at 3.38 s; evaluation about "
                        "3 min), from the first 5 steps")
    # 10 min aimed at: one epoch (11 min: no fewer), 1,200 images (9 min), 128 px, the first size that fits (10 min)
    assert lines[1] == ("that is over 15 min on this machine (HF_FINETUNE_LONG_RUN_MINUTES); to shorten it: "
                        "--num-train-epochs 1 (about 11 min), --max-train-samples 1200 (about 9 min), "
                        "--image-size 128 (about 10 min)")
    short = estimate.Estimate(train=8 * 60, evaluation=60, final=30, steps=100, seconds_per_step=4.8)
    assert len(estimate.message(shape, short)) == 1                       # under the limit: no hint
    monkeypatch.setenv("HF_FINETUNE_LONG_RUN_MINUTES", "soon")
    with pytest.raises(ConfigError, match="HF_FINETUNE_LONG_RUN_MINUTES must be a number of minutes"):
        estimate.long_run_seconds()
