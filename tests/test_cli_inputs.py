"""Issue 25 items 5 and 11 (CLI and config parts): inputs read as the user meant, bad values refused with
a message naming the flag, before any model loads."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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


def test_predict_reads_a_piped_table_without_column_by_its_header(tiny_run, session_env):
    """`cat a.csv | predict --input -`: a first line of column names naming a text column is a header."""
    def predict(text):
        return subprocess.run([sys.executable, "-m", "hf_finetune", "predict", str(tiny_run), "--input", "-"],
                              input=text, env=session_env, capture_output=True, text=True, timeout=300)

    table = predict("id,tweet,label\n1,love it,pos\n2,broke after a day,neg\n")
    assert table.returncode == 0, table.stderr
    assert _predicted_inputs(table.stdout) == ["love it", "broke after a day"]
    lines = predict("love it, five stars\nbroke after a day\n")   # text lines stay text lines
    assert _predicted_inputs(lines.stdout) == ["love it, five stars", "broke after a day"]
    header_only = predict("text,label\n")
    assert header_only.returncode == 1 and "standard input" in header_only.stderr, header_only.stderr
    assert "/tmp" not in header_only.stderr


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


# -- 11. bad values: one clear message naming the flag, before any model loads --------------------------------

def _small_table(folder):
    path = folder / "small.csv"
    path.write_text("text,label\n" + "".join(f"good thing {i},pos\n" if i % 2 else f"bad thing {i},neg\n"
                                             for i in range(40)), encoding="utf-8")
    return path


@pytest.mark.parametrize("flags, named", [
    (["--seed", "-1"], ["--seed"]),
    (["--seed", str(2**32)], ["--seed"]),
    (["--lr-scheduler-type", "bogus"], ["--lr-scheduler-type", "cosine_with_restarts"]),
    (["--max-steps", "-5"], ["--max-steps", "-1"]),
    (["--max-steps", "0"], ["--max-steps"]),
    (["--num-processes", "0"], ["--num-processes"]),
    (["--gradient-accumulation-steps", "100000"], ["--gradient-accumulation-steps", "batches"]),
    (["--label-names", "neg,pos,neutral"], ["--label-names", "'neutral'"]),
])
def test_bad_values_are_refused_naming_the_flag(flags, named, tiny_model, tmp_path, cli):
    out = tmp_path / "out"
    proc = cli(["sentiment", "--model", tiny_model, "--dataset", _small_table(tmp_path), "--output-dir", out,
                "--per-device-train-batch-size", "16", "--max-length", "16", *flags])
    assert proc.returncode != 0
    assert all(name in proc.stderr for name in named), proc.stderr
    assert "Unexpected error" not in proc.stderr and "Traceback" not in proc.stderr
    assert "tokenization:" not in proc.stdout and not out.exists()   # refused before the model and tokenizing


def test_label_names_of_integer_labels_still_name_them(tiny_model, tmp_path, cli):
    """Names for integer labels 0, 1 (each occurring) are still taken."""
    path = tmp_path / "ints.csv"
    path.write_text("text,label\n" + "".join(f"thing {i},{i % 2}\n" for i in range(40)), encoding="utf-8")
    proc = cli(["sentiment", "--model", tiny_model, "--dataset", path, "--output-dir", tmp_path / "out",
                "--per-device-train-batch-size", "16", "--max-length", "16", "--num-train-epochs", "1",
                "--label-names", "neg,pos"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "out" / "config.json").read_text())["id2label"] == {"0": "neg", "1": "pos"}


def test_deeply_nested_yaml_config_is_refused_clearly(tmp_path, cli):
    config = tmp_path / "deep.yaml"
    config.write_text("seed: " + "[" * 5000 + "]" * 5000 + "\n")
    proc = cli(["sentiment", "--config", config])
    assert proc.returncode == 2 and "nested" in proc.stderr, proc.stderr
    assert "Unexpected error" not in proc.stderr and "RecursionError" not in proc.stderr


def test_a_python_tag_in_a_config_is_refused_as_code_not_as_indentation(tmp_path, cli):
    config = tmp_path / "tag.yaml"
    config.write_text('seed: !!python/object/apply:os.system ["touch pwned"]\n')
    proc = cli(["sentiment", "--config", config])
    assert proc.returncode == 2 and "!!python/object/apply:os.system" in proc.stderr, proc.stderr
    assert "never run" in proc.stderr and "indentation" not in proc.stderr


# -- 11. init-ci: an install spec that does not pin one build is written with a warning ----------------------

@pytest.mark.parametrize("spec", ["hf-finetune", "hf-finetune>=0.1", "hf-finetune[embedded]~=0.1",
                                  "hf-finetune @ git+https://github.com/org/hf-finetune",
                                  "hf-finetune @ git+https://github.com/org/hf-finetune@main"])
def test_init_ci_warns_about_an_unpinned_install_spec(spec, tmp_path, cli):
    proc = cli(["init-ci", "--dir", tmp_path, "--install-spec", spec])
    assert proc.returncode == 0, proc.stderr
    assert "not reproducible" in proc.stderr and "pinned" in proc.stderr, proc.stderr
    assert (tmp_path / ".github/workflows/hf-finetune-train.yml").exists()


@pytest.mark.parametrize("spec", ["hf-finetune[embedded]==0.1.0",
                                  "hf-finetune[embedded] @ git+https://github.com/org/hf-finetune@0123abc",
                                  "hf-finetune @ https://example.org/hf_finetune-0.1.0-py3-none-any.whl#sha256=ab12"])
def test_init_ci_takes_a_pinned_install_spec_without_a_word(spec, tmp_path, cli):
    proc = cli(["init-ci", "--dir", tmp_path, "--install-spec", spec])
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_init_ci_refuses_the_placeholder_of_its_own_message(tmp_path, cli):
    refused = cli(["init-ci", "--dir", tmp_path / "a"])
    placeholder = refused.stderr.split("--install-spec (e.g. '")[1].split("')")[0]
    proc = cli(["init-ci", "--dir", tmp_path / "b", "--install-spec", placeholder])
    assert proc.returncode == 2 and "placeholder" in proc.stderr, proc.stderr
    assert not (tmp_path / "b").exists()
