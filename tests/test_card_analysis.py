"""The card's test analysis pairs each text with its own label and prediction (issue 25, item 2): the Trainer
predicts the test split in length-grouped batches, the analysis reads the split by row."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from hf_finetune import finetune

LABELS = ["alpha", "beta", "gamma"]
# short and long rows alternate, so length-grouped batches come back in an order other than the rows'
SETTINGS = dict(max_length=32, num_train_epochs=1, per_device_train_batch_size=8, per_device_eval_batch_size=4,
                eval_strategy="no", seed=3)


def _write(folder: Path, rows: list[tuple[str, object]], label_column: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, part in (("train", rows[:48]), ("test", rows[48:])):
        with (folder / f"{split}.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", label_column])
            writer.writerows(part)
    return folder


def _card_errors(run: Path) -> list[tuple[str, str, str]]:
    card = (run / "README.md").read_text()
    section = card.split("### Test examples it gets wrong", 1)[1].split("\n## ", 1)[0]
    return [tuple(cell.strip() for cell in line.strip("|").split("|"))
            for line in section.splitlines() if line.startswith("| ") and not line.startswith("| input")]


def _filler(i: int) -> str:
    return " and so on" * (3 * (i % 4))


def test_wrong_examples_show_each_rows_own_label(tmp_path, tiny_model):
    rows = [(f"this row is labelled {LABELS[i % 3]} number {i}{_filler(i)}", LABELS[i % 3]) for i in range(88)]
    data = _write(tmp_path / "data", rows, "label")
    run = finetune("sentiment", model=str(tiny_model), dataset=str(data), output_dir=str(tmp_path / "run"),
                   **SETTINGS).output_dir
    errors = _card_errors(run)
    assert len(errors) == 5, errors   # a random tiny model gets many of the 40 wrong
    for text, label, predicted in errors:
        assert re.search(r"labelled (\w+)", text).group(1) == label, (text, label)
        assert predicted != label


def test_largest_regression_errors_show_each_rows_own_target(tmp_path, tiny_model):
    rows = [(f"this row has target {i % 10} number {i}{_filler(i)}", i % 10) for i in range(88)]
    data = _write(tmp_path / "data", rows, "target")
    run = finetune("regression", model=str(tiny_model), dataset=str(data), output_dir=str(tmp_path / "run"),
                   **SETTINGS).output_dir
    errors = _card_errors(run)
    assert len(errors) == 5, errors
    for text, label, _ in errors:
        assert float(label) == pytest.approx(int(re.search(r"target (\d+)", text).group(1)), abs=1e-4), (text, label)


# -- the card's license follows the base model's card (issue 25, item 7) ----------------------------------

def _card_data(run: Path) -> dict:
    from huggingface_hub import ModelCard

    return ModelCard.load(run / "README.md").data.to_dict()


def test_the_license_of_a_local_models_card_is_the_fine_tuned_cards(tmp_path, tiny_model, tiny_run_data):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    (model / "README.md").write_text("---\nlicense: cc-by-nc-4.0\n---\n# a non-commercial model\n")
    run = finetune("sentiment", model=str(model), dataset=str(tiny_run_data), text_column="review",
                   output_dir=str(tmp_path / "run"), max_steps=1, max_length=16, eval_strategy="no").output_dir
    assert _card_data(run)["license"] == "cc-by-nc-4.0"


def test_a_model_that_states_no_license_gets_unknown_and_the_reason(tiny_run):
    # the shared run's base model is a folder with no README: nothing states its terms
    assert _card_data(tiny_run)["license"] == "unknown"
    assert "states no license" in (tiny_run / "README.md").read_text()
