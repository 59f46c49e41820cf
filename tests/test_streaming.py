"""--streaming: training rows read as training goes (a local JSON Lines file, a Hub data set served by the tests'
Hub server), never downloaded or tokenized whole; validation / test from the data's own splits or the stream's
first rows; label names known before the stream is read; misuse refused with one message; a killed streamed run
resumes where its stream stopped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import read_json, run_cli
from hub_server import HubServer

TOKEN = "hf_streamTestToken_0a1b2c3d4e5f"
GOOD = ["great product", "really happy with it", "excellent value", "love it", "works well"]
BAD = ["broke quickly", "waste of money", "terrible quality", "arrived damaged", "worst ever"]


def write_rows(path: Path, rows: int, odd: dict[int, str] | None = None) -> Path:
    """``rows`` labelled reviews, one JSON object per line; ``odd``: row number (1-based) -> another label."""
    with path.open("w", encoding="utf-8") as f:
        for i in range(rows):
            label = (odd or {}).get(i + 1) or ("pos" if (i * 7) % 3 else "neg")
            words = GOOD if label == "pos" else BAD
            f.write(json.dumps({"review": f"{words[i % len(words)]} #{i}", "label": label}) + "\n")
    return path


QUICK = ["--max-length", "16", "--per-device-train-batch-size", "16", "--per-device-eval-batch-size", "64",
         "--no-linear-probe", "--max-eval-samples", "40", "--max-test-samples", "40", "--early-stopping-patience", "0"]


def own_env(session_env: dict, tmp_path: Path, **extra: str) -> dict:
    """A Hub home and caches of this test's own, so what a run downloaded or cached can be looked at."""
    return dict(session_env, HF_HOME=str(tmp_path / "hf_home"), HF_FINETUNE_CACHE=str(tmp_path / "cache"), **extra)


# -- refused ------------------------------------------------------------------------------------------------------


def test_streaming_needs_max_steps(cli, tiny_model, tmp_path):
    data = write_rows(tmp_path / "rows.jsonl", 50)
    proc = cli(["sentiment", "--model", tiny_model, "--dataset", data, "--streaming", "--output-dir", tmp_path / "o"])
    assert proc.returncode != 0
    assert "--max-steps" in proc.stderr + proc.stdout and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_streaming_refuses_what_needs_all_rows(cli, tiny_model, tmp_path):
    """A search over the whole stream, a split column (read every row to find the splits), a task whose targets
    are prepared over the whole split, the small embedded data set: each one message, non-zero, nothing written."""
    data = write_rows(tmp_path / "rows.jsonl", 50)
    search = cli(["sentiment", "--model", tiny_model, "--dataset", data, "--streaming", "--max-steps", "4",
                  "--hp-search", "3", "--output-dir", tmp_path / "a"])
    assert search.returncode != 0 and "--hp-search can't be combined with --streaming" in search.stderr + search.stdout

    with_split = tmp_path / "split.jsonl"
    with_split.write_text("\n".join(json.dumps({"text": f"t {i}", "label": i % 2, "split": "train"}) for i in range(50)))
    split = cli(["sentiment", "--model", tiny_model, "--dataset", with_split, "--streaming", "--max-steps", "4",
                 "--output-dir", tmp_path / "b"])
    assert split.returncode != 0 and "'split' column" in split.stderr + split.stdout

    numbers = tmp_path / "numbers.jsonl"
    numbers.write_text("\n".join(json.dumps({"text": f"t {i}", "target": i / 7}) for i in range(50)))
    regression = cli(["regression", "--model", tiny_model, "--dataset", numbers, "--streaming", "--max-steps", "4",
                      "--output-dir", tmp_path / "c"])
    assert regression.returncode != 0
    assert "--streaming is not available for the regression task" in regression.stderr + regression.stdout

    embedded = cli(["sentiment", "--model", tiny_model, "--streaming", "--max-steps", "4", "--output-dir", tmp_path / "d"])
    assert embedded.returncode != 0 and "embedded data set" in embedded.stderr + embedded.stdout
    for out in "abcd":
        assert not (tmp_path / out).exists()
    for proc in (search, split, regression, embedded):
        assert "Traceback" not in proc.stderr and "Unexpected error" not in proc.stderr + proc.stdout


