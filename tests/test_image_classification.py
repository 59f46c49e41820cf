"""Image classification on an image folder the test writes itself (tiny random ViT: plumbing only)."""

from __future__ import annotations

import json


import logging

from hf_finetune import data as data_mod, finetune, resolve_config
from hf_finetune.cli import main

from conftest import read_json


def test_image_folder_run_skips_the_corrupt_file_and_loads_in_pipeline(tiny_vit, image_folder, tmp_path, caplog):
    result = finetune("image-classification", model=str(tiny_vit), dataset=str(image_folder),
                      output_dir=str(tmp_path / "out"), num_train_epochs=1, per_device_train_batch_size=8,
                      dataloader_num_workers=0, logging_steps=2)
    out = result.output_dir
    assert result.labels == ["blue", "red"]
    assert "broken.png" in caplog.text            # reported by path, then skipped
    info = read_json(out / "run_info.json")
    assert sum(s["count"] for s in info["splits"].values()) == 48
    baseline = info["baseline"]    # the majority class, and a plain SVC on pixels, on the same test split
    assert baseline["name"].startswith("majority class") and baseline["also"][0]["name"].startswith("SVC")
    assert baseline["also"][0]["metrics"]["accuracy"] > baseline["metrics"]["accuracy"]   # red vs blue: colour
    # it learned (red vs blue, every test image right): no learned-nothing warning, in the metrics or the card
    assert result.metrics["learning_check"] == {"learned_nothing": False, "behind_a_baseline": False, "findings": []}
    assert "Warning:" not in (out / "README.md").read_text()
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "blue", "1": "red"}
    assert (out / "preprocessor_config.json").exists() and (out / "example.png").exists()

    from transformers import pipeline
    from PIL import Image

    classifier = pipeline("image-classification", model=str(out))
    predictions = classifier(Image.open(out / "example.png"))
    assert {p["label"] for p in predictions} == {"blue", "red"}
    card = (out / "README.md").read_text()
    assert 'pipeline("image-classification"' in card and "example.png" in card
    assert "| image_augmentation | crop+flip |" in card          # what shaped the training images, on the card


def test_csv_with_image_paths(tiny_vit, image_folder, tmp_path):
    rows = ["file,species"] + [f"{p.relative_to(image_folder)},{p.parent.name}"
                               for p in sorted(image_folder.rglob("*_*.png"))]
    (image_folder / "labels.csv").write_text("\n".join(rows))
    result = finetune("image-classification", model=str(tiny_vit), dataset=str(image_folder / "labels.csv"),
                      output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=8,
                      dataloader_num_workers=0)
    assert result.labels == ["blue", "red"]
    info = read_json(result.output_dir / "run_info.json")
    assert info["columns"] == {"image": "file", "label": "species"}
    assert sum(s["count"] for s in info["splits"].values()) == 48          # every listed file, by its path
    matrix = info["test_analysis"]["confusion"]                              # the test images were all scored
    assert sum(map(sum, matrix)) == info["splits"]["test"]["count"]


