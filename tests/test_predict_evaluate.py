"""`predict` and `evaluate` on runs of every kind of task (tiny models: plumbing only)."""

from __future__ import annotations

import csv
import json

import pytest

from hf_finetune import finetune

from conftest import read_json, run_cli


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model, tiny_seq2seq, tiny_vit, tiny_run, tiny_run_data):
    """One finished run per kind of task (the session's tiny run for sentiment)."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("kinds")
    tagged = root / "tagged.csv"   # multi-label: any number of labels per text, separated by ";"
    tagged.write_text("text,labels\n" + "".join(f"cheap and good {i},price;quality\ncheap {i},price\n"
                                               f"good {i},quality\nplain {i},\n" for i in range(15)))
    scored = root / "scored.csv"   # regression: one number per text
    scored.write_text("text,score\n" + "".join(f"{'great ' * (i % 5)}day {i},{i % 5 + 0.5}\n" for i in range(60)))
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
        "sentiment": (tiny_run, tiny_run_data),
        "multi-label": (finetune("multi-label", model=str(tiny_model), dataset=str(tagged), label_separator=";",
                                 max_length=16, output_dir=str(root / "t"), **common).output_dir, tagged),
        "regression": (finetune("regression", model=str(tiny_model), dataset=str(scored), target_unit="points",
                                max_length=16, output_dir=str(root / "r"), **common).output_dir, scored),
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
                                           ("image-classification", ("accuracy", "f1")),
                                           ("multi-label", ("f1_micro", "f1_macro", "threshold")),
                                           ("regression", ("mse", "pearson"))])
def test_evaluate_reproduces_the_runs_own_test_metrics(task, metrics, runs, tmp_path, session_env):
    run, dataset = runs[task]
    out = tmp_path / "eval.json"
    proc = run_cli(["evaluate", str(run), "--dataset", str(dataset), "--output", str(out)], session_env)
    assert proc.returncode == 0, proc.stderr
    result, saved = json.loads(out.read_text()), read_json(run / "metrics.json")["test"]
    assert result["examples"] == read_json(run / "run_info.json")["splits"]["test"]["count"]
    # within float noise (batches padded differently round differently); one flipped prediction moves 1/n
    assert {m: result[m] for m in metrics} == pytest.approx({m: saved[m] for m in metrics}, rel=1e-4)
    assert result["loss"] == pytest.approx(saved["loss"], rel=1e-4)


def test_predict_multi_label_sets_and_regression_units(runs, tmp_path, session_env):
    """Each kind answers in its own terms: the labels whose sigmoid score reaches the run's saved threshold; a
    number mapped back to the target's units with the run's saved scaling."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    inputs = tmp_path / "in.txt"
    inputs.write_text("cheap and good 99\nplain 99\n")
    tagged, _ = runs["multi-label"]
    proc = run_cli(["predict", str(tagged), "--input", str(inputs)], session_env)
    assert proc.returncode == 0, proc.stderr
    saved = read_json(tagged / "config.json")
    thresholds = dict(zip(saved["id2label"].values(), saved["multi_label_thresholds"], strict=True))
    for row in map(json.loads, proc.stdout.splitlines()):
        assert set(row["scores"]) == {"price", "quality"} and row["threshold"] == saved["multi_label_threshold"]
        assert row["labels"] == [name for name, p in row["scores"].items() if p >= thresholds[name]]
    scored, _ = runs["regression"]
    proc = run_cli(["predict", str(scored), "--input", str(inputs)], session_env)
    assert proc.returncode == 0, proc.stderr
    scaling = read_json(scored / "config.json")["regression_target"]
    tokenizer, model = AutoTokenizer.from_pretrained(scored), AutoModelForSequenceClassification.from_pretrained(scored)
    with torch.inference_mode():
        raw = model(**tokenizer(["cheap and good 99", "plain 99"], return_tensors="pt", padding=True)).logits[:, 0]
    assert [row["score"] for row in map(json.loads, proc.stdout.splitlines())] == pytest.approx(
        (raw * scaling["std"] + scaling["mean"]).tolist(), abs=1e-4)
