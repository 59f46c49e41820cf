"""Checkpoint-and-exit on SIGTERM on the embedded default; resuming only under the same settings.

(SIGKILL at any instant and bit-identical resumes: tests/test_integrity.py.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import read_json, run_cli

ARGS = ["--max-train-samples", "96", "--max-eval-samples", "32", "--max-test-samples", "32", "--max-length", "32",
        "--per-device-train-batch-size", "8", "--max-steps", "36", "--eval-strategy", "steps", "--eval-steps", "12",
        "--logging-steps", "4", "--early-stopping-patience", "0"]


def _start(out: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hf_finetune", "sentiment", "--output-dir", str(out), *ARGS],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _checkpoints(out: Path) -> Path:
    return out.parent / f".{out.name}.checkpoints"


def _wait_for_checkpoint(out: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if list(_checkpoints(out).glob("checkpoint-*/trainer_state.json")):
            return
        if proc.poll() is not None:
            pytest.fail(f"run ended before its first checkpoint: {proc.stderr.read()}")
        time.sleep(0.2)
    pytest.fail("no checkpoint appeared")


def _steps(out: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in _checkpoints(out).glob("checkpoint-*"))


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_non_zero(tmp_path, session_env):
    out = tmp_path / "terminated"
    proc = _start(out, session_env)
    _wait_for_checkpoint(out, proc)
    before = _steps(out)[-1]
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 143, stderr
    assert "SIGTERM" in stderr and "resume" in stderr
    assert not out.exists()
    # SIGTERM itself saved the step it stopped at, not only the evaluation checkpoint seen before
    saved = _steps(out)[-1]
    assert saved > before and saved % 12 != 0, (before, _steps(out))
    resumed = run_cli(["sentiment", "--output-dir", str(out), *ARGS], session_env)
    assert resumed.returncode == 0 and "resuming from" in resumed.stdout
    assert (out / "run_info.json").exists()


@pytest.mark.slow
def test_checkpoints_of_other_settings_are_not_resumed(tmp_path, session_env, tiny_model, reviews_csv):
    out = tmp_path / "changed"
    args = ["sentiment", "--model", str(tiny_model), "--dataset", str(reviews_csv), "--text-column", "review",
            "--output-dir", str(out), *ARGS]
    killed = run_cli(args, dict(session_env, HF_FINETUNE_CRASH_AT="trained"))   # checkpoints left, no run
    assert killed.returncode == -signal.SIGKILL and _steps(out)
    changed = [a if a != "36" else "24" for a in args]            # another --max-steps: a different run
    again = run_cli(changed, session_env)
    assert again.returncode == 2 and "settings (max_steps)" in again.stderr and "--no-resume" in again.stderr
    assert _steps(out), "the checkpoints were kept"
    fresh = run_cli([*changed, "--no-resume"], session_env)
    assert fresh.returncode == 0, fresh.stderr
    assert "resuming" not in fresh.stdout
    assert read_json(out / "metrics.json")["train"]["steps"] == 24


def _labelled_rows(path: Path, n: int) -> None:
    words = ["good", "bad", "fine", "awful", "great", "poor"]
    with path.open("w", encoding="utf-8") as f:
        f.write("text,label\n")
        for i in range(n):
            f.write(f"\"{words[i % 6]} item number {i}\",{'pos' if i % 2 == 0 else 'neg'}\n")


def _wait_for_step(proc: subprocess.Popen, timeout: float = 300) -> int:
    """The first progress line's step: training is under way, mid-epoch."""
    from hf_finetune.progress import parse_step_line

    deadline = time.time() + timeout
    for line in proc.stdout:
        parsed = parse_step_line(line)
        if parsed:
            return parsed[0]
        if time.time() > deadline:
            break
    pytest.fail(f"no training step was reported: {proc.poll()} {proc.stderr.read()}")


@pytest.mark.slow   # two runs of the CLI: about 25 s
def test_sigterm_mid_epoch_saves_once_and_skips_the_validation_pass(tmp_path, session_env, tiny_model):
    """SIGTERM mid-epoch: a checkpoint of the step it stopped at and exit 143, with no epoch-end validation
    pass (with generation, minutes) and no second save of that step, which CI runners and Jobs would not
    wait for; the same command then resumes from that checkpoint."""
    data = tmp_path / "data"
    data.mkdir()
    for split, n in (("train", 400), ("validation", 600), ("test", 16)):
        _labelled_rows(data / f"{split}.csv", n)
    out = tmp_path / "stopped"
    args = ["sentiment", "--model", str(tiny_model), "--dataset", str(data), "--output-dir", str(out),
            "--max-length", "16", "--per-device-train-batch-size", "4", "--num-train-epochs", "1",
            "--logging-steps", "1"]   # 100 steps in the epoch, evaluated and saved at its end
    proc = subprocess.Popen([sys.executable, "-m", "hf_finetune", *args], env=session_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_step(proc)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 143, stderr
    assert "SIGTERM" in stderr and "resume" in stderr
    assert "validation" not in stdout, stdout
    steps = _steps(out)
    assert len(steps) == 1 and 0 < steps[0] < 100, steps
    state = read_json(_checkpoints(out) / f"checkpoint-{steps[0]}" / "trainer_state.json")
    assert state["global_step"] == steps[0]
    assert not [entry for entry in state["log_history"] if any(k.startswith("eval_") for k in entry)], \
        state["log_history"]
    resumed = run_cli(args, session_env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {_checkpoints(out) / f'checkpoint-{steps[0]}'}" in " ".join(resumed.stdout.split())
    assert read_json(out / "metrics.json")["train"]["steps"] == 100


@pytest.mark.slow   # one run of the CLI: about 25 s
def test_sigterm_during_the_hp_search_exits_143_and_leaves_nothing_behind(tmp_path, session_env, tiny_model,
                                                                          reviews_csv):
    """A search's trials save no checkpoint, so SIGTERM mid-trial ends the search at the step's end, cleans up
    as a run does (no staging dir, lock or checkpoints left beside the output dir) and says so, exit 143."""
    runs = tmp_path / "runs"
    runs.mkdir()
    out = runs / "searched"
    args = ["sentiment", "--model", str(tiny_model), "--dataset", str(reviews_csv), "--text-column", "review",
            "--output-dir", str(out), "--hp-search", "3", "--max-steps", "100000", "--eval-strategy", "steps",
            "--eval-steps", "1000", "--logging-steps", "1", "--max-length", "16"]
    proc = subprocess.Popen([sys.executable, "-m", "hf_finetune", *args], env=session_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_step(proc)   # trial 1 is training
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stdout[-2000:] + stderr
    assert "Stopped by SIGTERM during the hyper-parameter search" in stderr and "search again" in stderr
    assert "hp-search trial 2/3" not in stdout and "Trial 0 failed" not in stderr   # no next trial, no optuna noise
    assert sorted(p.name for p in runs.iterdir()) == []                             # nothing beside it, not even it