def test_only_corrupt_images_is_a_clear_error(tiny_vit, tmp_path, capsys):
    root = tmp_path / "bad"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(4):
            (root / label / f"{i}.png").write_bytes(b"")
    code = main(["image-classification", "--model", str(tiny_vit), "--dataset", str(root),
                 "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and "No readable image" in err
    assert not (tmp_path / "out").exists()


def test_stray_files_in_an_image_folder_are_named_once_not_read_as_text(image_folder, caplog):
    """A README, a note, macOS and Windows system files at the top and inside class folders: still an image
    folder (not a text data set made of the note), the left-out files named in one warning line."""
    for stray in ("README.md", "notes.txt", ".DS_Store", "Thumbs.db", "red/Thumbs.db", "blue/.DS_Store",
                  "blue/about.txt"):
        (image_folder / stray).write_text("not an image")
    template, config = resolve_config("image-classification", dataset=str(image_folder))
    with caplog.at_level(logging.WARNING, logger="hf_finetune"):
        prepared = data_mod.prepare(template, config)
    assert prepared.labels == ["blue", "red"] and prepared.columns == {"image": "image", "label": "label"}
    assert sum(len(s) for s in prepared.splits.values()) == 49           # 48 images and the corrupt one
    lines = [r.getMessage() for r in caplog.records if "not images" in r.getMessage()]
    assert len(lines) == 1, lines
    for stray in ("README.md", "notes.txt", ".DS_Store", "Thumbs.db", "red/Thumbs.db", "blue/about.txt"):
        assert stray in lines[0]


def test_tables_beside_class_folders_of_images_are_one_clear_error(tiny_vit, image_folder, tmp_path, capsys):
    (image_folder / "train.csv").write_text("text,label\n" + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(20)))
    code = main(["image-classification", "--model", str(tiny_vit), "--dataset", str(image_folder),
                 "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and "holds two kinds of data: tables (train.csv) and folders of images (blue/, red/)" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()
    # a table that names the images beside it is one data set: read as the table
    rows = [f"{p.relative_to(image_folder)},{p.parent.name}" for p in sorted(image_folder.rglob("*_*.png"))]
    (image_folder / "train.csv").write_text("file,species\n" + "\n".join(rows))
    template, config = resolve_config("image-classification", dataset=str(image_folder))
    prepared = data_mod.prepare(template, config)
    assert prepared.columns == {"image": "file", "label": "species"} and prepared.labels == ["blue", "red"]


def test_shift_augmentation_moves_a_digit_and_keeps_every_stroke():
    """The digits default trains with 'shift': a random crop would cut strokes off (and a flip make
    another glyph), so what must hold is that the ink is moved, not lost."""
    import random

    import numpy as np
    from PIL import Image, ImageDraw

    from hf_finetune.config import RunConfig
    from hf_finetune.kinds.image_classification import random_shift

    digit = Image.new("L", (64, 64))
    ImageDraw.Draw(digit).rectangle((24, 16, 40, 48), outline=255, width=4)   # a "0", away from the border
    ink = np.asarray(digit, dtype=float).sum()
    shifted = [np.asarray(random_shift(digit, random.Random(seed)), dtype=float) for seed in range(20)]
    assert all(s.shape == (64, 64) for s in shifted)
    assert all(abs(s.sum() - ink) / ink < 0.1 for s in shifted)              # every stroke is still there
    moved = [np.abs(s - np.asarray(digit, dtype=float)).sum() / ink for s in shifted]
    assert min(moved) > 0.05                                                  # ... and moved each time
    assert len({round(m, 3) for m in moved}) > 10                             # by a different amount

    # and the training transform applies it (validation and test images are left as they are)
    from types import SimpleNamespace

    from datasets import Dataset
    from transformers import ViTImageProcessor

    from hf_finetune.kinds.image_classification import ImageClassification

    def first_pixels(augmentation: str, split: str) -> list:
        data = SimpleNamespace(splits={split: Dataset.from_dict({"image": [digit], "label": [0]})}, dropped={})
        prepared, _ = ImageClassification().preprocess(data, ViTImageProcessor(size={"height": 32, "width": 32}),
                                                       RunConfig(image_augmentation=augmentation))
        return [prepared[split][0]["pixel_values"] for _ in range(3)]

    train = first_pixels("shift", "train")
    assert not (train[0] == train[1]).all() and not (train[1] == train[2]).all()
    assert all((p == first_pixels("none", "train")[0]).all() for p in first_pixels("none", "train"))
    assert all((p == first_pixels("shift", "test")[0]).all() for p in first_pixels("shift", "test"))
    # the kind's own prepare_model (which reseeds the shifts) keeps the shared one's loss fix (see test_ddp)
    model = SimpleNamespace()
    ImageClassification().prepare_model(model, RunConfig())
    assert model.accepts_loss_kwargs is False


def test_searched_run_with_augmentation_reproduces_its_best_trial(tiny_vit, image_folder, tmp_path):
    """Random shifts drawn in this process (no loader workers): the trials before must not move the
    generator on, or the run trained with the best trial's values sees other images than the trial did."""
    import pytest

    out = tmp_path / "out"
    finetune("image-classification", model=str(tiny_vit), dataset=str(image_folder), output_dir=str(out),
             hp_search=2, per_device_train_batch_size=8, dataloader_num_workers=0, image_augmentation="shift",
             eval_strategy="epoch")
    search = read_json(out / "run_info.json")["hp_search"]
    best = search["trials"][search["best_trial"]]
    assert read_json(out / "metrics.json")["validation"]["loss"] == pytest.approx(best["validation_loss"], abs=1e-6)


def test_small_images_are_not_enlarged_to_the_models_size_and_the_choice_is_said(image_folder, tmp_path, capsys):
    """20 px images and a convolutional model made for 224 px: trained at 64 px (the floor), not 224 (12x the
    pixels), said in the output and the card, repeated by run_config.yaml, saved in the preprocessor."""
    import torch
    import yaml
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetForImageClassification

    model = tmp_path / "tiny-resnet"
    torch.manual_seed(0)
    ResNetForImageClassification(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                                              num_labels=2)).save_pretrained(model)
    ConvNextImageProcessor(size={"shortest_edge": 224}).save_pretrained(model)
    out = tmp_path / "out"
    assert main(["image-classification", "--model", str(model), "--dataset", str(image_folder), "--output-dir",
                 str(out), "--max-steps", "2", "--per-device-train-batch-size", "8",
                 "--dataloader-num-workers", "0"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "chosen from the data: image size 64 px" in said and "median shorter side 20 px" in said
    assert yaml.safe_load((out / "run_config.yaml").read_text())["image_size"] == 64
    assert read_json(out / "preprocessor_config.json")["size"] == {"shortest_edge": 64}
    assert "image size 64 px" in (out / "README.md").read_text()