def test_streaming_is_an_option_of_config_files_and_the_api(tmp_path):
    """One RunConfig field: a config file's `streaming: true` and the API's keyword are checked alike."""
    from hf_finetune import api
    from hf_finetune.config import streaming_schedule
    from hf_finetune.errors import ConfigError

    with pytest.raises(ConfigError, match="--max-steps"):
        api.resolve_config("sentiment", streaming=True)
    config_file = tmp_path / "run.yaml"
    config_file.write_text("streaming: true\nmax_steps: 50\ndataset: reviews.jsonl\n")
    _, config = api.resolve_config("sentiment", config=config_file)
    assert config.streaming and config.max_steps == 50
    streamed, note = streaming_schedule(config)
    assert (streamed.eval_strategy, streamed.eval_steps) == ("steps", 12) and "every 12 steps" in note


def test_a_folder_of_split_files_streams_each_split(tmp_path):
    """A folder's split files (train.jsonl, dev.jsonl) are found by their names, as without --streaming: the dev
    file's first rows are the validation split, the test rows are held out of the training stream, and the
    stream yields role-named rows with label ids (the label names from a label_names.txt beside the data)."""
    from hf_finetune import api, data

    folder = tmp_path / "reviews"
    folder.mkdir()
    for name, rows in (("train.jsonl", 300), ("dev.jsonl", 100)):
        (folder / name).write_text("\n".join(json.dumps({"sentence": f"text {i}", "stars": i % 2})
                                             for i in range(rows)) + "\n")
    (folder / "label_names.txt").write_text("bad\ngood\n")
    template, config = api.resolve_config("sentiment", dataset=str(folder), streaming=True, max_steps=5,
                                          max_eval_samples=30, max_test_samples=20)
    prepared = data.prepare(template, config)
    assert prepared.split_origin["validation"] == "validation (dev.jsonl), its first 30 rows (--max-eval-samples)"
    assert prepared.split_origin["test"].startswith("hold-out of rows 1-20 of the train (train.jsonl) stream")
    assert {k: len(v) for k, v in prepared.splits.items()} == {"train": 280, "validation": 30, "test": 20}
    assert prepared.labels == ["bad", "good"]
    assert any("from label_names.txt beside the data" in note for note in prepared.notes)
    rows = list(prepared.stream)
    assert len(rows) == 280 and {row["label"] for row in rows} == {0, 1}
    assert sorted(int(row["text"].split()[1]) for row in rows) == list(range(20, 300))   # held-out rows not trained on
    assert all(row["label"] == int(row["text"].split()[1]) % 2 for row in rows)


# -- a local file -------------------------------------------------------------------------------------------------


def test_streamed_local_file(session_env, tiny_model, tmp_path):
    """3,000 rows streamed for 12 steps of 16: the held-out rows and the first training rows are the only ones
    tokenized and cached; nothing of the file is copied into the datasets cache; the output and the card say
    where each split came from and where the label names came from."""
    data = write_rows(tmp_path / "rows.jsonl", 3000)
    out = tmp_path / "run"
    proc = run_cli(["sentiment", "--model", tiny_model, "--dataset", data, "--text-column", "review", "--streaming",
                    "--max-steps", "12", "--output-dir", out, *QUICK], own_env(session_env, tmp_path))
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    assert "train streamed, validation 40, test 40 examples" in text
    assert "evaluating and saving a checkpoint every 3 steps" in text   # a stream's epoch: not the default
    assert "label names neg, pos from the first 1080 rows read" in text
    info = read_json(out / "run_info.json")
    assert info["splits"]["test"]["origin"].startswith("hold-out of rows 1-40 of the train (rows.jsonl) stream")
    assert info["splits"]["validation"]["origin"].startswith("hold-out of rows 41-80")
    assert info["splits"]["train"]["origin"] == "train (rows.jsonl), streamed after its first 80 rows (held out)"
    assert info["splits"]["train"]["count"] == 12 * 16   # the rows the steps drew, not the file's
    metrics = read_json(out / "metrics.json")
    assert metrics["train"]["steps"] == 12 and metrics["train"]["examples"] == 12 * 16
    card = (out / "README.md").read_text()
    assert "Streaming: label names neg, pos from the first 1080 rows read" in card
    assert "the training statistics, baselines and a --linear-probe are of its first 1000 rows" in card
    # tokenized and cached: the 40 + 40 held-out rows and the first 1,000 training rows, never the 3,000
    import datasets

    cached = {p.name: len(datasets.Dataset.from_file(str(p))) for p in (tmp_path / "cache").rglob("*.arrow")}
    assert cached == {"train.arrow": 1000, "validation.arrow": 40, "test.arrow": 40}
    assert not list((tmp_path / "hf_home").rglob("*.arrow"))   # no copy of the file in the datasets cache
    # `evaluate` on the run's own data reads the same held-out test rows again: the same figures
    scored = run_cli(["evaluate", out, "--dataset", data, "--output", tmp_path / "scores.json"],
                     own_env(session_env, tmp_path))
    assert scored.returncode == 0, scored.stdout + scored.stderr
    assert read_json(tmp_path / "scores.json")["accuracy"] == pytest.approx(metrics["test"]["accuracy"])


