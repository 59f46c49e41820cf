"""`--resume-from-hub` against the tests' Hub server: what reaches the checkpoint branch, and what a run
does with a branch that holds another run's checkpoint.

One run (A) is killed right after training (HF_FINETUNE_CRASH_AT=trained), so its checkpoint of step 8
stays on the branch; the tests read what it uploaded, or start other runs against that branch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli, write_reviews_csv
from hub_server import HubServer

TOKEN = "hf_ckptTestToken_2b9e4d7a1c3f5e80"
REPO = "tester/ckpt-branch"
RUN = ["sentiment", "--text-column", "review", "--max-length", "16", "--eval-strategy", "steps", "--eval-steps", "4",
       "--per-device-train-batch-size", "8", "--logging-steps", "2", "--max-train-samples", "64",
       "--max-eval-samples", "16", "--max-test-samples", "16"]


def hub_env(session_env: dict, url: str, **extra: str) -> dict:
    env = dict(session_env, HF_ENDPOINT=url, HF_TOKEN=TOKEN, **extra)
    env.pop("HF_HUB_OFFLINE", None)
    return env


@pytest.fixture(scope="module")
def server():
    with HubServer(tokens={TOKEN}) as hub:
        yield hub


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_model) -> tuple[Path, Path]:
    """The model and data, both under the test's temporary folder (so any local path would name it)."""
    return tiny_model, write_reviews_csv(tmp_path_factory.mktemp("ckpt-data") / "reviews.csv")


@pytest.fixture(scope="module")
def run_a(server, session_env, inputs, tmp_path_factory):
    """Run A (learning rate 5e-4, 8 steps) keeps its checkpoints on the branch, and is killed after training."""
    model, data = inputs
    out = tmp_path_factory.mktemp("run-a") / "out"
    proc = run_cli([*RUN, "--model", model, "--dataset", data, "--output-dir", out, "--max-steps", "8",
                    "--learning-rate", "5e-4", "--resume-from-hub", "--push-to-hub", REPO],
                   hub_env(session_env, server.url, HF_FINETUNE_CRASH_AT="trained"))
    assert proc.returncode == -9, proc.stdout[-2000:] + proc.stderr
    assert "[hf-finetune] step 8/8" in proc.stdout   # (the progress line a resumed run must not print again)
    assert json.loads(server.file_bytes(REPO, "last-checkpoint/trainer_state.json", "hf-finetune-checkpoints")
                      )["global_step"] == 8
    return proc


def test_nothing_on_the_checkpoint_branch_holds_a_local_path(run_a, server, tmp_path_factory):
    """resume.json held the model and data as typed, trainer_state.json the local best checkpoint."""
    local = [str(tmp_path_factory.getbasetemp()).encode(), str(Path.home()).encode()]
    branch = server.files(REPO, "hf-finetune-checkpoints")
    assert {"last-checkpoint/resume.json", "last-checkpoint/trainer_state.json", "last-checkpoint/model.safetensors"
            } <= set(branch)
    assert server.uploads   # every byte the client sent, of each checkpoint commit
    leaks = [(i, path) for i, chunk in enumerate(server.uploads) for path in local if path in chunk]
    assert not leaks, [server.uploads[i][:300] for i, _ in leaks]
    state = json.loads(branch["last-checkpoint/resume.json"])["fingerprint"]["settings"]
    assert (state["model"], state["dataset"]) == ("tiny-bert0", "reviews.csv")
    assert json.loads(branch["last-checkpoint/trainer_state.json"])["best_model_checkpoint"].startswith("checkpoint-")
    # the repo is public (no --hub-private-repo): the run said so
    assert not server.repo(REPO).private
    assert f"branch hf-finetune-checkpoints of {REPO}, a public repo" in run_a.stdout


def test_a_branch_of_another_run_is_refused_before_local_checkpoints_are_touched(run_a, server, session_env,
                                                                                  inputs, tmp_path):
    """Run B (the default learning rate, 4 steps) was killed here after its checkpoint of step 4; the branch
    holds run A's step 8. Resuming B from the Hub must refuse, blaming the branch, and keep B's checkpoint."""
    model, data = inputs
    out = tmp_path / "out"
    run_b = [*RUN, "--model", model, "--dataset", data, "--output-dir", out, "--max-steps", "4"]
    killed = run_cli(run_b, dict(session_env, HF_FINETUNE_CRASH_AT="trained"))
    assert killed.returncode == -9, killed.stdout[-2000:] + killed.stderr
    checkpoints = tmp_path / ".out.checkpoints"
    before = {p.relative_to(checkpoints): p.read_bytes() for p in checkpoints.rglob("*") if p.is_file()}
    assert Path("checkpoint-4/trainer_state.json") in before

    proc = run_cli([*run_b, "--resume-from-hub", "--push-to-hub", REPO], hub_env(session_env, server.url))
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr
    message = " ".join(proc.stderr.split())
    assert f"The checkpoint on the Hub ({REPO}, branch hf-finetune-checkpoints, step 8) is of a run with other " \
           "settings (learning_rate, max_steps)" in message
    assert "Local checkpoints were left as they are" in message and "--no-resume" in message
    after = {p.relative_to(checkpoints): p.read_bytes() for p in checkpoints.rglob("*") if p.is_file()}
    assert after == before   # B's own checkpoint, untouched
    assert json.loads(server.file_bytes(REPO, "last-checkpoint/trainer_state.json", "hf-finetune-checkpoints")
                      )["global_step"] == 8   # and A's on the Hub too


def test_the_same_run_from_another_folder_resumes_from_the_branch(run_a, server, session_env, inputs, tmp_path,
                                                                   tmp_path_factory):
    """Run A's command on another machine (its data at another path, same file): the branch's checkpoint is
    taken, training continues from step 8 (nothing left to train), the run is pushed and the branch deleted;
    nothing pushed, the final push included, holds a local path."""
    model, data = inputs
    elsewhere = tmp_path / "elsewhere" / data.name
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(data.read_bytes())
    proc = run_cli([*RUN, "--model", model, "--dataset", elsewhere, "--output-dir", tmp_path / "out", "--max-steps",
                    "8", "--learning-rate", "5e-4", "--resume-from-hub", "--push-to-hub", REPO],
                   hub_env(session_env, server.url))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    assert f"checkpoint of step 8 found on the Hub ({REPO}" in proc.stdout and "resuming from" in proc.stdout
    assert "[hf-finetune] step " not in proc.stdout   # no step trained again
    assert "model.safetensors" in server.files(REPO) and "hf-finetune-checkpoints" not in server.repo(REPO).refs
    local = [str(tmp_path_factory.getbasetemp()).encode(), str(Path.home()).encode()]
    assert not [path for chunk in server.uploads for path in local if path in chunk]
