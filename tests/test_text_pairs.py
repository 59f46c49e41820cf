"""Text pairs (NLI, paraphrase, STS): two text columns read as one input, `tokenizer(text, text_pair)`, for the
classification and regression templates; through training, the run record, `predict`, `evaluate`, the card
and the baselines. The data's label depends on the SECOND text only, so a run that dropped it could not learn
it (and its TF-IDF baseline would sit at chance)."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import read_json, run_cli

FIRSTS = ["the cat sat on the mat", "a man is playing a guitar", "the train left the station early",
          "she bought fresh bread", "the children ran to the park"]
SAME = "yes exactly what happened there"
OTHER = "no something else entirely"


def pair_rows(n: int = 80) -> list[tuple[str, str, str]]:
    """(sentence1, sentence2, label): every first sentence comes with both labels, the second decides."""
    rows = []
    for i in range(n):
        same = (i // len(FIRSTS)) % 2 == 0
        rows.append((FIRSTS[i % len(FIRSTS)], f"{SAME if same else OTHER} {i}", "paraphrase" if same else "different"))
    return rows


def write_pairs_csv(path: Path, first: str = "sentence1", second: str = "sentence2") -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([first, second, "label"])
        writer.writerows(pair_rows())
    return path


def write_scored_pairs_jsonl(path: Path) -> Path:
    """STS-like: a similarity score from 1 to 5, as many times "same" in the second sentence."""
    lines = []
    for i in range(80):
        score = 1 + (i // len(FIRSTS)) % 5
        lines.append(json.dumps({"sentence1": FIRSTS[i % len(FIRSTS)], "sentence2": " ".join(["same"] * score)
                                 + f" {i}", "score": float(score)}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


TINY = ["--max-length", "32", "--num-train-epochs", "1", "--per-device-train-batch-size", "16"]


@pytest.fixture(scope="module")
def pair_data(tmp_path_factory) -> Path:
    return write_pairs_csv(tmp_path_factory.mktemp("pairs") / "pairs.csv")


@pytest.fixture(scope="module")
def pair_run(tmp_path_factory, session_env, tiny_model, pair_data):
    """A classification run on a pair named with --text-column FIRST,SECOND."""
    out = tmp_path_factory.mktemp("pair-run") / "run"
    proc = run_cli(["sentiment", "--model", tiny_model, "--dataset", pair_data, "--text-column", "sentence1,sentence2",
                    "--output-dir", out, *TINY], session_env)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    return out, proc.stdout


@pytest.fixture(scope="module")
def scored_pair_run(tmp_path_factory, session_env, tiny_model):
    """A regression run on sentence1 / sentence2 with no --text-column: the pair is found by its names."""
    data = write_scored_pairs_jsonl(tmp_path_factory.mktemp("sts") / "sts.jsonl")
    out = tmp_path_factory.mktemp("sts-run") / "run"
    proc = run_cli(["regression", "--model", tiny_model, "--dataset", data, "--output-dir", out, *TINY], session_env)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    return out, proc.stdout, data


def test_a_named_pair_is_trained_on_and_recorded_for_later_commands(pair_run):
    run, stdout = pair_run
    assert "text pair: sentence1 + sentence2" in stdout
    assert yaml.safe_load((run / "run_config.yaml").read_text())["text_column"] == "sentence1,sentence2"
    info = read_json(run / "run_info.json")
    assert info["columns"] == {"text": "sentence1", "text_pair": "sentence2", "label": "label"}
    assert set(info["example_input"]) == {"text", "text_pair"}
    assert info["example_input"]["text"] in FIRSTS and info["example_input"]["text_pair"].startswith(("yes", "no"))


def test_a_pair_is_found_by_its_common_names_without_text_column(scored_pair_run):
    run, stdout, _ = scored_pair_run
    assert "text pair: sentence1 + sentence2" in stdout
    assert read_json(run / "run_info.json")["columns"] == {"text": "sentence1", "text_pair": "sentence2",
                                                          "target": "score"}


def test_the_pair_is_tokenized_as_one_input_with_both_texts(pair_data, tiny_model):
    """Both texts in input_ids (two [SEP]), the second marked by token_type_ids; lengths (and so the length
    buckets and the card's token figures) count both."""
    from transformers import AutoTokenizer

    from hf_finetune import data as data_mod, kinds, resolve_config

    template, config = resolve_config("sentiment", dataset=str(pair_data), text_column="sentence1,sentence2",
                                      max_length=32)
    prepared = data_mod.prepare(template, config)
    assert prepared.splits["train"].column_names == ["text", "text_pair", "label"]
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    tokenized, _ = kinds.get(template.kind)(template).preprocess(prepared, tokenizer, config)
    train = tokenized["train"]
    for row, source in zip(train, prepared.splits["train"]):
        assert row["input_ids"].count(tokenizer.sep_token_id) == 2
        decoded = tokenizer.decode(row["input_ids"], skip_special_tokens=True)
        assert decoded == f"{source['text']} {source['text_pair']}"
        second = [t for t, kind in zip(row["input_ids"], row["token_type_ids"]) if kind == 1]
        assert tokenizer.decode(second, skip_special_tokens=True) == source["text_pair"]


def test_truncation_keeps_part_of_both_texts(tmp_path, tiny_model):
    from transformers import AutoTokenizer

    from hf_finetune import data as data_mod, kinds, resolve_config

    data = tmp_path / "long.csv"
    data.write_text("premise,hypothesis,label\n" + "".join(
        f"{'a long premise that goes on ' * 10},short hypothesis {i},{i % 2}\n" for i in range(20)))
    template, config = resolve_config("sentiment", dataset=str(data), max_length=16)
    prepared = data_mod.prepare(template, config)
    assert prepared.columns["text_pair"] == "hypothesis"
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    tokenized, _ = kinds.get(template.kind)(template).preprocess(prepared, tokenizer, config)
    row = tokenized["train"][0]
    assert len(row["input_ids"]) == 16 and row["input_ids"].count(tokenizer.sep_token_id) == 2
    second = [t for t, kind in zip(row["input_ids"], row["token_type_ids"]) if kind == 1]
    assert tokenizer.decode(second, skip_special_tokens=True).startswith("short hypothesis")


def test_the_tfidf_baseline_reads_both_texts(pair_run):
    """The label is in the second text only: TF-IDF on the first alone would be at chance."""
    run, stdout = pair_run
    also = read_json(run / "run_info.json")["baseline"]["also"][0]
    assert "two texts" in also["name"]
    assert also["metrics"]["accuracy"] == 1.0


def test_predict_reads_pairs_from_a_table_and_from_tab_separated_lines(pair_run, pair_data, tmp_path, session_env,
                                                                      monkeypatch, cli):
    run, _ = pair_run
    proc = run_cli(["predict", run, "--input", pair_data], session_env)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    pairs = [(a, b) for a, b, _ in pair_rows()]
    assert [(r["input"], r["input_pair"]) for r in rows] == pairs
    # the same answers as transformers' own pipeline given the pairs
    from transformers import pipeline

    expected = pipeline("text-classification", model=str(run))([{"text": a, "text_pair": b} for a, b in pairs])
    assert [r["label"] for r in rows] == [e["label"] for e in expected]
    assert [r["score"] for r in rows] == pytest.approx([e["score"] for e in expected], abs=1e-5)
    # a pair per line, its two texts separated by a tab (standard input here; a .txt file reads the same)
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(f"{a}\t{b}\n" for a, b in pairs[:3])))
    result = cli(["predict", run, "--input", "-"])
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == rows[:3]


