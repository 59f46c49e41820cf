"""Resume after SIGKILL (bit-identical on CPU), checkpoint-and-exit on SIGTERM, atomic output dirs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import read_json, run_cli

ARGS = ["--max-train-samples", "96", "--max-eval-samples", "32", "--max-test-samples", "32", "--max-length", "32",
        "--per-device-train-batch-size", "8", "--max-steps", "36", "--eval-strategy", "steps", "--eval-steps", "12",
        "--logging-steps", "4", "--early-stopping-patience", "0"]


def _start(out: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hf_finetune", "sentiment", "--output-dir", str(out), *ARGS],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(out: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    staging = out.parent / f".{out.name}.partial" / "checkpoints"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if list(staging.glob("checkpoint-*/trainer_state.json")):
            return
        if proc.poll() is not None:
            pytest.fail(f"run ended before its first checkpoint: {proc.stderr.read()}")
        time.sleep(0.2)
    pytest.fail("no checkpoint appeared")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, session_env):
    out = tmp_path_factory.mktemp("reliability") / "reference"
    proc = run_cli(["sentiment", "--output-dir", str(out), *ARGS], session_env)
    assert proc.returncode == 0, proc.stderr
    return out


def test_sigkill_then_resume_matches_an_uninterrupted_run(uninterrupted, tmp_path, session_env):
    out = tmp_path / "killed"
    proc = _start(out, session_env)
    _wait_for_checkpoint(out, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "a killed run must not leave a finished-looking dir"
    resumed = run_cli(["sentiment", "--output-dir", str(out), *ARGS], session_env)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout
    expected, actual = load_file(uninterrupted / "model.safetensors"), load_file(out / "model.safetensors")
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[k], actual[k]) for k in expected)          # bit-identical on CPU
    quality = ("loss", "accuracy", "f1")
    reference, got = read_json(uninterrupted / "metrics.json"), read_json(out / "metrics.json")
    assert {k: got["test"][k] for k in quality} == {k: reference["test"][k] for k in quality}
    assert not (out.parent / f".{out.name}.partial").exists()


def test_sigterm_saves_a_checkpoint_and_exits_non_zero(tmp_path, session_env):
    out = tmp_path / "terminated"
    proc = _start(out, session_env)
    _wait_for_checkpoint(out, proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 143, stderr
    assert "SIGTERM" in stderr and "resume" in stderr
    assert not out.exists()
    checkpoints = list((out.parent / f".{out.name}.partial" / "checkpoints").glob("checkpoint-*"))
    assert checkpoints
    resumed = run_cli(["sentiment", "--output-dir", str(out), *ARGS], session_env)
    assert resumed.returncode == 0 and "resuming from" in resumed.stdout
    assert (out / "run_info.json").exists()


def test_checkpoints_of_other_settings_are_not_resumed(tmp_path, session_env):
    out = tmp_path / "changed"
    proc = _start(out, session_env)
    _wait_for_checkpoint(out, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=300)
    assert proc.returncode == 143
    changed = [a if a != "36" else "24" for a in ARGS]            # another --max-steps: a different run
    again = run_cli(["sentiment", "--output-dir", str(out), *changed], session_env)
    assert again.returncode == 0, again.stderr
    assert "resuming" not in again.stdout
    assert read_json(out / "metrics.json")["train"]["steps"] == 24
