"""Issue 25 items 5 and 11 (CLI and config parts): inputs read as the user meant, bad values refused with
a message naming the flag, before any model loads."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import run_cli


def _predicted_inputs(stdout: str) -> list[str]:
    return [json.loads(line)["input"] for line in stdout.splitlines() if line.strip()]


# -- 5. predict reads stdin tables and finds the columns training finds --------------------------------------

def test_predict_reads_a_csv_on_stdin_by_its_column(tiny_run, session_env):
    table = 'text,label\n"great product, works well",pos\nbroke after a day,neg\n'
    proc = subprocess.run([sys.executable, "-m", "hf_finetune", "predict", str(tiny_run), "--input", "-",
                           "--column", "text"], input=table, env=session_env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert _predicted_inputs(proc.stdout) == ["great product, works well", "broke after a day"]


def test_predict_finds_a_tweet_column_as_training_does(tiny_run, tmp_path, session_env):
    table = tmp_path / "tweets.csv"
    table.write_text("id,tweet\n1,love it\n2,worst purchase ever\n", encoding="utf-8")
    proc = run_cli(["predict", str(tiny_run), "--input", str(table)], session_env)
    assert proc.returncode == 0, proc.stderr
    assert _predicted_inputs(proc.stdout) == ["love it", "worst purchase ever"]


def test_predict_reads_dev_stdin_like_dash(tiny_run, session_env):
    """/dev/stdin is a readable stream, not a missing file: lines, or a table with --column."""
    lines = subprocess.run([sys.executable, "-m", "hf_finetune", "predict", str(tiny_run), "--input", "/dev/stdin"],
                           input="love it\nbroke after a day\n", env=session_env, capture_output=True, text=True,
                           timeout=300)
    assert lines.returncode == 0, lines.stderr
    assert _predicted_inputs(lines.stdout) == ["love it", "broke after a day"]
    table = subprocess.run([sys.executable, "-m", "hf_finetune", "predict", str(tiny_run), "--input", "/dev/stdin",
                            "--column", "text"], input="label\ttext\npos\tlove it\n", env=session_env,
                           capture_output=True, text=True, timeout=300)
    assert table.returncode == 0, table.stderr
    assert _predicted_inputs(table.stdout) == ["love it"]
