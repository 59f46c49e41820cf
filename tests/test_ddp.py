"""Two CPU processes (DDP over gloo) through `--num-processes 2`, i.e. `accelerate launch` (tiny model: plumbing)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import read_json, run_cli


@pytest.mark.slow
def test_two_processes_write_one_run_with_gathered_metrics(tmp_path, tmp_path_factory, session_env, tiny_model,
                                                           reviews_csv):
    out = tmp_path / "ddp"
    proc = run_cli(["sentiment", "--model", str(tiny_model), "--dataset", str(reviews_csv), "--text-column", "review",
                    "--output-dir", str(out), "--num-train-epochs", "2", "--max-length", "32",
                    "--per-device-train-batch-size", "8", "--num-processes", "2",
                    # a new head, whose first losses are near ln(2) (below); the probe's fit on this tiny random
                    # model is confident and wrong under dropout, its training loss far above that
                    "--no-linear-probe"], session_env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert proc.stdout.count("hf-finetune sentiment:") == 1          # logging only on rank 0
    assert proc.stdout.count("finished in") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "reviews.csv"]   # one output dir, no leftovers
    assert len(list(out.glob("README.md"))) == 1
    info, metrics = read_json(out / "run_info.json"), read_json(out / "metrics.json")
    # 8 rows per device and 2 devices: each optimizer step takes 16 rows
    assert metrics["train"]["steps"] == 2 * math.ceil(info["splits"]["train"]["count"] / 16)
    # the test metrics cover the whole split (both ranks' predictions gathered): re-evaluating the saved
    # model on the same split in one process gives the same accuracy
    evaluation = tmp_path_factory.mktemp("ddp-eval") / "eval.json"
    again = run_cli(["evaluate", str(out), "--dataset", str(reviews_csv), "--output", str(evaluation)], session_env)
    assert again.returncode == 0, again.stderr
    single = json.loads(evaluation.read_text())
    assert single["examples"] == info["splits"]["test"]["count"]
    assert single["accuracy"] == metrics["test"]["accuracy"]
    # and the same loss: the per-example loss is not scaled by the number of processes
    assert math.isclose(single["loss"], metrics["test"]["loss"], rel_tol=0.02)
    # a mean of batch means near ln(2) at the start of training; scaled by the number of processes (the
    # loss-kwargs bug) it would be twice that
    assert metrics["train"]["train_loss"] < 1.5 * math.log(len(info["labels"]))


# -- several processes as a Job ----------------------------------------------------------------------------

def _job_plan(tiny_model, reviews_csv, flavor: str, **options):
    from hf_finetune import api, jobs

    template, config = api.resolve_config("sentiment", model=str(tiny_model), dataset=str(reviews_csv),
                                          text_column="review", push_to_hub="tester/ddp", **options)
    return jobs.plan(template, config, flavor=flavor)


def test_a_multi_gpu_flavor_runs_one_process_per_gpu_under_accelerate_launch(cli, tiny_model, reviews_csv):
    proc = cli(["sentiment", "--model", tiny_model, "--dataset", reviews_csv, "--text-column", "review",
                "--push-to-hub", "tester/ddp", "--jobs-flavor", "a10g-largex4", "--dry-run"])
    assert proc.returncode == 0, proc.stderr
    spec = json.loads(proc.stdout)
    assert spec["command"][2].endswith(' --output-dir "${TMPDIR:-/tmp}/hf-finetune-run" --num-processes 4')
    assert spec["launch"][:5] == ["accelerate", "launch", "--multi_gpu", "--num_processes", "4"]
    assert spec["launch"][-6:] == ["-m", "hf_finetune", "--config", "run_config.yaml", "--output-dir",
                                   "${TMPDIR:-/tmp}/hf-finetune-run"]
    # the run config the Job trains with says so too (it is fingerprinted: a re-submitted Job resumes only so)
    plan = _job_plan(tiny_model, reviews_csv, "a10g-largex4")
    assert "num_processes: 4\n" in plan.files["run_config.yaml"].decode()
    # --num-processes overrides the count; a one-GPU flavor runs one process, as before
    assert "num_processes: 2\n" in _job_plan(tiny_model, reviews_csv, "a100x8", num_processes=2).files[
        "run_config.yaml"].decode()
    single = _job_plan(tiny_model, reviews_csv, "a10g-small")
    assert single.launch is None and "--num-processes" not in single.command[2]
    assert "num_processes: 1\n" in single.files["run_config.yaml"].decode()
    too_many = cli(["sentiment", "--model", tiny_model, "--dataset", reviews_csv, "--text-column", "review",
                    "--push-to-hub", "tester/ddp", "--jobs-flavor", "l4x4", "--num-processes", "8", "--dry-run"])
    assert too_many.returncode == 2 and "more than the 4 GPUs of --jobs-flavor l4x4" in too_many.stderr


def test_every_jobs_flavor_has_its_gpu_count():
    """A flavor huggingface_hub adds must be added to the table, or its Job would run one process."""
    from hf_finetune import jobs

    assert set(jobs.GPUS) == set(jobs.flavors())
    assert all(jobs.GPUS[f] == 0 for f in jobs.GPUS if f.startswith("cpu-"))
    assert jobs.GPUS["a100x8"] == 8 and jobs.GPUS["h200x2"] == 2 and jobs.GPUS["t4-small"] == 1


# -- FSDP ------------------------------------------------------------------------------------------------

def test_fsdp_is_refused_where_it_cannot_shard_and_passed_on_where_it_can(cli, tiny_model, reviews_csv, tmp_path):
    base = ["sentiment", "--model", tiny_model, "--dataset", reviews_csv, "--text-column", "review"]
    one = cli([*base, "--output-dir", tmp_path / "one", "--fsdp"])
    assert one.returncode == 2 and "--fsdp shards the model across training processes, and this run has one" \
        in one.stderr
    # on CPU accelerate drops the FSDP plugin and trains plain DDP copies without a word: refused, before launching
    cpu = cli([*base, "--output-dir", tmp_path / "cpu", "--fsdp", "--num-processes", "2"])
    assert cpu.returncode == 2 and "--fsdp needs GPUs, and there are none here" in cpu.stderr
    assert not (tmp_path / "one").exists() and not (tmp_path / "cpu").exists()
    job = [*base, "--push-to-hub", "tester/ddp", "--fsdp", "--dry-run", "--jobs-flavor"]
    assert "there are none on --jobs-flavor cpu-basic" in cli([*job, "cpu-basic", "--num-processes", "2"]).stderr
    assert "this run has one" in cli([*job, "a10g-small"]).stderr
    plan = _job_plan(tiny_model, reviews_csv, "h200x8", fsdp=True)
    assert "fsdp: true\n" in plan.files["run_config.yaml"].decode() and "num_processes: 8\n" in \
        plan.files["run_config.yaml"].decode()


def test_fsdp_reaches_the_trainer_arguments(tiny_model):
    from transformers import AutoConfig

    from hf_finetune import api, arguments, kinds

    template, config = api.resolve_config("sentiment", model=str(tiny_model), fsdp=True)
    kind = kinds.get(template.kind)(template, AutoConfig.from_pretrained(tiny_model))
    args = arguments.training_arguments(config, template, Path("/nonexistent/checkpoints"), "f1", kind)
    assert args.fsdp is True and args.fsdp_plugin_args["state_dict_type"] == "FULL_STATE_DICT"
    _, plain = api.resolve_config("sentiment", model=str(tiny_model))
    assert not arguments.training_arguments(plain, template, Path("/nonexistent/checkpoints"), "f1", kind).fsdp


def test_the_api_refuses_a_process_count_it_was_not_launched_with(tiny_model, reviews_csv, tmp_path):
    """finetune(num_processes=2) runs in this one process: saying so beats training with half the batch asked."""
    from hf_finetune import finetune
    from hf_finetune.errors import ConfigError

    with pytest.raises(ConfigError, match="asks for 2 training processes, and this run has 1"):
        finetune("sentiment", model=str(tiny_model), dataset=str(reviews_csv), text_column="review",
                 output_dir=str(tmp_path / "out"), num_processes=2)
    assert not (tmp_path / "out").exists()


# -- several processes here: the same run, one writer, kill-safe -------------------------------------------

@pytest.fixture(scope="module")
def tiny_model_without_dropout(tmp_path_factory, tiny_model) -> Path:
    """The tiny BERT with dropout off: each process draws its own dropout masks, so only without dropout is a
    2-process run the same computation as a 1-process one (up to the order of float sums)."""
    import shutil

    path = tmp_path_factory.mktemp("tiny-no-dropout") / "model"
    shutil.copytree(tiny_model, path)
    config = json.loads((path / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.0)
    (path / "config.json").write_text(json.dumps(config))
    return path


EQUAL_RUN = ["--text-column", "review", "--num-train-epochs", "2", "--max-length", "32", "--max-train-samples", "96",
             "--train-sampling-strategy", "sequential", "--eval-strategy", "epoch", "--logging-steps", "2",
             "--no-linear-probe"]
# What is trained is the same up to the order of float sums (a mean of two 8-row means, DDP's all-reduce, vs one
# 16-row mean): measured, weights within 1e-8 and the logged training losses identical. The figures that are
# means of per-process means differ more, by how the Trainer reports them, not what it learned: an evaluation
# split of 11 rows is evened out over 2 processes by repeating a row, inside one process's batch-mean loss; and
# the final train_loss adds the steps after the last log from rank 0's losses only. Measured: 4e-4 (relative) on
# those losses; allowed 2e-3, far below what another batch, data order or step would move.
WEIGHTS_ATOL, LOGGED_RTOL, REPORTED_LOSS_RTOL = 1e-6, 1e-5, 2e-3


@pytest.mark.slow
def test_two_processes_of_batch_8_give_the_metrics_of_one_of_batch_16(tmp_path, session_env,
                                                                      tiny_model_without_dropout, reviews_csv):
    """Same data, seed and global batch (16 rows a step: the sequential sampler gives rank 0 rows 0-7 and rank
    1 rows 8-15 of the rows one process takes at once); only the number of processes differs."""
    from safetensors.torch import load_file

    model = str(tiny_model_without_dropout)
    metrics, history, weights = {}, {}, {}
    for name, processes, batch in (("one", 1, 16), ("two", 2, 8)):
        proc = run_cli(["sentiment", "--model", model, "--dataset", str(reviews_csv), *EQUAL_RUN,
                        "--output-dir", str(tmp_path / name), "--per-device-train-batch-size", str(batch),
                        "--num-processes", str(processes)], session_env)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        metrics[name] = read_json(tmp_path / name / "metrics.json")
        history[name] = [e["loss"] for e in read_json(tmp_path / name / "log_history.json") if "loss" in e]
        weights[name] = load_file(tmp_path / name / "model.safetensors")
    one, two = metrics["one"], metrics["two"]
    assert one["train"]["steps"] == two["train"]["steps"] == 12   # 96 rows, 16 a step, 2 epochs
    assert max((weights["one"][k] - weights["two"][k]).abs().max().item() for k in weights["one"]) < WEIGHTS_ATOL
    assert len(history["one"]) == 6 and all(math.isclose(a, b, rel_tol=LOGGED_RTOL)
                                            for a, b in zip(history["one"], history["two"], strict=True))
    for split in ("validation", "test"):
        assert (one[split]["accuracy"], one[split]["f1"]) == (two[split]["accuracy"], two[split]["f1"])
        assert math.isclose(one[split]["loss"], two[split]["loss"], rel_tol=REPORTED_LOSS_RTOL)
    assert math.isclose(one["train"]["train_loss"], two["train"]["train_loss"], rel_tol=REPORTED_LOSS_RTOL)
    assert one["best_checkpoint_step"] == two["best_checkpoint_step"]
    assert read_json(tmp_path / "two" / "run_info.json")["fingerprint"] != read_json(
        tmp_path / "one" / "run_info.json")["fingerprint"]   # the process count is part of the run


def _rank_pid(rank: int, marker: str, seconds: float = 300) -> int:
    """The pid of training process ``rank`` of the run whose command line holds ``marker`` (torchrun sets RANK
    in each process's environment)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if f"RANK={rank}".encode() in environ and b"TORCHELASTIC_RUN_ID" in b"\0".join(environ) \
                    and marker.encode() in command:
                return int(entry.name)
        time.sleep(0.2)
    raise AssertionError(f"no training process {rank} found")


def _wait_for(predicate, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


LONG_RUN = ["--text-column", "review", "--max-steps", "200", "--max-length", "16", "--eval-strategy", "steps",
            "--eval-steps", "5", "--early-stopping-patience", "0", "--per-device-train-batch-size", "8",
            "--no-linear-probe", "--num-processes", "2"]


def _start(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hf_finetune", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.mark.slow
@pytest.mark.parametrize("rank", [0, 1])
def test_kill_9_of_one_rank_leaves_nothing_finished_one_message_and_a_resumable_run(rank, tmp_path, session_env,
                                                                                    tiny_model, reviews_csv):
    from hf_finetune.outputs import Layout, TargetLock

    out = tmp_path / "run"
    command = ["sentiment", "--model", str(tiny_model), "--dataset", str(reviews_csv), "--output-dir", str(out),
               *LONG_RUN]
    run = _start(command, session_env)
    layout = Layout(out)
    # a second checkpoint begun: the first is complete, so there is one to resume from
    _wait_for(lambda: len(list(layout.checkpoints.glob("checkpoint-*"))) >= 2 or run.poll() is not None)
    os.kill(_rank_pid(rank, str(out)), signal.SIGKILL)   # rank 0 holds the lock and writes; rank 1 only trains
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 1, stdout + stderr
    # one message, the launcher's, naming the process; no torchrun traceback, no survivor's gloo error
    assert stderr.count("error:") == 1 and f"Training process {rank} of 2" in stderr and "SIGKILL" in stderr
    assert "Traceback" not in stderr and "ChildFailedError" not in stderr and "gloo" not in stderr
    # nothing that looks finished: no output dir (model, card, metrics), only checkpoints a resume can use
    assert not out.exists()
    assert {p.name for p in tmp_path.iterdir()} - {"reviews.csv"} <= {".run.checkpoints", ".run.lock", ".run.partial"}
    TargetLock(layout.lock).acquire(out).release()   # the lock is free (flock dies with its holder)
    again = run_cli(command, session_env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming from" in again.stdout and (out / "run_info.json").is_file()
    assert read_json(out / "metrics.json")["train"]["steps"] == 200
    assert {p.name for p in tmp_path.iterdir()} == {"run", "reviews.csv"}


@pytest.mark.slow
def test_a_second_run_on_an_output_dir_that_a_two_process_run_holds_is_refused(tmp_path, session_env, tiny_model,
                                                                              reviews_csv):
    from hf_finetune.outputs import Layout

    out = tmp_path / "run"
    command = ["sentiment", "--model", str(tiny_model), "--dataset", str(reviews_csv), "--output-dir", str(out)]
    long = [*LONG_RUN, "--max-steps", "5000"]   # it must outlast the second runs' start (the last flag wins)
    first = _start([*command, *long], session_env)
    try:
        layout = Layout(out)
        _wait_for(lambda: layout.lock.is_file() and layout.lock.read_text().strip() or first.poll() is not None)
        holder = layout.lock.read_text().strip()
        for processes in ("1", "2"):
            second = run_cli([*command, "--text-column", "review", "--num-processes", processes], session_env)
            assert second.returncode == 2, second.stdout + second.stderr
            assert second.stderr.count("error:") == 1   # the second run's rank 1 only lost its rank 0: silent
            assert f"Another hf-finetune run (pid {holder}) is writing {out}" in second.stderr
        assert first.poll() is None   # the first run goes on
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
