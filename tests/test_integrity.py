"""Concurrent runs, resumes, caches and error paths never lose, mix or silently change data (issue #13).

Kills are real (SIGKILL from outside at random times, or the process killing itself at a named point
through HF_FINETUNE_CRASH_AT); after every kill the output dir is either absent or a finished run
that equals an uninterrupted one, and the re-run ends bit-identical to it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from safetensors.torch import load_file

from hf_finetune import data as data_mod, finetune, resolve_config, templates
from hf_finetune.rundir import RunDir

from conftest import read_json, run_cli, write_reviews_csv
from hub_server import HubServer

TOKEN = "hf_integrityTestToken0123456789ab"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("integrity-data")
    write_reviews_csv(folder / "reviews.csv")
    return folder


def run_args(tiny_model: Path, data: Path, seed: int = 7) -> list[str]:
    return ["sentiment", "--model", str(tiny_model), "--dataset", str(data), "--text-column", "review",
            "--max-length", "16", "--per-device-train-batch-size", "8", "--max-steps", "24", "--eval-strategy",
            "steps", "--eval-steps", "6", "--logging-steps", "2", "--early-stopping-patience", "0", "--seed",
            str(seed)]


def start(args: list[str], env: dict, **extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hf_finetune", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **extra)


def same_run(a: Path, b: Path) -> bool:
    """Bit-identical weights and identical quality metrics."""
    left, right = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    if left.keys() != right.keys() or not all(torch.equal(left[k], right[k]) for k in left):
        return False
    quality = ("loss", "accuracy", "f1")
    ma, mb = read_json(a / "metrics.json"), read_json(b / "metrics.json")
    return all(ma[s][k] == mb[s][k] for s in ("validation", "test") for k in quality)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, session_env, tiny_model, data_dir) -> Path:
    out = tmp_path_factory.mktemp("integrity-ref") / "run"
    began = time.monotonic()
    proc = run_cli([*run_args(tiny_model, data_dir / "reviews.csv"), "--output-dir", str(out)], session_env)
    assert proc.returncode == 0, proc.stderr
    (out.parent / "seconds").write_text(str(time.monotonic() - began))   # how long a whole run takes here
    return out


# -- 1. one run per output dir at a time -----------------------------------------------------------------

@pytest.mark.slow
def test_a_second_run_on_the_same_output_dir_fails_at_once(tmp_path, session_env, tiny_model, data_dir):
    out = tmp_path / "shared"
    long = [a if a not in ("24", "6") else {"24": "1200", "6": "600"}[a] for a in run_args(tiny_model, data_dir / "reviews.csv")]
    first = start([*long, "--output-dir", str(out)], session_env)
    lock = tmp_path / ".shared.lock"
    deadline = time.time() + 120
    while not (lock.exists() and lock.read_text().strip()) and time.time() < deadline and first.poll() is None:
        time.sleep(0.05)
    assert lock.exists(), first.communicate()[1]
    second = run_cli([*run_args(tiny_model, data_dir / "reviews.csv", seed=8), "--output-dir", str(out)],
                     session_env)
    assert second.returncode == 2, second.stderr
    assert f"Another hf-finetune run (pid {first.pid})" in second.stderr
    assert first.poll() is None, "the first run ended before the second one tried"
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert read_json(out / "metrics.json")["train"]["steps"] == 1200 and yaml_seed(out) == 7   # the first run, whole
    assert not lock.exists()


def yaml_seed(run: Path) -> int:
    return RunDir(run).config["seed"]


# -- 2. overwrite replaces only a finished run, never the inputs ------------------------------------------

@pytest.mark.parametrize("where", ["the data folder", "the current folder", "a folder of other files",
                                   "inside the data folder"])
def test_overwrite_never_replaces_inputs_or_other_files(where, tmp_path, cli, tiny_model, data_dir, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text((data_dir / "reviews.csv").read_text())
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    target = {"the data folder": data, "the current folder": Path("."), "a folder of other files": other,
              "inside the data folder": data / "run"}[where]
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    monkeypatch.chdir(tmp_path)
    proc = cli(["sentiment", "--model", tiny_model, "--dataset", data, "--text-column", "review",
                "--output-dir", target, "--overwrite-output-dir"])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "output dir" in proc.stderr and "Traceback" not in proc.stderr
    assert "tokenization" not in proc.stdout          # refused before data, model or training
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_empty_output_dir_is_refused(cli):
    proc = cli(["sentiment", "--output-dir", ""])
    assert proc.returncode == 2 and "'output_dir' can't be empty" in proc.stderr


# -- 3. NA-like strings are data ---------------------------------------------------------------------------

def test_na_like_labels_and_texts_are_kept(tmp_path):
    path = tmp_path / "na.csv"
    labels = ["NA", "None", "N/A", "null", "nan"]
    rows = ["text,label"] + [f"{'null' if i % 7 == 0 else 'row ' + str(i)},{labels[i % len(labels)]}"
                             for i in range(60)]
    rows.append(",NA")        # a truly empty text: the one row that is dropped
    path.write_text("\n".join(rows) + "\n")
    _, config = resolve_config("sentiment", dataset=str(path))
    prepared = data_mod.prepare(templates.load("sentiment"), config)
    assert sorted(prepared.labels) == sorted(labels)
    assert sum(len(s) for s in prepared.splits.values()) == 60
    assert prepared.dropped == {"train": 1}
    assert "null" in [t for s in prepared.splits.values() for t in s["text"]]


# -- 4. the tokenization cache follows the whole tokenizer -------------------------------------------------

def test_changed_normaliser_is_not_served_from_the_cache(tmp_path, tiny_model, data_dir, monkeypatch):
    monkeypatch.setenv("HF_FINETUNE_CACHE", str(tmp_path / "cache"))   # a cache of this test's own
    cased = tmp_path / "cased-model"
    shutil.copytree(tiny_model, cased)
    spec = json.loads((cased / "tokenizer.json").read_text())
    assert spec["normalizer"]["lowercase"] is True
    spec["normalizer"]["lowercase"] = False
    (cased / "tokenizer.json").write_text(json.dumps(spec))
    common = dict(dataset=str(data_dir / "reviews.csv"), text_column="review", max_steps=1, max_length=16,
                  eval_strategy="no")
    first = finetune("sentiment", model=str(tiny_model), output_dir=str(tmp_path / "a"), **common)
    again = finetune("sentiment", model=str(tiny_model), output_dir=str(tmp_path / "b"), **common)
    other = finetune("sentiment", model=str(cased), output_dir=str(tmp_path / "c"), **common)
    assert not first.tokenization_cached and again.tokenization_cached
    assert not other.tokenization_cached
    # the same run again is recognised as done although its tokenizer, read from the cache this time, was
    # never called (a fast tokenizer's call state is no part of its identity)
    weights = (tmp_path / "a" / "model.safetensors").stat().st_mtime_ns
    repeat = finetune("sentiment", model=str(tiny_model), output_dir=str(tmp_path / "a"), **common)
    assert repeat.tokenization_cached and (tmp_path / "a" / "model.safetensors").stat().st_mtime_ns == weights


# -- 5. resume follows the data ----------------------------------------------------------------------------

@pytest.mark.slow
def test_resume_refuses_checkpoints_of_other_data(tmp_path, session_env, tiny_model, data_dir):
    data = tmp_path / "reviews.csv"
    data.write_text((data_dir / "reviews.csv").read_text())
    args = [*run_args(tiny_model, data), "--output-dir", str(tmp_path / "out")]
    killed = run_cli(args, dict(session_env, HF_FINETUNE_CRASH_AT="trained"))
    assert killed.returncode == -signal.SIGKILL
    assert list((tmp_path / ".out.checkpoints").glob("checkpoint-*"))
    with data.open("a") as f:
        f.write("".join(f'"so-so, neither good nor bad #{i}",3\n' for i in range(20)))   # a new class
    again = run_cli(args, session_env)
    assert again.returncode == 2, again.stderr
    assert "data (test, train, validation)" in again.stderr and "--no-resume" in again.stderr
    assert not (tmp_path / "out").exists()
    fresh = run_cli([*args, "--no-resume"], session_env)
    assert fresh.returncode == 0, fresh.stderr
    assert read_json(tmp_path / "out" / "run_info.json")["labels"] == ["1", "3", "5"]


# -- 6 and 7. kills at any point: nothing finished-looking is wrong, every re-run ends bit-identical -------

def check_after_kill(out: Path, reference: Path) -> None:
    if out.exists():
        assert RunDir(out).is_finished, sorted(p.name for p in out.iterdir())
        assert same_run(out, reference)


@pytest.mark.slow
def test_kill_at_twenty_points_then_rerun_is_bit_identical(tmp_path, session_env, tiny_model, data_dir, reference):
    """13 kills from outside at random instants, then the process killing itself at each named point of
    finishing and publishing, in one chain over the same output dir. After every kill, whatever looks
    finished equals an uninterrupted run; a run that gets to finish is checked and removed, so that
    the next kills land in training again; the last re-run ends bit-identical."""
    out = tmp_path / "run"
    args = [*run_args(tiny_model, data_dir / "reviews.csv"), "--output-dir", str(out)]
    rng = random.Random(20261129)
    kills, finished = 0, 0

    def after_attempt() -> None:
        nonlocal finished
        check_after_kill(out, reference)
        if out.exists():
            finished += 1
            shutil.rmtree(out)

    whole = float((reference.parent / "seconds").read_text())   # kill instants spread over a run on this machine
    for _ in range(40):
        if kills == 13:
            break
        proc = start(args, session_env)
        time.sleep(rng.uniform(0.1, 0.9) * whole)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate()
        after_attempt()
    # each point in order; the last of each round is reached by the next run's recovery (it publishes the
    # finished staging dir the kill at "publish:start" left), after which the run is in place
    for points in (("trained", "model-saved", "card-written", "publish:start", "publish:new-in-place"),
                   ("publish:start", "publish:old-removed")):
        for point in points:
            proc = run_cli(args, dict(session_env, HF_FINETUNE_CRASH_AT=point))
            assert proc.returncode == -signal.SIGKILL, (point, proc.stderr)
            kills += 1
            if point == points[-1]:
                assert same_run(out, reference)      # the new run is in place, whole
            else:
                assert not out.exists()
        if points[0] == "trained":
            after_attempt()
    final = run_cli(args, session_env)
    assert final.returncode == 0, final.stderr
    assert same_run(out, reference)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "run"]
    assert leftovers == [], leftovers
    assert kills >= 20, (kills, finished)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["publish:start", "publish:old-moved-aside", "publish:new-in-place",
                                   "publish:old-removed"])
def test_kill_at_each_step_of_an_overwriting_publish(point, tmp_path, session_env, tiny_model, data_dir, reference):
    """An old run is replaced: after a kill at any step, the dir holds the old run or the new one, whole;
    the re-run finishes the new one, and nothing is left beside it."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference, out)                      # the old run (seed 7)
    args = [*run_args(tiny_model, data_dir / "reviews.csv", seed=8), "--output-dir", str(out),
            "--overwrite-output-dir"]
    killed = run_cli(args, dict(session_env, HF_FINETUNE_CRASH_AT=point))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if out.exists():
        assert RunDir(out).is_finished and yaml_seed(out) in (7, 8)
        if yaml_seed(out) == 7:
            assert same_run(out, reference)
    again = run_cli(args, session_env)
    assert again.returncode == 0, again.stderr
    assert yaml_seed(out) == 8
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


