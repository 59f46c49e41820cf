"""Round trips that must give what the local run gives, and hostile values that must get a clear answer
(issue 28, items 8 to 10): predict on a Hub id, evaluate on other data, rare multi-label labels, label
separators, non-finite regression targets, hostile run files."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hf_finetune import data as data_mod, finetune, resolve_config
from hf_finetune.errors import DataError
from hf_finetune.kinds.multi_label_classification import iterative_stratification

from conftest import run_cli
from hub_server import HubServer

TOKEN = "hf_roundTripTestToken0123456789ab"


def hub_env(session_env: dict, url: str) -> dict:
    env = dict(session_env, HF_ENDPOINT=url, HF_TOKEN=TOKEN)
    env.pop("HF_HUB_OFFLINE", None)
    return env


# ---------------------------------------------------------------------------------------------
# item 8: round trips


def test_predict_on_a_hub_id_truncates_at_the_runs_max_length(tiny_run, tmp_path, session_env):
    """The run truncated at --max-length 16; a prediction from its Hub repo must too (run_config.yaml pulled),
    not at the model's 128 positions: long texts would get other scores than from the run dir."""
    long_texts = tmp_path / "long.txt"
    long_texts.write_text("".join(f"review {i}: " + "the product arrived late and " * 12 + "works well\n"
                                  for i in range(3)))
    local = run_cli(["predict", str(tiny_run), "--input", str(long_texts)], session_env)
    assert local.returncode == 0, local.stderr
    with HubServer(tokens={TOKEN}) as server:
        env = hub_env(session_env, server.url)
        pushed = run_cli(["push", str(tiny_run), "tester/tiny-round-trip"], env)
        assert pushed.returncode == 0, pushed.stderr + pushed.stdout
        remote = run_cli(["predict", "tester/tiny-round-trip", "--input", str(long_texts)], env)
    assert remote.returncode == 0, remote.stderr
    as_read = [json.loads(line) for line in local.stdout.splitlines()]
    assert [json.loads(line) for line in remote.stdout.splitlines()] == as_read


