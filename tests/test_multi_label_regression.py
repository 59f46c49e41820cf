"""Multi-label and regression templates, end to end on real data offline: one short run of each (module
fixtures) that several tests read. Learning is checked against the kinds' own trivial predictors on the
same test split (the best constant label set; the training mean), computed here from the data."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from hf_finetune import data as data_mod, kinds, resolve_config
from hf_finetune.data.sources import load_raw
from hf_finetune.errors import DataError
from hf_finetune.kinds.multi_label_classification import encode_label_sets, iterative_stratification

from conftest import run_cli

# measured on a loaded 2-core machine: test micro-F1 0.288 vs the prior's 0.182; MSE 0.0330 vs the mean's 0.0362
ML_SETTINGS = ["--max-train-samples", "640", "--max-eval-samples", "150", "--max-test-samples", "300",
               "--num-train-epochs", "2", "--max-length", "40", "--per-device-train-batch-size", "16",
               "--eval-strategy", "epoch"]
REG_SETTINGS = ["--max-train-samples", "800", "--max-eval-samples", "150", "--max-test-samples", "300",
                "--num-train-epochs", "1", "--max-length", "40", "--per-device-train-batch-size", "16",
                "--eval-strategy", "epoch", "--target-unit", "share of annotators"]


def _settings(args: list[str]) -> dict:
    """The CLI flags above as API keywords, to rebuild the run's own splits here."""
    def value(text: str):
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    return {k.lstrip("-").replace("-", "_"): value(v) for k, v in zip(args[::2], args[1::2])}