# -- 8. resource bounds ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_fifty_megabyte_line_costs_no_gigabytes(tmp_path, session_env, tiny_model, data_dir):
    data = tmp_path / "huge.csv"
    with data.open("w") as f:
        f.write((data_dir / "reviews.csv").read_text())
        f.write('"' + "word " * 10_000_000 + '",5\n')        # one 50 MB review
    proc = start(["sentiment", "--model", str(tiny_model), "--dataset", str(data), "--text-column", "review",
                  "--max-length", "16", "--max-steps", "2", "--eval-strategy", "no",
                  "--output-dir", str(tmp_path / "out")], session_env)
    peak = 0
    process = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            peak = max(peak, process.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert peak < 2.5 * 2**30, f"peak RSS {peak / 2**30:.1f} GiB"     # was 7.1 GiB


class StalledServer:
    """Accepts connections and never answers."""

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        return self

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.serve(conn)

    def serve(self, conn: socket.socket) -> None:
        self.held.append(conn)

    def __exit__(self, *exc):
        self.sock.close()
        for conn in self.held:
            conn.close()


class ResettingServer(StalledServer):
    """Accepts connections and resets them at once (RST)."""

    def serve(self, conn: socket.socket) -> None:
        import struct

        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()


class TricklingServer(StalledServer):
    """Answers every request with a status line and headers sent one byte a second: each read gets its byte
    well within any per-read time-out, so only a deadline for the whole response ends the wait."""

    def serve(self, conn: socket.socket) -> None:
        def trickle():
            try:
                conn.recv(65536)
                for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: " + b"x" * 600:
                    conn.sendall(bytes([byte]))
                    time.sleep(1)
            except OSError:
                pass
        self.held.append(conn)
        threading.Thread(target=trickle, daemon=True).start()


@pytest.mark.parametrize("command", ["push", "pull"])
def test_a_trickling_server_is_given_up_on_as_a_whole(command, tiny_run, tmp_path, session_env):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    args = ["push", str(run), "tester/x"] if command == "push" else ["pull", "tester/x", "--cache-dir",
                                                                       str(tmp_path / "pulled")]
    with TricklingServer() as hub:
        env = dict(session_env, HF_ENDPOINT=hub.url, HF_TOKEN=TOKEN, HF_FINETUNE_HUB_TIMEOUT="3")
        env.pop("HF_HUB_OFFLINE", None)
        started = time.perf_counter()
        proc = run_cli(args, env, timeout=240)   # the trickle alone would last ten minutes a request
    assert proc.returncode == 1, proc.stderr
    assert "did not answer within 3 s" in proc.stderr and "may be a bug" not in proc.stderr, proc.stderr
    assert time.perf_counter() - started < 120
    assert RunDir(run).is_finished and same_run(run, tiny_run)


@pytest.mark.parametrize("server, expected", [(StalledServer, "did not answer within 2 s"),
                                              (ResettingServer, "connection to the Hub")])
def test_a_stalled_or_resetting_server_gives_one_clear_error(server, expected, tiny_run, tmp_path, session_env):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    with server() as hub:
        env = dict(session_env, HF_ENDPOINT=hub.url, HF_TOKEN=TOKEN, HF_FINETUNE_HUB_TIMEOUT="2")
        env.pop("HF_HUB_OFFLINE", None)
        started = time.perf_counter()
        proc = run_cli(["push", str(run), "tester/x"], env, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert expected in proc.stderr and "disk space" not in proc.stderr and "may be a bug" not in proc.stderr
    assert time.perf_counter() - started < 120
    assert RunDir(run).is_finished and same_run(run, tiny_run)


# -- 9 and 10. real causes, not "may be a bug" -------------------------------------------------------------

def test_numeric_text_column_is_used_as_text(tmp_path, tiny_model):
    path = tmp_path / "numbers.csv"
    path.write_text("text,label\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(40)))
    result = finetune("sentiment", model=str(tiny_model), dataset=str(path), output_dir=str(tmp_path / "out"),
                      max_steps=1, max_length=16, eval_strategy="no")
    assert result.labels == ["a", "b"]


def test_nested_columns_are_refused_clearly(tmp_path, cli):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"text": [["a", "b"]] * 20, "label": ["x", "y"] * 10}), path)
    proc = cli(["sentiment", "--dataset", path])
    assert proc.returncode == 1 and "holds lists" in proc.stderr and "may be a bug" not in proc.stderr


