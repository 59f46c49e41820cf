"""The rest of the bad-input table, a disk-full write error, and a property test of the label pipeline."""

from __future__ import annotations

import json
import math
import resource
import signal
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hf_finetune import data as data_mod, resolve_config, templates
from hf_finetune.cli import main

TINY = ["--num-train-epochs", "1", "--max-length", "16", "--per-device-train-batch-size", "16"]


def _jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


@pytest.mark.parametrize("name, task, rows, expected", [
    ("NaN / empty text everywhere", "sentiment",
     [{"text": None if i % 2 else "", "label": "ab"[i % 2]} for i in range(20)], "has no rows with every column"),
    ("fractional float labels", "sentiment",
     [{"text": f"t{i}", "label": i / 7} for i in range(20)], "regression"),
    ("summary column empty", "summarization",
     [{"document": f"some text {i}", "summary": ""} for i in range(20)], "has no rows with every column"),
    ("misspelled summary column", "summarization",
     [{"document": f"some text {i}", "summary": "s"} for i in range(20)], "Did you mean 'summary'?"),
])
def test_bad_tables(name, task, rows, expected, tmp_path, capsys):
    path = _jsonl(tmp_path / "data.jsonl", rows)
    extra = ["--summary-column", "summry"] if name.startswith("misspelled") else []
    code = main([task, "--dataset", str(path), "--output-dir", str(tmp_path / "out"), *extra, *TINY])
    err = capsys.readouterr().err
    assert code != 0 and expected in err, err
    assert "Traceback" not in err and not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.partial*"))


def test_huge_text_and_latin1_csv_still_train(tiny_model, tmp_path, caplog):
    path = tmp_path / "latin1.csv"
    rows = ["text,label"] + [f"caf\xe9 tr\xe8s bien {i},pos" if i % 2 else f"mauvais {i},neg" for i in range(40)]
    rows.append('"' + "word " * 200_000 + '",pos')          # a single 1 MB text: truncated, not a crash
    path.write_bytes("\n".join(rows).encode("latin-1"))
    code = main(["sentiment", "--model", str(tiny_model), "--dataset", str(path), "--output-dir",
                 str(tmp_path / "out"), *TINY])
    assert code == 0
    assert "not UTF-8" in caplog.text                          # read as Latin-1, with a warning
    assert (tmp_path / "out" / "run_info.json").exists()


def _limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a too-large write then fails with EFBIG, like a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))


def test_write_error_is_reported_and_leaves_nothing(tiny_model, reviews_csv, tmp_path, session_env):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "hf_finetune", "sentiment", "--model", str(tiny_model),
                           "--dataset", str(reviews_csv), "--text-column", "review", "--output-dir", str(out), *TINY],
                          env=session_env, capture_output=True, text=True, preexec_fn=_limit_file_size, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "File too large" in proc.stderr and "disk space" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".out.partial*"))


label_values = st.one_of(
    st.lists(st.integers(-5, 40), min_size=2, max_size=6, unique=True),
    st.lists(st.text("abcxyz", min_size=1, max_size=4), min_size=2, max_size=6, unique=True),
    st.just([True, False]),
    st.lists(st.integers(0, 9).map(float), min_size=2, max_size=5, unique=True),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=label_values, picks=st.lists(st.integers(0, 1000), min_size=12, max_size=40), seed=st.integers(0, 99))
def test_label_pipeline_properties(values, picks, seed, tmp_path_factory):
    labels = [values[p % len(values)] for p in picks]
    if len(set(labels)) < 2:
        labels[0], labels[1] = values[0], values[1]
    folder = tmp_path_factory.mktemp("prop")
    path = _jsonl(folder / "t.jsonl", [{"text": f"row {i}", "label": v} for i, v in enumerate(labels)])
    _, config = resolve_config("sentiment", dataset=str(path), seed=seed)
    prepared = data_mod.prepare(templates.load("sentiment"), config)

    def name(v):
        return str(int(v)) if isinstance(v, float) and not isinstance(v, bool) else str(v)

    distinct = sorted(set(labels), key=lambda v: (float(v) if not isinstance(v, str) else math.inf, str(v)))
    assert prepared.labels == [name(v) for v in distinct]        # sorted as numbers, not as text
    rows = {text: lab for split in prepared.splits.values() for text, lab in zip(split["text"], split["label"])}
    assert len(rows) == len(labels)                              # nothing lost or duplicated by the splits
    for i, original in enumerate(labels):
        assert prepared.labels[rows[f"row {i}"]] == name(original)
