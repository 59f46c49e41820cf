"""Every bad input gives a non-zero exit, one clear message, no traceback, and no half-written output."""

from __future__ import annotations

import pytest

from hf_finetune.cli import main

from conftest import run_cli


def _write(path, text, mode="w"):
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


CASES = {
    "unknown column": (lambda d, csv: ["--dataset", str(csv), "--text-column", "reveiw"],
                       "Did you mean 'review'?"),
    "unknown label column": (lambda d, csv: ["--dataset", str(csv), "--text-column", "review", "--label-column", "star"],
                             "Did you mean 'stars'?"),
    "undetectable column": (lambda d, csv: ["--dataset", str(_write(d / "x.csv", "foo,bar\n1,2\n3,4\n"))],
                            "Could not find the text column"),
    "empty file": (lambda d, csv: ["--dataset", str(_write(d / "empty.csv", ""))], "is empty"),
    "header only (empty split)": (lambda d, csv: ["--dataset", str(_write(d / "h.csv", "text,label\n"))],
                                  "holds no rows"),
    "single class": (lambda d, csv: ["--dataset", str(_write(d / "one.csv", "text,label\n" + "a,x\n" * 20))],
                     "single class"),
    "unreadable file": (lambda d, csv: ["--dataset", str(_write(d / "bad.parquet", b"\x00garbage" * 10, "wb"))],
                        "Could not read"),
    "missing file": (lambda d, csv: ["--dataset", str(d / "nope.csv")], "does not exist"),
    "missing split": (lambda d, csv: ["--dataset", str(csv), "--text-column", "review", "--train-split", "trian"],
                      "Did you mean 'train'?"),
    "bad yaml": (lambda d, csv: ["--config", str(_write(d / "bad.yaml", "learning_rate: [1e-4\nseed: 3\n"))],
                 "not valid YAML"),
    "unknown key in config": (lambda d, csv: ["--config", str(_write(d / "c.yaml", "learning_rat: 0.1\n"))],
                              "Did you mean 'learning_rate'?"),
    "unknown option": (lambda d, csv: ["--learning-rat", "0.1"], "Did you mean '--learning-rate'?"),
    "zero batch size": (lambda d, csv: ["--per-device-train-batch-size", "0"], "must be greater than 0"),
    "negative learning rate": (lambda d, csv: ["--learning-rate", "-1"], "must be greater than 0"),
    "not a number": (lambda d, csv: ["--learning-rate", "fast"], "must be a float"),
    "output dir is a file": (lambda d, csv: ["--output-dir", str(_write(d / "file.txt", "x"))], "is a file"),
    "model folder without config": (lambda d, csv: ["--model", str(d)], "not a model folder"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_fails_cleanly(name, tmp_path, reviews_csv, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    work = tmp_path / "work"
    work.mkdir()
    args_for, expected = CASES[name]
    monkeypatch.chdir(work)
    args = args_for(work, reviews_csv)
    before = set(work.rglob("*"))
    code = main(["sentiment", *args])
    captured = capsys.readouterr()
    assert code != 0, name
    assert expected in captured.err, captured.err
    assert "Traceback" not in captured.err + captured.out
    assert captured.err.count("error:") == 1
    after = set(work.rglob("*"))
    assert after == before, f"{name} left files behind: {sorted(map(str, after - before))}"


def test_unknown_task_suggests_the_right_one(capsys):
    assert main(["sentimnet"]) == 2
    assert "Did you mean 'sentiment'?" in capsys.readouterr().err


def test_unknown_template_key(tmp_path, capsys):
    from hf_finetune import templates

    text = (templates.bundled_dir() / "sentiment.yaml").read_text().replace("pipeline_tag:", "pipline_tag:")
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    assert main([str(path)]) == 2
    assert "Did you mean 'pipeline_tag'?" in capsys.readouterr().err


def test_exit_status_through_the_console_script(session_env, tmp_path):
    proc = run_cli(["sentiment", "--dataset", str(tmp_path / "missing.csv")], session_env)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error:") and "Traceback" not in proc.stderr
    debug = run_cli(["sentiment", "--dataset", str(tmp_path / "missing.csv"), "--debug"], session_env)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_an_unreachable_hub_is_noticed_without_offline_mode(session_env, reviews_csv):
    """No HF_HUB_OFFLINE: the TCP probe itself finds the endpoint refusing connections, and the message says
    what works offline instead of a long retry loop ending in a traceback."""
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]        # bound, never listening: connections are refused
        env = dict(session_env, HF_ENDPOINT=f"http://127.0.0.1:{port}")
        env.pop("HF_HUB_OFFLINE", None)
        proc = run_cli(["sentiment", "--model", "some-org/not-a-cached-model", "--dataset", str(reviews_csv)], env)
    assert proc.returncode == 1, proc.stderr
    assert "can't be reached" in proc.stderr and "What works offline" in proc.stderr
    assert "Traceback" not in proc.stderr