def test_invalid_repo_id_fails_before_training_and_writes_nothing(tiny_run, tmp_path, cli):
    import shutil

    proc = cli(["sentiment", "--push-to-hub", "me/My Model", "--output-dir", tmp_path / "out"])
    assert proc.returncode == 2 and "not a valid Hub repo id" in proc.stderr
    assert not (tmp_path / "out").exists()
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    card = (run / "README.md").read_bytes()
    pushed = cli(["push", run, "me/My Model"])
    assert pushed.returncode == 2 and (run / "README.md").read_bytes() == card


@pytest.mark.parametrize("source, expected", [("/dev/zero", "neither a regular file nor a folder"),
                                              ("fifo", "neither a regular file nor a folder"),
                                              ("broken.jsonl", "broken.jsonl line 3 is not valid JSON")])
def test_unreadable_data_sources_name_the_real_cause(source, expected, tmp_path, cli):
    if source == "fifo":
        source = str(tmp_path / "data.csv")
        os.mkfifo(source)
    elif source == "broken.jsonl":
        path = tmp_path / "broken.jsonl"
        path.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n{"text": "c", label: 1}\n')
        source = str(path)
    proc = cli(["sentiment", "--dataset", source])
    assert proc.returncode == 1 and expected in proc.stderr, proc.stderr
    assert "disk space" not in proc.stderr and "may be a bug" not in proc.stderr