def test_predict_refuses_a_line_that_is_not_a_pair(pair_run, tmp_path, cli):
    run, _ = pair_run
    lines = tmp_path / "in.txt"
    lines.write_text("the cat sat\tyes exactly\njust one text here\n")
    result = cli(["predict", run, "--input", lines])
    assert result.returncode != 0
    assert "Line 2 of in.txt" in result.stderr and "tab" in result.stderr and "Traceback" not in result.stderr


def test_predict_regression_pairs_in_the_targets_units(scored_pair_run):
    run, _, data = scored_pair_run
    proc = subprocess.run([sys.executable, "-m", "hf_finetune", "predict", str(run), "--input", "-"],
                          input="the cat sat on the mat\tsame same same 3\n", capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    (row,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert row["input"] == "the cat sat on the mat" and row["input_pair"] == "same same same 3"
    # the pipeline given the same pair, mapped back to the score's units with the saved scaling
    from transformers import pipeline

    regressor = pipeline("text-classification", model=str(run), function_to_apply="none")
    scaling = regressor.model.config.regression_target
    raw = regressor({"text": row["input"], "text_pair": row["input_pair"]})["score"]
    assert row["score"] == pytest.approx(raw * scaling["std"] + scaling["mean"], abs=1e-4)


def test_the_card_names_the_pair_and_its_snippet_runs_on_a_pair(pair_run, scored_pair_run, capsys):
    printed = {}
    for name, run in (("classifier", pair_run[0]), ("regressor", scored_pair_run[0])):
        card = (run / "README.md").read_text()
        assert "`sentence1` and `sentence2`" in card
        snippet = re.search(r"```python\n(.*?)```", card, re.S).group(1)
        assert "'text_pair'" in snippet or '"text_pair"' in snippet
        capsys.readouterr()
        exec(compile(snippet, "card-snippet", "exec"), {})   # the card's usage example, as a reader runs it
        printed[name] = capsys.readouterr().out.strip()
    assert re.fullmatch(r"\{'label': '(paraphrase|different)', 'score': [0-9.e-]+\}", printed["classifier"])
    assert re.fullmatch(r"-?[0-9.]+(e-?[0-9]+)?", printed["regressor"])


def test_evaluate_the_saved_run_reads_its_pair(pair_run, scored_pair_run, pair_data, tmp_path, cli):
    run, _ = pair_run
    result = cli(["evaluate", run, "--dataset", pair_data])
    assert result.returncode == 0, result.stderr
    test_metrics = read_json(run / "metrics.json")["test"]
    assert f"{test_metrics['accuracy']:.4f}" in result.stdout
    # a pair found by its names: data with one text column is refused, not scored as if it were a pair
    single = tmp_path / "single.jsonl"
    single.write_text("".join(json.dumps({"text": f"same same {i}", "score": 2.0 + i % 2}) + "\n" for i in range(10)))
    result = cli(["evaluate", scored_pair_run[0], "--dataset", single])
    assert result.returncode != 0
    assert "trained on text pairs (sentence1, sentence2)" in result.stderr and "--text-column FIRST,SECOND" in \
        result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("task, model", [("multi-label", "tiny_model"), ("summarization", "tiny_seq2seq")])
def test_a_pair_for_a_task_that_reads_one_text_is_one_clear_error(task, model, tmp_path, request, cli):
    data = tmp_path / "pairs.csv"
    data.write_text("sentence1,sentence2,labels,summary\n" + "".join(f"a {i},b {i},x,s {i}\n" for i in range(20)))
    result = cli([task, "--model", request.getfixturevalue(model), "--dataset", data,
                  "--text-column", "sentence1,sentence2",
                  "--output-dir", tmp_path / "out"])
    assert result.returncode != 0
    assert "text pair" in result.stderr and "one text" in result.stderr and "Traceback" not in result.stderr


def test_one_half_of_a_known_pair_named_alone_is_warned_about(tmp_path, caplog):
    from hf_finetune import data as data_mod, resolve_config

    data = write_pairs_csv(tmp_path / "pairs.csv")
    with caplog.at_level("WARNING", logger="hf_finetune"):
        prepared = data_mod.prepare(*resolve_config("sentiment", dataset=str(data), text_column="sentence1"))
    assert "text_pair" not in prepared.columns
    assert "--text-column sentence1,sentence2" in caplog.text


def test_a_config_file_names_a_pair_as_the_flag_does(tmp_path):
    from hf_finetune import resolve_config

    for value in ("sentence1,sentence2", "[sentence1, sentence2]"):
        config_file = tmp_path / "run.yaml"
        config_file.write_text(f"text_column: {value}\n")
        assert resolve_config("sentiment", config=config_file)[1].text_column == "sentence1,sentence2"