def test_evaluate_scores_every_row_of_other_data(tiny_run, tmp_path, cli):
    """A run made with --max-test-samples 8 caps its own test split, not a 40-row file it is evaluated on."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    config = run / "run_config.yaml"
    config.write_text(config.read_text().replace("max_test_samples: null", "max_test_samples: 8"))
    other = tmp_path / "other.csv"
    other.write_text("review,stars\n" + "".join(f"\"fine thing {i}\",{1 if i % 2 else 5}\n" for i in range(40)))
    result = tmp_path / "result.json"
    proc = cli(["evaluate", run, "--dataset", other, "--output", result])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(result.read_text())["examples"] == 40
    capped = cli(["evaluate", run, "--dataset", other, "--max-samples", "12", "--output", result])
    assert capped.returncode == 0 and json.loads(result.read_text())["examples"] == 12


def _rare_labels(rows: int = 400, labels: int = 900, seed: int = 0) -> np.ndarray:
    """Label sets of 1 to 3 labels drawn from many: most labels are carried by one or two rows."""
    rng = np.random.default_rng(seed)
    y = np.zeros((rows, labels), dtype=int)
    for i in range(rows):
        y[i, rng.choice(labels, size=rng.integers(1, 4), replace=False)] = 1
    return y[:, y.sum(axis=0) > 0]


def test_iterative_stratification_holds_out_its_share_of_rows_with_many_rare_labels():
    y = _rare_labels()
    assert y.shape[1] > 500 and (y.sum(axis=0) <= 2).mean() > 0.8
    rest, held = iterative_stratification(y, 0.1, seed=42)
    assert len(held) == 40 and sorted(rest + held) == list(range(400))
    for rows in range(4, 12):   # a small table: at least one row, as train_test_split rounds (up)
        rest, held = iterative_stratification(np.eye(rows, dtype=int), 0.1, seed=42)
        assert len(held) == -(-rows // 10), rows


def test_many_rare_labels_get_validation_and_test_splits_of_their_share(tmp_path):
    y = _rare_labels()
    table = tmp_path / "tagged.csv"
    with table.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "labels"])
        for i, row in enumerate(y):
            writer.writerow([f"text {i}", ",".join(f"label{j}" for j in np.flatnonzero(row))])
    template, config = resolve_config("multi-label", dataset=str(table))
    prepared = data_mod.prepare(template, config)
    assert {name: len(split) for name, split in prepared.splits.items()} == {"train": 324, "validation": 36,
                                                                             "test": 40}


def test_an_empty_split_is_not_reported_as_a_missing_file():
    from datasets import Dataset

    from hf_finetune.data import tokenized

    empty = Dataset.from_dict({"text": []})
    with pytest.raises(DataError, match="The validation split has no rows to tokenize"):
        tokenized.map_cached(empty, lambda batch: {"n": [1] * len(batch["text"])}, ["empty"], "validation", "x")


@pytest.fixture(scope="module")
def comma_label_run(tmp_path_factory, tiny_model) -> Path:
    """A multi-label run whose labels came as lists, one of them holding a comma."""
    root = tmp_path_factory.mktemp("comma-labels")
    data = root / "tagged.jsonl"
    rows = [{"text": f"cheap and good {i}", "labels": ["price, value", "quality"]} for i in range(12)]
    rows += [{"text": f"good {i}", "labels": ["quality"]} for i in range(12)]
    rows += [{"text": f"cheap {i}", "labels": ["price, value"]} for i in range(12)]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return Path(finetune("multi-label", model=str(tiny_model), dataset=str(data), max_length=16, num_train_epochs=1,
                         output_dir=str(root / "run")).output_dir)


def test_a_label_holding_the_separator_is_refused_not_split(comma_label_run, tmp_path, cli):
    """Evaluating on text-joined labels would read 'price, value' as two labels the model doesn't know."""
    joined = tmp_path / "joined.csv"
    joined.write_text("text,labels\n" + "".join(f"cheap and good {i},\"price, value,quality\"\n" for i in range(8)))
    proc = cli(["evaluate", comma_label_run, "--dataset", joined])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "'price, value' contains the label separator ','" in proc.stderr
    # the same rule when training: label names with the separator, labels joined by it
    template, config = resolve_config("multi-label", dataset=str(joined), label_names=["price, value", "quality"])
    with pytest.raises(DataError, match="contains the label separator"):
        data_mod.prepare(template, config)
    with_semicolons = tmp_path / "semicolons.csv"
    with_semicolons.write_text("text,labels\n" + "".join(f"cheap and good {i},\"price, value;quality\"\n"
                                                         for i in range(8)))
    scored = cli(["evaluate", comma_label_run, "--dataset", with_semicolons, "--label-separator", ";"])
    assert scored.returncode == 0, scored.stderr


# ---------------------------------------------------------------------------------------------
# item 9: regression targets and outputs that are not finite numbers


def _scores(root: Path, rows: int = 60) -> Path:
    table = root / "scores.csv"
    table.write_text("text,score\n" + "".join(f"{'great ' * (i % 5)}day {i},{i % 5 + 0.5}\n" for i in range(rows)))
    return table


