"""What a run may touch beside its output (issue #25): the user's files in a finished run, a link planted at
the lock, what killed runs left in the same folder, the shared tokenization cache's temp dirs; resuming
after a `touch` of the data and after a finished --hp-search; a constant regression target."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hf_finetune import finetune

from conftest import read_json, run_cli


def tiny_args(tiny_model: Path, data: Path, out: Path | None) -> list:
    """The shared tiny run's command (conftest's tiny_run), into ``out`` (None: the default output dir)."""
    return ["sentiment", "--model", tiny_model, "--dataset", data, "--text-column", "review",
            *(["--output-dir", out] if out else []), "--max-length", "16", "--num-train-epochs", "1",
            "--per-device-train-batch-size", "16"]


# -- 3. --overwrite-output-dir replaces a run, never the user's files in it ----------------------------------

def test_overwrite_refuses_a_finished_run_holding_the_users_files(tiny_run, tiny_model, tiny_run_data, tmp_path,
                                                                   cli):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "NOTES.md").write_text("what I learned")
    (run / "predictions.csv").write_text("text,label\nfine,5\n")
    (run / "plots").mkdir()
    (run / "plots" / "mine.png").write_bytes(b"\x89PNG mine")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    proc = cli([*tiny_args(tiny_model, tiny_run_data, run), "--overwrite-output-dir"])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    for name in ("NOTES.md", "plots/", "predictions.csv"):
        assert name in proc.stderr
    assert "nothing was replaced" in proc.stderr and "Traceback" not in proc.stderr
    assert "tokenization" not in proc.stdout            # refused before any work
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    # without them, the finished run is replaced as before
    for extra in ("NOTES.md", "predictions.csv"):
        (run / extra).unlink()
    shutil.rmtree(run / "plots")
    old_id = read_json(run / "run_info.json")["run_id"]
    again = cli([*tiny_args(tiny_model, tiny_run_data, run), "--overwrite-output-dir"])
    assert again.returncode == 0, again.stdout + again.stderr
    assert read_json(run / "run_info.json")["run_id"] != old_id


# -- 6. the lock file is never followed through a link --------------------------------------------------------

def test_a_link_planted_at_the_lock_is_refused_and_its_target_kept(tiny_model, tiny_run_data, tmp_path, cli):
    victim = tmp_path / "precious.txt"
    victim.write_text("years of work\n")
    (tmp_path / ".run.lock").symlink_to(victim)
    proc = cli([*tiny_args(tiny_model, tiny_run_data, tmp_path / "run"), "--max-steps", "1"])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert ".run.lock is a symbolic link" in proc.stderr and "Traceback" not in proc.stderr
    assert victim.read_text() == "years of work\n"
    assert not (tmp_path / "run").exists()


# -- 8. resuming follows the data's content, not its files' times; a finished search is not run again -------

def _regression_csv(path: Path) -> Path:
    rows = [f'"{w} review number {i}",{(i * 7) % 10 / 2}' for i, w in
            enumerate(["fine", "bad", "great", "dull", "superb", "poor"] * 10)]
    path.write_text("text,score\n" + "\n".join(rows) + "\n")
    return path


def test_a_touched_data_file_is_the_same_data(tiny_model, tmp_path):
    """A fresh git checkout sets every file's modification time; the run is still the same one."""
    data = _regression_csv(tmp_path / "scores.csv")
    common = dict(model=str(tiny_model), dataset=str(data), max_steps=1, max_length=16, eval_strategy="no",
                  output_dir=str(tmp_path / "run"))
    finetune("regression", **common)
    weights = (tmp_path / "run" / "model.safetensors").stat().st_mtime_ns
    os.utime(data, (1_000_000_000, 1_000_000_000))
    again = finetune("regression", **common)   # before: "already holds a finished run of other settings or data"
    assert again.tokenization_cached
    assert (tmp_path / "run" / "model.safetensors").stat().st_mtime_ns == weights


RESUME_ARGS = ["--max-length", "16", "--per-device-train-batch-size", "8", "--max-steps", "8", "--eval-strategy",
               "steps", "--eval-steps", "4", "--logging-steps", "4", "--early-stopping-patience", "0"]


