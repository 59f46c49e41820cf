"""What a run says about itself beyond its metrics (issue 26): card wording that fits the task and the data's
name, a run that learned nothing said so, the estimated time before training, the zero-shot step bounded."""

from __future__ import annotations

import csv
from pathlib import Path

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


# -- summarization's zero-shot step: bounded by default, with progress (item 6) -----------------------------

def test_zero_shot_is_scored_on_a_stated_sample_with_progress(tiny_seq2seq, summaries_jsonl, tmp_path, cli):
    out = tmp_path / "run"
    proc = cli(["summarization", "--model", tiny_seq2seq, "--dataset", summaries_jsonl, "--output-dir", out,
                "--max-steps", "1", "--max-length", "32", "--max-target-length", "8", "--eval-strategy", "no",
                "--max-zero-shot-samples", "4", "--per-device-eval-batch-size", "2"])
    assert proc.returncode == 0, proc.stderr + proc.stdout
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