def test_a_nan_target_is_refused_from_json_as_from_csv_and_an_empty_one_dropped(tmp_path):
    rows = [{"text": f"day {i}", "score": i % 5 + 0.5} for i in range(30)]
    as_json = tmp_path / "nan.jsonl"
    as_json.write_text("".join(json.dumps(dict(row, score=float("nan")) if i == 3 else row) + "\n"
                               for i, row in enumerate(rows)))   # json writes NaN, as pandas and others do
    as_csv = tmp_path / "nan.csv"
    as_csv.write_text("text,score\n" + "".join(f"{r['text']},{'nan' if i == 3 else r['score']}\n"
                                               for i, r in enumerate(rows)))
    for path in (as_json, as_csv):
        template, config = resolve_config("regression", dataset=str(path))
        with pytest.raises(DataError, match="holds '?nan'?, not a finite number.*leave the cell empty"):
            data_mod.prepare(template, config)
    null_json = tmp_path / "null.jsonl"
    null_json.write_text("".join(json.dumps(dict(row, score=None) if i == 3 else row) + "\n"
                                 for i, row in enumerate(rows)))
    empty_csv = tmp_path / "empty.csv"
    empty_csv.write_text("text,score\n" + "".join(f"{r['text']},{'' if i == 3 else r['score']}\n"
                                                  for i, r in enumerate(rows)))
    for path in (null_json, empty_csv):
        template, config = resolve_config("regression", dataset=str(path))
        assert data_mod.prepare(template, config).dropped["train"] == 1


def test_targets_whose_squares_overflow_are_refused(tmp_path):
    table = tmp_path / "huge.csv"
    table.write_text("text,score\n" + "".join(f"day {i},{i + 1}e299\n" for i in range(30)))
    template, config = resolve_config("regression", dataset=str(table))
    with pytest.raises(DataError, match=r"holds 1e\+299, beyond ±1e\+150: the squared errors of the metrics would "
                                        "overflow. Rescale the target"):
        data_mod.prepare(template, config)


def _strict_json(path: Path):
    """JSON as the standard has it: NaN and Infinity are not JSON."""
    def refuse(constant: str):
        raise AssertionError(f"{path.name} holds {constant}")
    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture(scope="module")
def regression_runs(tmp_path_factory, tiny_model) -> dict[str, Path]:
    """A tiny regression run, and one whose learning rate made its weights NaN."""
    root = tmp_path_factory.mktemp("regression-edges")
    data = _scores(root)
    common = dict(model=str(tiny_model), dataset=str(data), max_length=16, num_train_epochs=2, linear_probe=False)
    return {"fine": Path(finetune("regression", output_dir=str(root / "fine"), **common).output_dir),
            "diverged": Path(finetune("regression", output_dir=str(root / "diverged"), learning_rate=1e12,
                                      **common).output_dir), "data": data}


def test_a_diverged_run_writes_standard_json_says_why_and_predict_refuses(regression_runs, tmp_path, cli):
    run = regression_runs["diverged"]
    metrics = _strict_json(run / "metrics.json")
    assert metrics["test"]["mse"] is None
    for name in ("run_info.json", "log_history.json"):
        _strict_json(run / name)
    assert metrics["learning_check"]["findings"][0]["signal"] == "not_finite"
    assert "training diverged" in (run / "README.md").read_text()
    texts = tmp_path / "texts.txt"
    texts.write_text("a great day\na day\n")
    predicted = cli(["predict", run, "--input", texts])
    assert predicted.returncode == 1 and "not a finite number (nan)" in predicted.stderr
    assert "NaN" not in predicted.stdout and "Infinity" not in predicted.stdout
    result = tmp_path / "result.json"
    assert cli(["evaluate", run, "--dataset", regression_runs["data"], "--output", result]).returncode == 0
    assert _strict_json(result)["mse"] is None
    summary = cli(["summary", run])
    assert summary.returncode == 0 and "| test | nan |" in summary.stdout


# ---------------------------------------------------------------------------------------------
# item 10: hostile run files, refused pickles, unbounded values


