"""Two CPU processes (DDP over gloo) through `--num-processes 2`, i.e. `accelerate launch`."""

from __future__ import annotations

import json
import math

from conftest import read_json, run_cli


def test_two_processes_write_one_run_with_gathered_metrics(tmp_path, tmp_path_factory, session_env):
    """On the embedded default (real MiniLM, real tweets), few samples."""
    out = tmp_path / "ddp"
    proc = run_cli(["sentiment", "--output-dir", str(out), "--num-train-epochs", "2", "--max-length", "32",
                    "--max-train-samples", "64", "--max-eval-samples", "24", "--max-test-samples", "30",
                    "--per-device-train-batch-size", "8", "--num-processes", "2"], session_env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert proc.stdout.count("hf-finetune sentiment:") == 1          # logging only on rank 0
    assert proc.stdout.count("finished in") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp"]   # one output dir, no leftovers
    assert len(list(out.glob("README.md"))) == 1
    info, metrics = read_json(out / "run_info.json"), read_json(out / "metrics.json")
    # 8 rows per device and 2 devices: each optimizer step takes 16 rows
    assert metrics["train"]["steps"] == 2 * math.ceil(info["splits"]["train"]["count"] / 16)
    # the test metrics cover the whole split (both ranks' predictions gathered): re-evaluating the saved
    # model on the same split in one process gives the same accuracy
    evaluation = tmp_path_factory.mktemp("ddp-eval") / "eval.json"
    again = run_cli(["evaluate", str(out), "--dataset", "embedded:crowdflower-tweet-sentiment",
                     "--output", str(evaluation)], session_env)
    assert again.returncode == 0, again.stderr
    single = json.loads(evaluation.read_text())
    assert single["examples"] == info["splits"]["test"]["count"]
    assert single["accuracy"] == metrics["test"]["accuracy"]
    # and the same loss: the per-example loss is not scaled by the number of processes
    assert math.isclose(single["loss"], metrics["test"]["loss"], rel_tol=0.02)
    assert metrics["train"]["train_loss"] < 2 * math.log(len(info["labels"]))
