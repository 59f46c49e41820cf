"""Image classification on an image folder the test writes itself (tiny random ViT: plumbing only)."""

from __future__ import annotations

import json


from hf_finetune import finetune
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
