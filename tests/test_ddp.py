"""Two CPU processes (DDP over gloo) through `--num-processes 2`, i.e. `accelerate launch` (tiny model: plumbing)."""

from __future__ import annotations

import json
import math

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