def test_non_utf8_output_dir_is_refused_before_training(tmp_path, cli):
    proc = cli(["sentiment", "--output-dir", tmp_path / os.fsdecode(b"run-\xff")])
    assert proc.returncode == 2 and "not valid UTF-8" in proc.stderr


def test_predict_handles_closed_stdin_null_texts_and_long_inputs(tiny_run, tmp_path, session_env):
    closed = subprocess.run([sys.executable, "-m", "hf_finetune", "predict", str(tiny_run), "--input", "-"],
                            env=session_env, capture_output=True, text=True, timeout=120,
                            preexec_fn=lambda: os.close(0))
    assert closed.returncode == 1 and "Standard input is empty or closed" in closed.stderr
    nulls = tmp_path / "in.jsonl"
    nulls.write_text('{"text": "fine"}\n{"text": null}\n')
    proc = run_cli(["predict", str(tiny_run), "--input", str(nulls)], session_env)
    assert proc.returncode == 1 and "Row 2 of in.jsonl has no text" in proc.stderr and "None" not in proc.stdout
    long = tmp_path / "long.txt"
    long.write_text("great product " * 5000 + "\n")             # far beyond the model's 128 positions
    proc = run_cli(["predict", str(tiny_run), "--input", str(long)], session_env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["label"] in ("1", "5")


def test_predict_into_a_reader_that_left_ends_quietly(tiny_run, tmp_path, session_env):
    """`hf-finetune predict RUN ... | head -1`: the reader going away is not a network failure."""
    texts = tmp_path / "many.txt"
    texts.write_text("a fine product that works well\n" * 2000)
    reader = subprocess.Popen([sys.executable, "-c", "pass"], stdin=subprocess.PIPE)   # reads nothing, leaves
    reader.wait()
    proc = subprocess.run([sys.executable, "-m", "hf_finetune", "predict", str(tiny_run), "--input", str(texts)],
                          env=session_env, stdout=reader.stdin, stderr=subprocess.PIPE, text=True, timeout=300)
    reader.stdin.close()
    assert proc.returncode == 141 and proc.stderr == "", proc.stderr


# -- 11. leftovers ------------------------------------------------------------------------------------------

def test_repush_deletes_files_the_run_no_longer_has(tiny_run, tmp_path, session_env):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "vocab.txt").write_text("[PAD]\n")                # a file of an earlier version of the run
    with HubServer(tokens={TOKEN}) as server:
        env = dict(session_env, HF_ENDPOINT=server.url, HF_TOKEN=TOKEN)
        env.pop("HF_HUB_OFFLINE", None)
        assert run_cli(["push", str(run), "tester/re"], env).returncode == 0
        assert "vocab.txt" in server.files("tester/re")
        (run / "vocab.txt").unlink()
        proc = run_cli(["push", str(run), "tester/re"], env)
        assert proc.returncode == 0, proc.stderr
        assert "vocab.txt" not in server.files("tester/re") and "model.safetensors" in server.files("tester/re")