@pytest.mark.slow
def test_a_killed_run_resumes_after_a_touch_of_its_data(tiny_model, tmp_path, session_env):
    data = _regression_csv(tmp_path / "scores.csv")
    args = ["regression", "--model", str(tiny_model), "--dataset", str(data), "--output-dir", str(tmp_path / "out"),
            *RESUME_ARGS]
    killed = run_cli(args, dict(session_env, HF_FINETUNE_CRASH_AT="trained"))
    assert killed.returncode == -signal.SIGKILL
    os.utime(data, (1_000_000_000, 1_000_000_000))
    again = run_cli(args, session_env)
    assert again.returncode == 0, again.stderr
    assert "resuming from" in again.stdout


SPACE = """search_space:
  learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}
  warmup_steps: {low: 0.0, high: 0.2}
"""


@pytest.mark.slow
def test_a_finished_search_is_not_run_again_on_resume(tiny_model, tiny_run_data, tmp_path, session_env):
    from hf_finetune import templates

    text = (templates.bundled_dir() / "sentiment.yaml").read_text()
    template = tmp_path / "searched.yaml"
    template.write_text(text.split("\nsearch_space:")[0] + "\n" + SPACE + "\ncard:\n" + text.split("\ncard:\n")[1])
    args = [str(template), "--model", str(tiny_model), "--dataset", str(tiny_run_data), "--text-column", "review",
            "--output-dir", str(tmp_path / "out"), "--hp-search", "2", *RESUME_ARGS]
    killed = run_cli(args, dict(session_env, HF_FINETUNE_CRASH_AT="trained"))
    assert killed.returncode == -signal.SIGKILL and "hp-search trial 2/2" in killed.stdout
    resumed = run_cli(args, session_env)
    assert resumed.returncode == 0, resumed.stderr
    assert "hp-search trial" not in resumed.stdout and "resuming from" in resumed.stdout
    search = read_json(tmp_path / "out" / "run_info.json")["hp_search"]
    assert len(search["trials"]) == 2
    saved = (tmp_path / "out" / "run_config.yaml").read_text()
    assert f"learning_rate: {search['best_params']['learning_rate']}" in saved
    # a changed search space is another run: its checkpoints are not resumed
    shutil.rmtree(tmp_path / "out")
    run_cli(args, dict(session_env, HF_FINETUNE_CRASH_AT="trained"))
    template.write_text(template.read_text().replace("high: 1.0e-2", "high: 2.0e-2"))
    changed = run_cli(args, session_env)
    assert changed.returncode == 2 and "search (space)" in changed.stderr and "--no-resume" in changed.stderr


# -- 9. what killed runs left in the same folder ----------------------------------------------------------

def _left_by_a_kill(parent: Path, name: str, resumable: bool = False) -> None:
    """What `kill -9` leaves beside an output dir: its lock file (with the dead pid), staging dir, checkpoints."""
    parent.mkdir(exist_ok=True)
    (parent / f".{name}.lock").write_text("999999\n")
    (parent / f".{name}.partial").mkdir()
    (parent / f".{name}.partial" / "model.safetensors").write_bytes(b"half")
    checkpoints = parent / f".{name}.checkpoints"
    checkpoints.mkdir()
    (checkpoints / "resume.json").write_text('{"run_id": "x", "fingerprint": {}}')
    step = checkpoints / "checkpoint-4"
    step.mkdir()
    (step / "optimizer.pt").write_bytes(b"half")   # a checkpoint cut short: nothing a resume can use
    if resumable:
        (step / "trainer_state.json").write_text('{"global_step": 4}')
        for file in ("model.safetensors", "scheduler.pt", "rng_state.pth"):
            (step / file).write_bytes(b"x")