def test_label_outside_the_known_names_stops_the_run(session_env, tiny_model, tmp_path):
    """Label names from the first rows (neg, pos); row 1,500 says 'meh': one message naming the row and the
    remedy, a non-zero exit, no finished output dir."""
    data = write_rows(tmp_path / "rows.jsonl", 1600, odd={1500: "meh"})
    out = tmp_path / "run"
    proc = run_cli(["sentiment", "--model", tiny_model, "--dataset", data, "--text-column", "review", "--streaming",
                    "--max-steps", "120", "--eval-strategy", "steps", "--eval-steps", "100", "--output-dir", out,
                    *QUICK], own_env(session_env, tmp_path))
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Row 1500 of the training stream has the label 'meh', which is not among the 2 label names" in text
    assert "--label-names" in text and "Traceback" not in text
    assert not (out / "run_info.json").exists()

    # named up front, the same stream trains (and 'meh' is a label the card knows)
    named = run_cli(["sentiment", "--model", tiny_model, "--dataset", data, "--text-column", "review", "--streaming",
                     "--max-steps", "4", "--label-names", "neg,pos,meh", "--output-dir", tmp_path / "named", *QUICK],
                    own_env(session_env, tmp_path))
    assert named.returncode == 0, named.stdout + named.stderr
    assert "label names neg, pos, meh from --label-names" in named.stdout
    assert read_json(tmp_path / "named" / "run_info.json")["labels"] == ["neg", "pos", "meh"]


# -- a Hub data set ---------------------------------------------------------------------------------------------


UPLOAD = r'''
import os, sys
from datasets import ClassLabel, Dataset, Features, Value
from huggingface_hub import HfApi
folder = sys.argv[1]
features = Features({"sentence": Value("string"), "label": ClassLabel(names=["neg", "pos"])})
for split, rows in (("train", 2000), ("validation", 300)):
    texts = [("really good, loved it" if i % 3 else "bad, broke at once") + f" #{i}" for i in range(rows)]
    Dataset.from_dict({"sentence": texts, "label": [int(i % 3 > 0) for i in range(rows)]},
                      features=features).to_parquet(os.path.join(folder, "data", f"{split}.parquet"))
api = HfApi()
api.create_repo("org/reviews", repo_type="dataset")
api.upload_folder(folder_path=folder, repo_id="org/reviews", repo_type="dataset")
'''


def test_streamed_hub_dataset(session_env, tiny_model, tmp_path):
    """A Hub data set with its own validation split and ClassLabel features, streamed from the tests' Hub
    server: its label names from the features, validation = the first rows of its own split, test held out of
    the stream; nothing of it lands in the Hub cache (a download would)."""
    with HubServer(tokens={TOKEN}) as server:
        env = own_env(session_env, tmp_path, HF_ENDPOINT=server.url, HF_TOKEN=TOKEN, HF_HUB_DISABLE_XET="1")
        env.pop("HF_HUB_OFFLINE", None)
        (tmp_path / "upload" / "data").mkdir(parents=True)
        upload = subprocess.run([sys.executable, "-c", UPLOAD, str(tmp_path / "upload")], env=env,
                                capture_output=True, text=True, timeout=120)
        assert upload.returncode == 0, upload.stderr
        out = tmp_path / "run"
        proc = run_cli(["sentiment", "--model", tiny_model, "--dataset", "org/reviews", "--streaming", "--max-steps",
                        "6", "--output-dir", out, *QUICK, "--linear-probe"], env)
        text = proc.stdout + proc.stderr
        assert proc.returncode == 0, text
        assert "examples 1000" in text   # the linear probe: fitted on the stream's first training rows
        assert "label names neg, pos from the data set's features (a ClassLabel)" in text
        info = read_json(out / "run_info.json")
        assert info["splits"]["validation"]["origin"] == "validation, its first 40 rows (--max-eval-samples)"
        assert info["splits"]["test"]["origin"].startswith("hold-out of rows 1-40 of the train stream")
        assert info["dataset"]["hub_id"] == "org/reviews"
        assert not list((tmp_path / "hf_home").rglob("*.parquet"))   # streamed, not downloaded
        assert "Authorization" not in text and TOKEN not in text