@pytest.mark.slow
def test_temp_files_of_a_killed_tokenization_are_cleaned(tmp_path, session_env, tiny_model, data_dir):
    env = dict(session_env, HF_FINETUNE_CACHE=str(tmp_path / "cache"))
    args = ["sentiment", "--model", str(tiny_model), "--dataset", str(data_dir / "reviews.csv"), "--text-column",
            "review", "--max-length", "16", "--max-steps", "1", "--eval-strategy", "no"]
    assert run_cli([*args, "--output-dir", str(tmp_path / "a")], env).returncode == 0
    keys = list((tmp_path / "cache" / "tokenized").iterdir())
    assert keys
    for key in keys:   # what a process killed while tokenizing leaves (its lock, which nobody holds now)
        (key / ".tmp-999999").mkdir()
        (key / ".tmp-999999" / ".lock").touch()
        (key / ".tmp-999999" / "tmpab12cd").write_bytes(b"half an arrow file")
    again = run_cli([*args, "--output-dir", str(tmp_path / "b")], env)
    assert again.returncode == 0 and "reused from cache" in again.stdout
    assert not list((tmp_path / "cache").rglob(".tmp-*")) and not list((tmp_path / "cache").rglob("tmp*"))


# -- property: what is read from CSV / JSON Lines is exactly what was written ------------------------------