def test_a_run_cleans_what_killed_runs_left_beside_it(tiny_model, tiny_run_data, tmp_path, cli, monkeypatch):
    outputs = tmp_path / "outputs"
    _left_by_a_kill(outputs, "sentiment-killed-20240101-000000")
    _left_by_a_kill(outputs, "sentiment-stopped-20240101-000000", resumable=True)
    _left_by_a_kill(outputs, "sentiment-live-20240101-000000")
    (outputs / ".notes.old").mkdir()                       # not ours, whatever their names: kept
    (outputs / ".notes.old" / "mine.md").write_text("mine")
    (outputs / ".tool.lock").write_text("not a pid")
    (outputs / ".tool.partial").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'r+'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)",
                               str(outputs / ".sentiment-live-20240101-000000.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.chdir(tmp_path)
        proc = cli([*tiny_args(tiny_model, tiny_run_data, None), "--max-steps", "1", "--eval-strategy", "no"])
        assert proc.returncode == 0, proc.stdout + proc.stderr
        left = sorted(p.name for p in outputs.iterdir() if p.name.startswith("."))
        assert not [n for n in left if "killed" in n], left                      # a dead holder's: gone
        assert sorted(n for n in left if "live" in n) == [                        # a live holder's: kept
            ".sentiment-live-20240101-000000.checkpoints", ".sentiment-live-20240101-000000.lock",
            ".sentiment-live-20240101-000000.partial"]
        assert [n for n in left if "stopped" in n] == [".sentiment-stopped-20240101-000000.checkpoints"]
        assert {".notes.old", ".tool.lock", ".tool.partial"} <= set(left)
        assert (outputs / ".notes.old" / "mine.md").read_text() == "mine" and not (outputs / "notes").exists()
        assert "resume it with --output-dir outputs/sentiment-stopped-20240101-000000" in " ".join(proc.stdout.split())
    finally:
        holder.kill()
        holder.wait()


# -- 12. the shared tokenization cache under parallel runs -----------------------------------------------

def _texts(n: int):
    from datasets import Dataset

    return Dataset.from_dict({"text": [f"text {i}" for i in range(n)]})


def test_runs_with_the_same_pid_tokenizing_at_once_keep_their_temp_dirs(tmp_path, monkeypatch):
    """Two runs in two containers may both be pid 7: one's cleanup must not take the other's temp dir (here
    two threads of one process, which share the pid)."""
    from hf_finetune.data import tokenized

    monkeypatch.setenv("HF_FINETUNE_CACHE", str(tmp_path / "cache"))
    first_writing, other_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    calls = []

    def slow(batch):   # the first run is mid-way through its map (a batch written) while the second runs whole
        calls.append(len(batch["text"]))
        if len(calls) == 3:
            first_writing.set()
            other_done.wait(timeout=60)
        return {"n": [len(t) for t in batch["text"]]}

    def quick(batch):
        return {"n": [len(t) for t in batch["text"]]}

    def first():
        try:
            tokenized.map_cached(_texts(3000), slow, ["same key"], "validation", "first")
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert first_writing.wait(timeout=60)
        tokenized.map_cached(_texts(50), quick, ["same key"], "validation", "second")
    finally:
        other_done.set()
        thread.join(timeout=120)
    assert not errors, errors   # before: FileNotFoundError (.tmp-<pid>/validation.arrow)
    assert not list((tmp_path / "cache").rglob(".tmp-*"))


def test_a_live_holders_temp_dir_survives_a_cleanup_and_a_dead_ones_goes(tmp_path, monkeypatch):
    """A temp dir named by a pid that is dead here (another container's), held by a live process, is kept."""
    from hf_finetune.data import tokenized

    monkeypatch.setenv("HF_FINETUNE_CACHE", str(tmp_path / "cache"))
    tokenized.map_cached(_texts(5), lambda b: {"n": [1] * len(b["text"])}, ["k"], "train", "first")
    folder = next((tmp_path / "cache" / "tokenized").iterdir())
    live, dead = folder / ".tmp-999999", folder / ".tmp-999998"
    for tmp in (live, dead):
        tmp.mkdir()
        (tmp / ".lock").touch()
        (tmp / "validation.arrow").write_bytes(b"being written")
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'r+'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)",
                               str(live / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        tokenized.map_cached(_texts(5), lambda b: {"n": [1] * len(b["text"])}, ["k"], "test", "second")
        assert (live / "validation.arrow").read_bytes() == b"being written"
        assert not dead.exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_vanished_file_is_not_called_a_disk_space_problem(capsys):
    from hf_finetune.cli._errors import report

    try:
        raise FileNotFoundError(2, "No such file or directory", "/cache/tokenized/k/.tmp-7/validation.arrow")
    except FileNotFoundError as err:
        code = report(err, debug=False)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1 and "/cache/tokenized/k/.tmp-7/validation.arrow" in err
    assert "disk space" not in err and "removed it while this run used it" in err


def test_a_constant_regression_target_is_refused_before_training(tiny_model, tmp_path, cli):
    data = tmp_path / "flat.csv"
    data.write_text("text,score\n" + "\n".join(f'"review {i}",3.0' for i in range(40)) + "\n")
    proc = cli(["regression", "--model", tiny_model, "--dataset", data, "--output-dir", tmp_path / "out",
                "--max-steps", "1"])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "holds the same value (3) in every training row" in " ".join(proc.stderr.split())
    assert "tokenization" not in proc.stdout and not (tmp_path / "out").exists()