# -- killed and run again -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_killed_streamed_run_resumes_where_the_stream_stopped(session_env, tiny_model, tmp_path):
    """SIGKILL right after the checkpoint of step 4 of 8; the same command resumes from it and skips the 4 batches
    already trained on, so its later losses are those of a run never killed (re-reading the stream from its start
    instead, it would train on the first batches twice and log other losses); nothing half-written looks finished."""
    data = write_rows(tmp_path / "rows.jsonl", 1200)
    args = ["sentiment", "--model", str(tiny_model), "--dataset", str(data), "--text-column", "review", "--streaming",
            "--max-steps", "8", "--eval-strategy", "steps", "--eval-steps", "2", "--logging-steps", "1", *QUICK]
    env = own_env(session_env, tmp_path)
    whole = run_cli([*args, "--output-dir", str(tmp_path / "whole")], env)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    out = tmp_path / "killed"
    killed = run_cli([*args, "--output-dir", str(out)], dict(env, HF_FINETUNE_CRASH_AT="saved:4"))
    assert killed.returncode == -9
    assert not (out / "run_info.json").exists()
    again = run_cli([*args, "--output-dir", str(out)], env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "checkpoint-4" in again.stdout and "resuming from" in again.stdout

    def losses(run: Path) -> dict[int, float]:
        return {e["step"]: e["loss"] for e in read_json(run / "log_history.json") if "loss" in e}

    resumed, reference = losses(out), losses(tmp_path / "whole")
    assert sorted(resumed) == list(range(1, 9))   # steps 1-4 from the checkpoint's state, 5-8 trained again
    for step in range(5, 9):
        assert resumed[step] == pytest.approx(reference[step], abs=1e-5), step
    test, reference_test = (read_json(run / "metrics.json")["test"] for run in (out, tmp_path / "whole"))
    for name in ("loss", "accuracy", "f1"):
        assert test[name] == pytest.approx(reference_test[name], abs=1e-5), name


@pytest.mark.slow
def test_malformed_row_past_the_first_chunk_is_one_message(session_env, tiny_model, tmp_path):
    """A CSV stream is parsed 10,000 rows at a time: a broken row at line 12,002 is met during training, not
    when the first rows are read; it ends the run with one message naming it (not 'Unexpected error'), a
    non-zero exit, and no finished output dir."""
    rows = ["review,label"] + [f"{'good thing' if i % 2 else 'bad thing'} {i},{'pos' if i % 2 else 'neg'}"
                               for i in range(14000)]
    rows[12001] = "oops,too,many,fields"
    data = tmp_path / "rows.csv"
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    proc = run_cli(["sentiment", "--model", tiny_model, "--dataset", data, "--streaming", "--max-steps", "110",
                    "--per-device-train-batch-size", "128", "--max-length", "8", "--eval-strategy", "steps",
                    "--eval-steps", "100", "--max-eval-samples", "40", "--max-test-samples", "40",
                    "--no-linear-probe", "--output-dir", out], own_env(session_env, tmp_path))
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Reading the training stream failed after step" in text and "Expected 2 fields in line 12002" in text
    assert "Unexpected error" not in text and "Traceback" not in text
    assert not (out / "run_info.json").exists()


@pytest.mark.slow
def test_a_two_process_streamed_run_trains_once_and_a_bad_row_is_one_message(session_env, tiny_model, tmp_path):
    """--streaming under --num-processes 2: one run dir with the steps asked for (the global batch drawn from
    the one stream), printed once; a label met late in the stream ends it with the streaming message, once, not a
    lost-peer traceback from the other process."""
    common = ["sentiment", "--model", tiny_model, "--text-column", "review", "--streaming", "--num-processes", "2",
              *QUICK]
    ok = run_cli([*common, "--dataset", write_rows(tmp_path / "rows.jsonl", 1600), "--max-steps", "6",
                  "--output-dir", tmp_path / "two"], own_env(session_env, tmp_path))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("finished in") == 1
    assert read_json(tmp_path / "two" / "metrics.json")["train"]["steps"] == 6

    # (the stream is read ahead of training: the map's batches and the shuffle buffer)
    bad = run_cli([*common, "--dataset", write_rows(tmp_path / "odd.jsonl", 1600, odd={1500: "meh"}),
                   "--max-steps", "120", "--eval-strategy", "steps", "--eval-steps", "100",
                   "--output-dir", tmp_path / "bad"], own_env(session_env, tmp_path))
    text = bad.stdout + bad.stderr
    assert bad.returncode != 0
    assert text.count("Row 1500 of the training stream has the label 'meh'") == 1
    assert "Traceback" not in text and "Unexpected error" not in text
    assert not (tmp_path / "bad").exists()