cell = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), min_size=1, max_size=12)
na_like = st.sampled_from(["NA", "None", "N/A", "null", "nan", "NULL", "#N/A", "-nan", "<NA>"])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.one_of(cell, na_like), min_size=12, max_size=30),
       labels=st.lists(st.one_of(na_like, st.sampled_from(["pos", "neg", "0", "1"])), min_size=2, max_size=4,
                       unique=True),
       fmt=st.sampled_from(["csv", "jsonl"]))
def test_rows_read_back_exactly(texts, labels, fmt, tmp_path_factory):
    import csv

    folder = tmp_path_factory.mktemp("fuzz")
    rows = [(f"{i}:{t}", labels[i % len(labels)]) for i, t in enumerate(texts)]
    path = folder / f"data.{fmt}"
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
    else:
        path.write_text("\n".join(json.dumps({"text": t, "label": lab}) for t, lab in rows), encoding="utf-8")
    _, config = resolve_config("sentiment", dataset=str(path))
    prepared = data_mod.prepare(templates.load("sentiment"), config)
    got = sorted((t, prepared.labels[lab]) for s in prepared.splits.values() for t, lab in zip(s["text"], s["label"]))
    assert got == sorted(rows)


def test_credentials_in_hf_endpoint_are_never_shown(tiny_run, tmp_path, session_env, monkeypatch):
    """HF_ENDPOINT may carry a user and password (a private mirror): requests use them, cards, links and
    messages show the endpoint without them."""
    from hf_finetune import card

    with StalledServer() as hub:
        port = hub.url.rsplit(":", 1)[1]
        endpoint = f"http://mirror-user:s3cret-pass@127.0.0.1:{port}"
        env = dict(session_env, HF_ENDPOINT=endpoint, HF_TOKEN=TOKEN, HF_FINETUNE_HUB_TIMEOUT="2")
        env.pop("HF_HUB_OFFLINE", None)
        proc = run_cli(["push", str(tiny_run), "tester/x"], env, timeout=300)
    assert proc.returncode == 1 and f"127.0.0.1:{port}" in proc.stderr, proc.stderr
    assert "s3cret-pass" not in proc.stderr + proc.stdout and "mirror-user" not in proc.stderr + proc.stdout
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    link = card._hub_link("someone/model")
    assert link == f"[`someone/model`](http://127.0.0.1:{port}/someone/model)"
