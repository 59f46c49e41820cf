"""`predict` and `evaluate` on runs of all three tasks (tiny models: plumbing only)."""

from __future__ import annotations

import csv
import json

import pytest

from hf_finetune import finetune

from conftest import read_json, run_cli


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model, tiny_seq2seq, tiny_vit):
    """One finished run per task."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("three")
    reviews = root / "reviews.csv"
    reviews.write_text("text,label\n" + "".join(f"good thing {i},pos\nbad thing {i},neg\n" for i in range(30)))
    news = root / "news.jsonl"
    news.write_text("\n".join(json.dumps({"document": f"Long report number {i}. It has details.",
                                          "summary": f"Report {i}."}) for i in range(40)))
    photos = root / "photos"
    for label, value in (("dark", 30), ("light", 220)):
        (photos / label).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(np.full((16, 16, 3), value + i, dtype="uint8")).save(photos / label / f"{i}.png")
    common = dict(num_train_epochs=1, per_device_train_batch_size=8)
    return {
        "sentiment": (finetune("sentiment", model=str(tiny_model), dataset=str(reviews), max_length=16,
                               output_dir=str(root / "s"), **common).output_dir, reviews),
        "summarization": (finetune("summarization", model=str(tiny_seq2seq), dataset=str(news), max_length=32,
                                   output_dir=str(root / "m"), **common).output_dir, news),
        "image-classification": (finetune("image-classification", model=str(tiny_vit), dataset=str(photos),
                                          dataloader_num_workers=0, output_dir=str(root / "i"), **common).output_dir,
                                 photos),
    }


def test_predict_text_lines_to_jsonl_and_csv(runs, tmp_path, session_env):
    run, _ = runs["sentiment"]
    inputs = tmp_path / "in.txt"
    inputs.write_text("good thing\nbad thing\nanother one\n")
    proc = run_cli(["predict", str(run), "--input", str(inputs)], session_env)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    # the same answers as transformers' own pipeline on the saved model
    from transformers import pipeline

    expected = pipeline("text-classification", model=str(run))(["good thing", "bad thing", "another one"])
    assert [r["label"] for r in rows] == [e["label"] for e in expected]
    assert [r["score"] for r in rows] == pytest.approx([e["score"] for e in expected], abs=1e-5)
    assert all(r["scores"][r["label"]] == r["score"] for r in rows)
    out = tmp_path / "pred.csv"
    assert run_cli(["predict", str(run), "--input", str(inputs), "--output", str(out)], session_env).returncode == 0
    assert [r["input"] for r in csv.DictReader(out.open())] == ["good thing", "bad thing", "another one"]


def test_predict_summaries_from_jsonl(runs, tmp_path, session_env):
    run, _ = runs["summarization"]
    inputs = tmp_path / "docs.jsonl"
    inputs.write_text(json.dumps({"document": "Long report number 99. It has details."}) + "\n")
    proc = run_cli(["predict", str(run), "--input", str(inputs), "--column", "document"], session_env)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    # what the saved model generates with its own generation config, as the card's snippet does it
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    prefix = read_json(run / "run_info.json")["prefix"]
    assert prefix == "summarize: "   # a T5: the template's family prefix, which the card's snippet adds too
    tokenizer, model = AutoTokenizer.from_pretrained(run), AutoModelForSeq2SeqLM.from_pretrained(run)
    enc = tokenizer(prefix + "Long report number 99. It has details.", return_tensors="pt")
    ids = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    assert row == {"input": "Long report number 99. It has details.",
                   "summary": tokenizer.decode(ids[0], skip_special_tokens=True).strip()}


def test_predict_image_paths(runs, tmp_path, session_env):
    run, photos = runs["image-classification"]
    listing = tmp_path / "images.txt"
    listing.write_text(f"{photos / 'dark' / '0.png'}\n{photos / 'light' / '3.png'}\n")
    proc = run_cli(["predict", str(run), "--input", str(listing)], session_env)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    from PIL import Image
    from transformers import pipeline

    classifier = pipeline("image-classification", model=str(run))
    expected = [classifier(Image.open(p).convert("RGB"))[0] for p in (photos / "dark" / "0.png", photos / "light" / "3.png")]
    assert [r["label"] for r in rows] == [e["label"] for e in expected]
    assert [r["score"] for r in rows] == pytest.approx([e["score"] for e in expected], abs=1e-5)


@pytest.mark.parametrize("task, metrics", [("sentiment", ("accuracy", "f1")), ("summarization", ("rougeLsum",)),
                                           ("image-classification", ("accuracy", "f1"))])
def test_evaluate_reproduces_the_runs_own_test_metrics(task, metrics, runs, tmp_path, session_env):
    run, dataset = runs[task]
    out = tmp_path / "eval.json"
    proc = run_cli(["evaluate", str(run), "--dataset", str(dataset), "--output", str(out)], session_env)
    assert proc.returncode == 0, proc.stderr
    result, saved = json.loads(out.read_text()), read_json(run / "metrics.json")["test"]
    assert result["examples"] == read_json(run / "run_info.json")["splits"]["test"]["count"]
    assert {m: result[m] for m in metrics} == {m: saved[m] for m in metrics}
    assert result["loss"] == pytest.approx(saved["loss"], rel=1e-4)