@pytest.fixture(scope="module")
def multi_label_run(tmp_path_factory, session_env) -> Path:
    out = tmp_path_factory.mktemp("ml") / "run"
    proc = run_cli(["multi-label", "--output-dir", out, *ML_SETTINGS], session_env, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory, session_env) -> Path:
    out = tmp_path_factory.mktemp("reg") / "run"
    proc = run_cli(["regression", "--output-dir", out, *REG_SETTINGS], session_env, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _prepared(task: str, args: list[str]):
    template, config = resolve_config(task, **_settings(args))
    kind = kinds.get(template.kind)
    return kind(template), config, data_mod.prepare(template, config, kind)


def _read(run: Path, name: str) -> dict:
    return json.loads((run / name).read_text())


def _write_csv(path: Path, texts: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text"])
        writer.writerows([t] for t in texts)


def _usage_snippet(run: Path) -> str:
    card = (run / "README.md").read_text()
    return re.search(r"## How to use\n\n```python\n(.*?)```", card, re.S).group(1)


# ---------------------------------------------------------------------------------------------
# multi-label


@pytest.mark.slow
def test_multi_label_beats_the_label_frequency_prior(multi_label_run):
    kind, config, prepared = _prepared("multi-label", ML_SETTINGS)
    prior = kind.baseline(prepared.splits["train"], prepared.splits["test"], prepared.labels, config)
    test = _read(multi_label_run, "metrics.json")["test"]
    assert test["f1_micro"] >= prior["metrics"]["f1_micro"] + 0.05, (test, prior)
    assert test["f1_macro"] > prior["metrics"]["f1_macro"], (test, prior)


@pytest.mark.slow
def test_threshold_is_tuned_on_validation_saved_and_used_by_predict(multi_label_run, tmp_path):
    metrics, config = _read(multi_label_run, "metrics.json"), _read(multi_label_run, "config.json")
    threshold = config["multi_label_threshold"]
    assert config["problem_type"] == "multi_label_classification"
    assert threshold == metrics["validation"]["threshold"] == metrics["test"]["threshold"]
    texts = tmp_path / "sentences.txt"
    texts.write_text("We propose a new parsing algorithm based on dynamic programming.\n"
                     "Our experiments show an improvement of 5 points over the baseline.\n"
                     "Current systems cannot handle long documents.\n", encoding="utf-8")
    out = tmp_path / "pred.jsonl"
    from hf_finetune.cli import main

    assert main(["predict", str(multi_label_run), "--input", str(texts), "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3
    labels = _read(multi_label_run, "run_info.json")["labels"]
    thresholds = dict(zip(labels, config["multi_label_thresholds"], strict=True))
    for row in rows:
        assert row["threshold"] == threshold and row["thresholds"] == thresholds
        assert row["labels"] == [name for name, p in row["scores"].items() if p >= thresholds[name]]
    assert any(row["labels"] for row in rows)
    # the card's snippet runs as written and scores as predict does (a sigmoid per label, not a softmax)
    printed = []
    exec(_usage_snippet(multi_label_run), {"print": lambda *args: printed.append(args)})
    (chosen, scores), = printed
    card_input = _read(multi_label_run, "run_info.json")["example_input"]
    texts.write_text(card_input + "\n", encoding="utf-8")
    assert main(["predict", str(multi_label_run), "--input", str(texts), "--output", str(out)]) == 0
    row = json.loads(out.read_text(encoding="utf-8"))
    assert chosen == row["labels"]
    assert {s["label"]: round(s["score"], 4) for s in scores} == {k: round(v, 4) for k, v in row["scores"].items()}


@pytest.mark.slow
def test_multi_label_card_lists_each_label_with_counts_and_f1(multi_label_run):
    kind, config, prepared = _prepared("multi-label", ML_SETTINGS)
    card = (multi_label_run / "README.md").read_text()
    info = _read(multi_label_run, "run_info.json")
    assert info["labels"] == prepared.labels
    rows = {m.group(1): m.groups() for m in re.finditer(
        r"^\| \d+ \| (\S+) \| (\d+) \| (\d+) \| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", card, re.M)}
    assert set(rows) == set(prepared.labels)
    train = np.asarray(prepared.splits["train"]["labels"]).sum(axis=0)
    for i, name in enumerate(prepared.labels):
        assert int(rows[name][1]) == int(train[i]), name
        assert float(rows[name][6]) == pytest.approx(info["test_analysis"]["per_class"][name]["f1"], abs=1e-4)
    assert "multi_label_threshold" in card and "top_k=None" in card


@pytest.mark.slow
def test_evaluate_reproduces_the_multi_label_test_metrics(multi_label_run, cli):
    saved = _read(multi_label_run, "metrics.json")["test"]
    from hf_finetune.evaluation import evaluate_run
    from hf_finetune.rundir import RunDir

    dataset = RunDir(multi_label_run).config["dataset"] or "embedded:kaomoji-emotions"
    result = evaluate_run(multi_label_run, dataset)
    for key in ("f1_micro", "f1_macro", "subset_accuracy", "threshold"):
        assert result[key] == pytest.approx(saved[key], abs=1e-6), key


def test_label_lists_separated_text_and_0_1_columns_read_the_same(tmp_path):
    rows = [("so happy today", ["joy"]), ("scary and sad", ["fear", "sadness"]), ("meh", []),
            ("what a joyful surprise", ["joy", "surprise"])] * 3
    names = ["fear", "joy", "sadness", "surprise"]
    (tmp_path / "lists.jsonl").write_text("".join(json.dumps({"text": t, "labels": ls}) + "\n" for t, ls in rows))
    (tmp_path / "joined.csv").write_text("text,emotions\n" + "".join(f'"{t}","{"|".join(ls)}"\n' for t, ls in rows))
    (tmp_path / "columns.csv").write_text("text," + ",".join(names) + "\n" + "".join(
        f'"{t}",' + ",".join(str(int(n in ls)) for n in names) + "\n" for t, ls in rows))
    encoded = []
    for path, extra in (("lists.jsonl", {}), ("joined.csv", {"label_column": "emotions", "label_separator": "|"}),
                        ("columns.csv", {"label_columns": names})):
        template, config = resolve_config("multi-label", dataset=str(tmp_path / path), **extra)
        prepared = data_mod.prepare_split(template, config, kinds.get(template.kind), None, "train")
        encoded.append((prepared.labels, prepared.splits["test"]["labels"]))
    expected = [[float(n in ls) for n in names] for _, ls in rows]
    # the empty cell of the joined CSV is a missing label set: that row is dropped, not read as "no label"
    assert encoded[0] == (names, expected)
    assert encoded[2] == (names, expected)
    assert encoded[1] == (names, [e for e, (_, ls) in zip(expected, rows) if ls])


def test_label_ids_take_their_names_from_a_names_file(tmp_path):
    """Multi-label rows given as ids (a list of ints, or "0,2" text) with the names in label_names.txt or
    labels.txt beside the data, one per line in id order."""
    rows = [("so happy today", [1]), ("scary and sad", [0, 2]), ("a joyful surprise", [1, 3])] * 4
    names = ["fear", "joy", "sadness", "surprise"]
    expected = sorted([float(i in ids) for i in range(4)] for _, ids in rows)
    lists, joined = tmp_path / "lists", tmp_path / "joined"
    lists.mkdir(), joined.mkdir()
    (lists / "data.jsonl").write_text("".join(json.dumps({"text": t, "labels": ids}) + "\n" for t, ids in rows))
    (lists / "label_names.txt").write_text("\n".join(names) + "\n")
    (joined / "data.csv").write_text("text,labels\n" + "".join(f'"{t}","{",".join(map(str, ids))}"\n'
                                                                 for t, ids in rows))
    (joined / "labels.txt").write_text("\n".join(names) + "\n")
    for path, names_file in ((lists / "data.jsonl", "label_names.txt"), (joined / "data.csv", "labels.txt")):
        template, config = resolve_config("multi-label", dataset=str(path))
        prepared = data_mod.prepare(template, config)
        assert (prepared.labels, prepared.source.label_names_file) == (names, names_file)
        assert sorted(row for split in prepared.splits.values() for row in split["labels"]) == expected
    (joined / "labels.txt").write_text("\n".join(names[:3]) + "\n")
    template, config = resolve_config("multi-label", dataset=str(joined / "data.csv"))
    with pytest.raises(DataError, match="holds the id 3, but only 3 label names were given"):
        data_mod.prepare(template, config)
    (joined / "labels.txt").write_text("joy\nfear\njoy\n")     # one label per row, not a names file
    with pytest.raises(DataError, match="labels.txt beside the data repeats the name 'joy'"):
        data_mod.prepare(template, config)


def test_iterative_stratification_gives_each_label_its_share():
    template, config = resolve_config("multi-label")
    raw, _, _ = load_raw(template.default_dataset, config)
    encoded, names = encode_label_sets(raw, "aspects")
    y = np.asarray(encoded["train"]["labels"], dtype=int)
    rest, held = iterative_stratification(y, 0.1, seed=42)
    assert sorted(rest + held) == list(range(len(y)))
    assert abs(len(held) - 0.1 * len(y)) <= 1
    # each label's held-out count is its 10% share to within one row (a random split misses by ~6 rows)
    wanted, got = 0.1 * y.sum(axis=0), y[held].sum(axis=0)
    assert np.all(np.abs(got - wanted) <= 1.0), dict(zip(names, zip(got, wanted.round(1))))


# ---------------------------------------------------------------------------------------------
# regression


@pytest.mark.slow
def test_regression_beats_the_mean_predictor(regression_run):
    kind, config, prepared = _prepared("regression", REG_SETTINGS)
    mean = kind.baseline(prepared.splits["train"], prepared.splits["test"], None, config)
    test = _read(regression_run, "metrics.json")["test"]
    assert test["mse"] < mean["metrics"]["mse"] * 0.97, (test, mean)
    assert test["pearson"] > 0.15, test


@pytest.mark.slow
def test_regression_predictions_come_back_in_the_targets_units(regression_run, tmp_path):
    kind, config, prepared = _prepared("regression", REG_SETTINGS)
    saved = _read(regression_run, "config.json")
    scaling = saved["regression_target"]
    train = np.asarray(prepared.splits["train"]["target"])
    assert saved["problem_type"] == "regression" and list(saved["id2label"].values()) == ["confidence"]
    assert scaling["mean"] == pytest.approx(train.mean()) and scaling["std"] == pytest.approx(train.std())
    texts = tmp_path / "tweets.csv"
    sample = prepared.splits["test"].select(range(40))
    _write_csv(texts, sample["text"])
    out = tmp_path / "pred.jsonl"
    from hf_finetune.cli import main

    assert main(["predict", str(regression_run), "--input", str(texts), "--output", str(out)]) == 0
    values = np.array([json.loads(line)["confidence"] for line in out.read_text().splitlines()])
    # in the target's units: around the training mean, not around 0 (the standardised scale)
    assert abs(values.mean() - train.mean()) < train.std(), (values.mean(), train.mean())
    # the card's snippet maps the raw score back the same way
    printed = []
    exec(_usage_snippet(regression_run), {"print": lambda *args: printed.append(args)})
    (value,), = printed
    _write_csv(texts, [_read(regression_run, "run_info.json")["example_input"]])
    assert main(["predict", str(regression_run), "--input", str(texts), "--output", str(out)]) == 0
    assert value == pytest.approx(json.loads(out.read_text())["confidence"], abs=1e-4)


@pytest.mark.slow
def test_regression_card_states_the_targets_range_and_unit(regression_run):
    card = (regression_run / "README.md").read_text()
    scaling = _read(regression_run, "config.json")["regression_target"]
    assert f"from {scaling['min']:.4g} to {scaling['max']:.4g}" in card
    assert "(share of annotators)" in card and 'function_to_apply="none"' in card


# ---------------------------------------------------------------------------------------------
# the sentiment template's data checks point to the template that fits


@pytest.mark.parametrize("rows, fits", [
    ([{"text": f"t{i}", "label": ["a", "b"][: 1 + i % 2]} for i in range(8)], "hf-finetune multi-label"),
    ([{"text": f"t{i}", "label": 0.1 * i + 0.05} for i in range(8)], "hf-finetune regression"),
])
def test_sentiment_data_checks_name_the_template_that_fits(tmp_path, rows, fits):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    template, config = resolve_config("sentiment", dataset=str(path))
    with pytest.raises(DataError) as err:
        data_mod.prepare(template, config)
    assert fits in f"{err.value} {err.value.hint}"


def test_each_label_gets_its_own_threshold_where_validation_has_enough_of_it():
    """A label whose texts score low (a rare label under a common threshold it never reaches) gets a threshold
    of its own; one with fewer than MIN_POSITIVES validation texts keeps the common one."""
    from hf_finetune.kinds.multi_label_classification import MIN_POSITIVES, best_thresholds

    rng = np.random.default_rng(0)
    truth = np.zeros((300, 3), dtype=int)
    truth[:150, 0] = 1
    truth[:20, 1] = 1
    truth[:MIN_POSITIVES - 1, 2] = 1
    probabilities = np.column_stack([0.6 * truth[:, 0] + 0.3 * rng.random(300),    # positives 0.6-0.9
                                     0.15 * truth[:, 1] + 0.1 * rng.random(300),    # positives 0.15-0.25
                                     0.15 * truth[:, 2] + 0.1 * rng.random(300)])
    thresholds = best_thresholds(probabilities, truth, 0.5)
    assert thresholds[0] == 0.5                     # 0.35-0.6 all separate it: the one nearest the common
    assert 0.1 < thresholds[1] <= 0.25              # its own
    assert thresholds[2] == 0.5                     # too few validation texts for one of its own