@pytest.mark.parametrize("kind, key, value, said", [
    ("sentiment", "id2label", "abc", "AttributeError"),
    ("sentiment", "id2label", {"zero": "a", "one": "b"}, "invalid literal for int()"),
    ("sentiment", "hidden_size", "wide", "StrictDataclassFieldValidationError"),
    ("sentiment", "max_position_embeddings", -1, "negative dimension"),
    ("regression", "regression_target", "abc", "regression_target abc"),
    ("regression", "regression_target", {"name": "score", "mean": 1e308, "std": float("inf")}, "'std': inf"),
    ("multi-label", "multi_label_threshold", "high", "multi_label_threshold high"),
    ("multi-label", "multi_label_thresholds", ["a", "b"], "multi_label_thresholds ['a', 'b']"),
])
def test_hostile_config_values_get_a_clear_message(kind, key, value, said, tiny_run, tiny_run_data, regression_runs,
                                                   comma_label_run, tmp_path, cli):
    """A model folder may come from anyone: a config.json value of the wrong type is its fault, said so."""
    run = tmp_path / "run"
    shutil.copytree({"sentiment": tiny_run, "regression": regression_runs["fine"], "multi-label": comma_label_run}[kind],
                    run)
    config = json.loads((run / "config.json").read_text())
    config[key] = value
    (run / "config.json").write_text(json.dumps(config))   # inf is written as Infinity, which transformers reads
    texts = tmp_path / "texts.txt"
    texts.write_text("a great day\na day\n")
    for command in (["predict", run, "--input", texts],
                    ["evaluate", run, "--dataset", {"sentiment": tiny_run_data, "regression": regression_runs["data"],
                                                    "multi-label": comma_label_run.parent / "tagged.jsonl"}[kind]]):
        proc = cli(command)
        assert proc.returncode == 1, (command[0], proc.stdout)
        assert "config.json" in proc.stderr and said in proc.stderr, proc.stderr
        assert "Unexpected error" not in proc.stderr and "may be a bug" not in proc.stderr


def _evil_pickle(marker: Path) -> bytes:
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    return pickle.dumps({"state": Evil()})


def test_a_model_with_a_refused_pickle_says_so(tiny_run, tmp_path, cli):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    (run / "pytorch_model.bin").write_bytes(_evil_pickle(marker))
    texts = tmp_path / "texts.txt"
    texts.write_text("a great day\n")
    proc = cli(["predict", run, "--input", texts])
    assert proc.returncode == 1 and not marker.exists()
    assert "a pickle (.bin) that is not plain tensor data" in proc.stderr and "safetensors" in proc.stderr
    assert "Unexpected error" not in proc.stderr and "weights_only` set to `False`" not in proc.stderr


@pytest.mark.slow
def test_a_refused_checkpoint_says_so_and_how_to_start_afresh(tiny_model, regression_runs, tmp_path, session_env):
    args = ["regression", "--model", str(tiny_model), "--dataset", str(regression_runs["data"]), "--output-dir",
            str(tmp_path / "out"), "--max-length", "16", "--per-device-train-batch-size", "8", "--max-steps", "8",
            "--eval-strategy", "steps", "--eval-steps", "4", "--early-stopping-patience", "0"]
    killed = run_cli(args, dict(session_env, HF_FINETUNE_CRASH_AT="trained"))   # complete checkpoints left
    assert killed.returncode == -9, killed.stderr
    marker = tmp_path / "pwned"
    (tmp_path / ".out.checkpoints" / "checkpoint-8" / "rng_state.pth").write_bytes(_evil_pickle(marker))
    for _ in range(2):   # the checkpoint stays: every resume meets it, and is told what to do
        again = run_cli(args, session_env)
        assert again.returncode == 2 and not marker.exists(), again.stderr
        assert "checkpoint-8 this run resumes from holds a pickle that is not plain tensor data" in again.stderr
        assert "--no-resume" in again.stderr and "Unexpected error" not in again.stderr
    fresh = run_cli([*args, "--no-resume"], session_env)
    assert fresh.returncode == 0 and not marker.exists(), fresh.stderr


@pytest.mark.parametrize("trials", [1001, 10**12])
def test_hp_search_is_bounded(trials):
    """Refused when the run is configured, before any work (unbounded, a run would search until killed)."""
    from hf_finetune.errors import ConfigError

    with pytest.raises(ConfigError, match=f"'hp_search' is a number of trials from 1 to 1000, got {trials}"):
        resolve_config("sentiment", hp_search=trials)
    assert resolve_config("sentiment", hp_search=1000)[1].hp_search == 1000
