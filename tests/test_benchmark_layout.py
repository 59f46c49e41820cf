"""Real data as users have it (issue #14): a public benchmark's usual folder layout (train.tsv, dev.tsv and a
test.tsv without labels, integer labels), written by the test from the embedded tweets; predict inputs;
split choices; label names; cards whose tables stay well-formed; output that is not wrapped."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard, parse_eval_result_entries

from hf_finetune import data as data_mod, resolve_config, templates
from hf_finetune.data.sources import load_raw
from hf_finetune.errors import DataError

from conftest import read_json, run_cli
from hub_server import HubServer

NAMES = ["negative", "neutral", "positive"]
TOKEN = "hf_benchmarkTestToken0123456789ab"


def write_tsv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    """SST-2 style: train.tsv / dev.tsv (sentence, label 0-2), test.tsv (index, sentence: no labels)."""
    _, config = resolve_config("sentiment")
    raw, _, _ = load_raw("embedded:crowdflower-tweet-sentiment", config)
    tweets = raw["train"].shuffle(seed=3).select(range(520))
    texts = [" ".join(t.split()) for t in tweets["text"]]
    labels = [NAMES.index(s) for s in tweets["sentiment"]]
    folder = tmp_path_factory.mktemp("bench") / "tweets"
    folder.mkdir()
    write_tsv(folder / "train.tsv", ["sentence", "label"], [[t, y] for t, y in zip(texts[:360], labels[:360])])
    write_tsv(folder / "dev.tsv", ["sentence", "label"], [[t, y] for t, y in zip(texts[360:440], labels[360:440])])
    write_tsv(folder / "test.tsv", ["index", "sentence"], [[i, t] for i, t in enumerate(texts[440:])])
    return folder


QUICK = ["--max-length", "32", "--max-steps", "12", "--eval-strategy", "steps", "--eval-steps", "6",
         "--per-device-train-batch-size", "16"]


@pytest.fixture(scope="module")
def run(bench, tmp_path_factory, session_env) -> Path:
    """One real run (embedded MiniLM) on the benchmark folder, label names given on the command line."""
    out = tmp_path_factory.mktemp("bench-run") / "run"
    proc = run_cli(["sentiment", "--dataset", str(bench), "--label-names", ",".join(NAMES), "--output-dir", str(out),
                    *QUICK], dict(session_env, COLUMNS="40"))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    (out.parent / "stdout.txt").write_text(proc.stdout)
    return out


def markdown_tables(text: str) -> list[list[str]]:
    """Every Markdown table of a document, as its lines."""
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables + ([current] if current else [])


def cells(line: str) -> int:
    return len(re.split(r"(?<!\\)\|", line.strip())) - 2


# -- 1. predict reads tables as training does --------------------------------------------------------------

def test_predict_reads_a_tsv_with_the_training_loader(run, bench, tmp_path, session_env):
    out = tmp_path / "pred.csv"
    proc = run_cli(["predict", str(run), "--input", str(bench / "dev.tsv"), "--output", str(out)], session_env)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    with (bench / "dev.tsv").open(encoding="utf-8") as f:
        expected = [r["sentence"] for r in csv.DictReader(f, delimiter="\t")]
    assert [r["input"] for r in rows] == expected            # no header row as input, no "\t<label>" suffix
    # 11. every class's score in its own column
    assert {f"score:{n}" for n in NAMES} <= set(rows[0])
    assert all(abs(sum(float(r[f"score:{n}"]) for n in NAMES) - 1) < 1e-3 for r in rows)
    missing = run_cli(["predict", str(run), "--input", str(bench / "dev.tsv"), "--column", "text"], session_env)
    assert missing.returncode == 1 and "no text column 'text'" in missing.stderr
    lines = tmp_path / "lines.txt"
    lines.write_text("a\nb\n")
    plain = run_cli(["predict", str(run), "--input", str(lines), "--column", "sentence"], session_env)
    assert plain.returncode == 1 and "--column" in plain.stderr


# -- 2 and 3. splits of a benchmark folder -----------------------------------------------------------------

def test_an_unlabelled_test_split_is_set_aside_and_dev_is_used(run, bench):
    info = read_json(run / "run_info.json")
    assert info["splits"]["validation"]["origin"] == "validation (dev.tsv)"
    assert info["splits"]["test"]["count"] == 80
    assert "test (test.tsv) has no labels" in info["splits"]["test"]["origin"]
    stdout = (run.parent / "stdout.txt").read_text()
    assert "test: validation (dev.tsv): split test (test.tsv) has no labels" in stdout
    card = (run / "README.md").read_text()
    assert "has no labels, so the final metrics are taken on the validation split" in card


def test_split_choices_by_name_and_by_file(bench):
    template = templates.load("sentiment")
    _, config = resolve_config("sentiment", dataset=str(bench), test_split="validation")
    prepared = data_mod.prepare(template, config)
    assert prepared.split_origin["test"] == "validation (dev.tsv)"
    assert "hold-out of train (train.tsv)" in prepared.split_origin["validation"]
    _, config = resolve_config("sentiment", dataset=str(bench), test_split="dev")     # dev.tsv became validation
    assert data_mod.prepare(template, config).split_origin["test"] == "validation (dev.tsv)"
    _, config = resolve_config("sentiment", dataset=str(bench), test_split="devv")
    with pytest.raises(DataError, match=r"validation \(dev\.tsv\)"):
        data_mod.prepare(template, config)


# -- 4. evaluate scores a foreign file whole, and the run's own data as the run did --------------------------

def test_evaluate_scores_a_single_file_whole_and_reproduces_the_runs_metrics(run, bench, tmp_path, session_env):
    other = tmp_path / "new.tsv"
    shutil.copy(bench / "dev.tsv", other)
    with other.open("a", encoding="utf-8") as f:
        f.write("an extra tweet nobody saw\t1\n")
    out = tmp_path / "eval.json"
    proc = run_cli(["evaluate", str(run), "--dataset", str(other), "--output", str(out)], session_env)
    assert proc.returncode == 0, proc.stderr
    assert read_json(out)["examples"] == 81                    # all rows, not a 10% hold-out
    own = tmp_path / "own.json"
    proc = run_cli(["evaluate", str(run), "--dataset", str(bench), "--output", str(own)], session_env)
    assert proc.returncode == 0, proc.stderr
    test = read_json(run / "metrics.json")["test"]
    assert {k: read_json(own)[k] for k in ("accuracy", "f1")} == {k: test[k] for k in ("accuracy", "f1")}


# -- 5. a held-out validation split is said so --------------------------------------------------------------

def test_a_held_out_validation_split_is_stated(bench, tmp_path, session_env, tiny_model):
    single = tmp_path / "train.tsv"
    shutil.copy(bench / "train.tsv", single)
    out = tmp_path / "run"
    proc = run_cli(["sentiment", "--model", str(tiny_model), "--dataset", str(single), "--output-dir", str(out),
                    "--label-names", ",".join(NAMES), *QUICK], session_env)
    assert proc.returncode == 0, proc.stderr
    assert "validation: stratified 10% hold-out of train (train.tsv), seed 42" in proc.stdout
    card = (out / "README.md").read_text()
    assert "held out at random from the training data" in card


# -- 6. label names ---------------------------------------------------------------------------------------

def test_integer_labels_get_names_from_the_flag_or_a_label_names_file(run, bench, tmp_path):
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(run).id2label == dict(enumerate(NAMES))
    folder = tmp_path / "named"
    shutil.copytree(bench, folder)
    (folder / "label_names.txt").write_text("\n".join(NAMES) + "\n")
    _, config = resolve_config("sentiment", dataset=str(folder))
    prepared = data_mod.prepare(templates.load("sentiment"), config)
    assert prepared.labels == NAMES and prepared.source.label_names_file == "label_names.txt"
    _, config = resolve_config("sentiment", dataset=str(bench), label_names=["negative", "positive"])
    with pytest.raises(DataError, match="only 2 label names"):
        data_mod.prepare(templates.load("sentiment"), config)


# -- 7 and 8. the card -------------------------------------------------------------------------------------

def test_card_tables_are_well_formed_and_say_where_the_data_came_from(run):
    card = (run / "README.md").read_text()
    tables = markdown_tables(card.split("---", 2)[2])
    assert len(tables) >= 6
    for table in tables:
        widths = {cells(line) for line in table}
        assert len(widths) == 1, table                     # header, rule and every row: one cell count
    assert "training loss (last logged)" in card and "| ← best |" in card
    assert "Local data `tweets`" in card and "`dev.tsv`" in card
    data = ModelCard.load(run / "README.md").data
    assert not data.eval_results                           # a local folder is no Hub data set id
    assert "more information needed" not in card.lower()
    assert yaml.safe_load((run / "run_config.yaml").read_text())["output_dir"] == str(run)
    assert f"model={str(run.resolve())!r}" in card            # the snippet works from any folder


def test_card_has_a_confusion_matrix_per_label_scores_and_errors(run):
    card = (run / "README.md").read_text()
    info = read_json(run / "run_info.json")
    analysis = info["test_analysis"]
    matrix = analysis["confusion"]
    assert sum(map(sum, matrix)) == info["splits"]["test"]["count"]
    accuracy = sum(matrix[i][i] for i in range(3)) / sum(map(sum, matrix))
    assert accuracy == pytest.approx(read_json(run / "metrics.json")["test"]["accuracy"], abs=1e-6)
    # rows are the true labels, columns the predicted ones (as the card's table heads them)
    assert [sum(row) for row in matrix] == [info["label_counts"]["test"].get(name, 0) for name in NAMES]
    for i, name in enumerate(NAMES):
        if sum(matrix[i]):
            assert analysis["per_class"][name]["recall"] == pytest.approx(matrix[i][i] / sum(matrix[i]), abs=1e-4)
    assert "### Confusion matrix (test split)" in card and (run / "confusion_matrix.png").is_file()
    assert "test F1" in card and "### Test examples it gets wrong" in card
    for error in analysis["errors"]:
        assert error["label"] != error["predicted"]
    assert "## Intended uses and limitations" in card and "Weakest label" in card


def test_card_links_follow_the_hub_in_use(run, tmp_path, cli, monkeypatch):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example.org")
    assert cli(["card", copy]).returncode == 0
    card = (copy / "README.md").read_text()
    assert "https://hub.example.org/sentence-transformers/all-MiniLM-L6-v2" in card
    assert "https://huggingface.co/sentence-transformers" not in card


def test_a_run_on_a_hub_data_set_pushes_eval_results(run, tmp_path, session_env):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    info = read_json(copy / "run_info.json")
    info["dataset"].update(hub_id="someone/tweets", name="someone/tweets", description="")
    (copy / "run_info.json").write_text(json.dumps(info))
    with HubServer(tokens={TOKEN}) as server:
        env = dict(session_env, HF_ENDPOINT=server.url, HF_TOKEN=TOKEN)
        env.pop("HF_HUB_OFFLINE", None)
        proc = run_cli(["push", str(copy), "tester/tweets"], env)
        assert proc.returncode == 0, proc.stderr
        pushed = server.files("tester/tweets")
    entries = parse_eval_result_entries(yaml.safe_load(pushed[".eval_results/someone__tweets.yaml"]))
    assert entries[0].dataset_id == "someone/tweets"
    assert entries[0].value == pytest.approx(read_json(copy / "metrics.json")["test"]["f1"], abs=1e-4)
    assert ModelCard(pushed["README.md"].decode()).data.eval_results[0].dataset_type == "someone/tweets"


# -- 9. output to a pipe is never wrapped or truncated -----------------------------------------------------

def test_piped_output_is_not_wrapped(run, session_env):
    tasks = run_cli(["tasks"], dict(session_env, COLUMNS="40"))
    assert tasks.returncode == 0 and "image-classification" in tasks.stdout and "…" not in tasks.stdout
    stdout = (run.parent / "stdout.txt").read_text()       # the run itself, piped, COLUMNS=40
    assert "…" not in stdout and "(dev.tsv): split test (test.tsv) has no labels" in stdout
    assert "training for 12 steps" in stdout


# -- 10. pull asks for main; predict follows --revision ----------------------------------------------------

def test_pull_sends_main_and_predict_takes_a_revision(run, session_env, tmp_path):
    with HubServer(tokens={TOKEN}) as server:
        env = dict(session_env, HF_ENDPOINT=server.url, HF_TOKEN=TOKEN)
        env.pop("HF_HUB_OFFLINE", None)
        assert run_cli(["push", str(run), "tester/bench", "--revision", "v1"], env).returncode == 0
        run_cli(["pull", "tester/bench"], env)
        assert any(path == "/api/models/tester/bench/revision/main" for _, path in server.requests)
        inputs = tmp_path / "in.txt"
        inputs.write_text("what a great flight\n")
        proc = run_cli(["predict", "tester/bench", "--revision", "v1", "--input", str(inputs)], env)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["label"] in NAMES
        assert any(path == "/api/models/tester/bench/revision/v1" for _, path in server.requests)


# -- 12. help and messages ---------------------------------------------------------------------------------

def test_help_shows_each_default_once_and_only_the_tasks_options(cli):
    sentiment = cli(["sentiment", "--help"]).stdout
    assert "(default:" in sentiment and not re.search(r"\(default:[^)]*\)\.? *\(default:", " ".join(sentiment.split()))
    assert "--summary-column" not in sentiment and "--label-names" in sentiment and "TSV" in sentiment
    summarization = cli(["summarization", "--help"]).stdout
    assert "--summary-column" in summarization and "--label-column" not in summarization


def test_a_tsv_without_a_header_row_says_so(bench, tmp_path, cli):
    headless = tmp_path / "train.tsv"
    headless.write_text("".join(line for line in (bench / "train.tsv").read_text().splitlines(True)[1:]))
    proc = cli(["sentiment", "--dataset", headless])
    assert proc.returncode == 1 and "no header row" in proc.stderr and "--text-column" not in proc.stderr
