"""The Python API and the data pipeline on local files (tiny random model: plumbing only)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from datasets import ClassLabel

from hf_finetune import finetune, resolve_config
from hf_finetune import data as data_mod
from hf_finetune.errors import DataError

TINY = dict(num_train_epochs=1, max_length=32, per_device_train_batch_size=16, logging_steps=2)


def test_api_on_local_csv_with_custom_columns(tiny_model, reviews_csv, tmp_path):
    result = finetune("sentiment", model=str(tiny_model), dataset=str(reviews_csv), text_column="review",
                      label_column="stars", output_dir=str(tmp_path / "out"), **TINY)
    assert result.output_dir == tmp_path / "out"
    assert result.labels == ["1", "5"]
    config = json.loads((result.output_dir / "config.json").read_text())
    assert config["id2label"] == {"0": "1", "1": "5"}
    assert set(result.metrics["test"]) >= {"accuracy", "f1", "loss"}
    card = (result.output_dir / "README.md").read_text()
    assert "reviews.csv" in card  # eval results name the local data set


def test_license_flag_sets_the_cards_license(tiny_model, reviews_csv, tmp_path):
    from huggingface_hub import ModelCard

    result = finetune("sentiment", model=str(tiny_model), dataset=str(reviews_csv), text_column="review",
                      label_column="stars", output_dir=str(tmp_path / "out"), license="mit", max_steps=1,
                      eval_strategy="no", max_length=16)
    assert ModelCard.load(result.output_dir / "README.md").data.license == "mit"


def test_columns_are_auto_detected(reviews_csv, tmp_path):
    path = tmp_path / "data.jsonl"
    rows = [{"sentence": f"text {i}", "label": ["pos", "neg"][i % 2], "id": i} for i in range(40)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    _, config = resolve_config("sentiment", dataset=str(path))
    from hf_finetune import templates

    prepared = data_mod.prepare(templates.load("sentiment"), config)
    assert prepared.columns == {"text": "sentence", "label": "label"}
    assert prepared.labels == ["neg", "pos"]
    assert isinstance(prepared.splits["train"].features["label"], ClassLabel)


@pytest.mark.parametrize("values, expected", [
    ([0, 1, 2], ["0", "1", "2"]),
    ([True, False], ["False", "True"]),
    ([1.0, 2.0, 10.0], ["1", "2", "10"]),           # whole floats become ints, sorted as numbers
    (["b", "a", "c"], ["a", "b", "c"]),
])
def test_label_types_become_class_labels(values, expected, tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps({"text": f"row {i}", "label": values[i % len(values)]}) for i in range(60)))
    _, config = resolve_config("sentiment", dataset=str(path))
    from hf_finetune import templates

    prepared = data_mod.prepare(templates.load("sentiment"), config)
    assert prepared.labels == expected
    total = sum(len(prepared.splits[s]) for s in ("train", "validation", "test"))
    assert total == 60


def test_fractional_labels_are_refused(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label\n" + "".join(f"row {i},{i * 0.37}\n" for i in range(30)))
    _, config = resolve_config("sentiment", dataset=str(path))
    from hf_finetune import templates

    with pytest.raises(DataError, match="regression"):
        data_mod.prepare(templates.load("sentiment"), config)


def test_missing_validation_split_is_stratified_and_seeded(tmp_path):
    path = tmp_path / "train.csv"
    labels = ["a"] * 160 + ["b"] * 40  # imbalanced 80 / 20
    path.write_text("text,label\n" + "".join(f"row {i},{lab}\n" for i, lab in enumerate(labels)))
    from hf_finetune import templates

    _, config = resolve_config("sentiment", dataset=str(path), validation_size=0.25, test_size=0.1)
    first = data_mod.prepare(templates.load("sentiment"), config)
    second = data_mod.prepare(templates.load("sentiment"), config)
    counts = Counter(first.splits["validation"]["label"])
    assert len(first.splits["validation"]) == 45
    assert counts[0] / len(first.splits["validation"]) == pytest.approx(0.8, abs=0.03)
    assert first.splits["validation"]["text"] == second.splits["validation"]["text"]
    assert "stratified" in first.split_origin["validation"]


def test_rows_with_empty_text_or_label_are_dropped(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label\n" + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(40)) + ",a\nsome text,\n")
    from hf_finetune import templates

    _, config = resolve_config("sentiment", dataset=str(path))
    prepared = data_mod.prepare(templates.load("sentiment"), config)
    assert sum(len(s) for s in prepared.splits.values()) == 40
    assert prepared.dropped["train"] == 2


def _labelled_csv(path, n: int, start: int = 0, extra: str = "") -> None:
    path.write_text("text,label" + (",split" if extra else "") + "\n" + "".join(
        f"row {start + i},{'ab'[i % 2]}" + (f",{extra}" if extra else "") + "\n" for i in range(n)))


def test_folder_files_land_in_the_splits_datasets_gives_them(tmp_path, caplog):
    """Split words anywhere in a file name, as `datasets` reads them (eval is a test split there); a note
    beside the tables is named and left out, not read as a second format."""
    import logging

    import datasets

    folder = tmp_path / "bench"
    folder.mkdir()
    for name, n in (("sst2-train.csv", 40), ("data_dev.csv", 12), ("eval.csv", 8), ("my_test.csv", 6)):
        _labelled_csv(folder / name, n)
    own = {name: len(split) for name, split in datasets.load_dataset(str(folder)).items()}
    assert own == {"train": 40, "validation": 12, "test": 14}          # what datasets itself makes of the folder
    _, config = resolve_config("sentiment", dataset=str(folder))
    from hf_finetune import templates

    prepared = data_mod.prepare(templates.load("sentiment"), config)
    assert {name: len(split) for name, split in prepared.splits.items()} == own
    assert prepared.split_origin == {"train": "train (sst2-train.csv)", "validation": "validation (data_dev.csv)",
                                     "test": "test (eval.csv, my_test.csv)"}
    (folder / "README.txt").write_text("Where these rows come from.\n")
    with caplog.at_level(logging.WARNING, logger="hf_finetune"):
        assert len(data_mod.prepare(templates.load("sentiment"), config).splits["test"]) == 14
    assert [r.getMessage() for r in caplog.records if "README.txt" in r.getMessage()] == [
        "Ignoring 1 file(s) of bench that are not data tables: README.txt."]


def test_a_file_named_by_no_split_beside_split_files_is_refused(tmp_path):
    folder = tmp_path / "bench"
    folder.mkdir()
    _labelled_csv(folder / "train.csv", 40)
    _labelled_csv(folder / "test.csv", 10)
    _labelled_csv(folder / "holdout.csv", 10)      # datasets would leave it out; it used to be trained on
    _, config = resolve_config("sentiment", dataset=str(folder))
    from hf_finetune import templates

    with pytest.raises(DataError, match=r"Which split is holdout\.csv\?"):
        data_mod.prepare(templates.load("sentiment"), config)


def test_a_split_column_gives_the_splits_and_is_no_feature(tmp_path):
    path = tmp_path / "data.csv"
    rows = [("train", 40), ("dev", 10), ("Validation", 2), ("test", 8)]
    path.write_text("text,label,split\n" + "".join(
        f"row {word} {i},{'ab'[i % 2]},{word}\n" for word, n in rows for i in range(n)))
    from hf_finetune import templates
    from hf_finetune.data.sources import load_raw

    _, config = resolve_config("sentiment", dataset=str(path))
    raw, _, _ = load_raw(str(path), config)
    assert all("split" not in split.column_names for split in raw.values())
    prepared = data_mod.prepare(templates.load("sentiment"), config)
    assert {name: len(split) for name, split in prepared.splits.items()} == {"train": 40, "validation": 12, "test": 8}
    assert prepared.split_origin == {"train": "train (data.csv, rows with split = train)",
                                     "validation": "validation (data.csv, rows with split = Validation / dev)",
                                     "test": "test (data.csv, rows with split = test)"}
    assert all(t.startswith("row test") for t in prepared.splits["test"]["text"])
    path.write_text(path.read_text() + "row x,a,fold3\nrow y,b,\n")
    with pytest.raises(DataError, match=r"Column 'split' of data\.csv .* holds 'fold3', empty cells, which names"):
        data_mod.prepare(templates.load("sentiment"), config)
