"""What a run says about itself beyond its metrics (issue 26): card wording that fits the task and the data's
name, a run that learned nothing said so, the estimated time before training, the zero-shot step bounded."""

from __future__ import annotations

import csv
from pathlib import Path

from hf_finetune import finetune


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
