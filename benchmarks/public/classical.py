"""Classical reference figures for the public suite, on each set's own test split, in seconds on a CPU.

    python benchmarks/public/classical.py          # writes benchmarks/public/classical.json

The splits are read through ``hf_finetune.data.prepare`` (exactly what a run trains and tests on); the
metrics are the ones a run reports (the project's bundled metric modules where the engine has a
baseline of its own, scikit-learn / scipy otherwise). Every model is fitted on train only; validation is
not used. These are the figures a fine-tuned default must beat (issue 26).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 2026
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def load(task: str, folder: str, **options: Any):
    from hf_finetune import data, templates
    from hf_finetune.config import RunConfig

    return data.prepare(templates.load(task), RunConfig(task=task, dataset=str(HERE / folder), **options))


def text_classification(folder: str) -> list[dict[str, Any]]:
    from hf_finetune.kinds import baselines

    prepared = load("sentiment", folder)
    train, test = prepared.splits["train"], prepared.splits["test"]
    return [baselines.majority_class(train["label"], test["label"], prepared.labels),
            baselines.tfidf_logistic_regression(train["text"], train["label"], test["text"], test["label"], SEED)]


def multi_label(folder: str) -> list[dict[str, Any]]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.multiclass import OneVsRestClassifier

    prepared = load("multi-label", folder)
    train, test = prepared.splits["train"], prepared.splits["test"]
    y_train, y_test = np.asarray(train["labels"]) > 0.5, np.asarray(test["labels"]) > 0.5
    keep = y_train.any(axis=0)   # a label never seen in train can't be fitted; it counts as never predicted
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    model = OneVsRestClassifier(LogisticRegression(max_iter=1000, C=10.0, random_state=SEED))
    model.fit(vectorizer.fit_transform(train["text"]), y_train[:, keep])
    predicted = np.zeros_like(y_test)
    predicted[:, keep] = model.predict(vectorizer.transform(test["text"])) > 0.5
    prior = np.zeros_like(y_test)
    prior[:, y_train.mean(axis=0) > 0.5] = True   # every label held by most training rows (usually none)

    def f1s(pred: np.ndarray) -> dict[str, float]:
        return {"f1_micro": round(float(f1_score(y_test, pred, average="micro", zero_division=0)), 4),
                "f1_macro": round(float(f1_score(y_test, pred, average="macro", zero_division=0)), 4)}

    return [{"name": "prior (every label held by most training rows)", "metrics": f1s(prior)},
            {"name": "TF-IDF (1-2 grams) + one-vs-rest logistic regression (C=10), threshold 0.5",
             "metrics": f1s(predicted)}]


def sentence_pairs(folder: str) -> list[dict[str, Any]]:
    import pandas as pd
    from scipy.stats import pearsonr, spearmanr
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge

    # read directly: pair input is not in the engine yet (--text-column takes one column)
    train, test = (pd.read_csv(HERE / folder / f"{s}.csv", keep_default_na=False) for s in ("train", "test"))
    vectorizer = TfidfVectorizer(sublinear_tf=True).fit(pd.concat([train.sentence1, train.sentence2]))

    def cosine(frame: Any) -> np.ndarray:
        a, b = vectorizer.transform(frame.sentence1), vectorizer.transform(frame.sentence2)
        return np.asarray(a.multiply(b).sum(axis=1)).ravel()   # rows are L2-normalised

    def features(frame: Any) -> np.ndarray:
        a, b = vectorizer.transform(frame.sentence1), vectorizer.transform(frame.sentence2)
        words_a = [set(s.lower().split()) for s in frame.sentence1]
        words_b = [set(s.lower().split()) for s in frame.sentence2]
        jaccard = [len(x & y) / max(1, len(x | y)) for x, y in zip(words_a, words_b)]
        lengths = [abs(len(x) - len(y)) / max(1, len(x) + len(y)) for x, y in zip(words_a, words_b)]
        return np.column_stack([np.asarray(a.multiply(b).sum(axis=1)).ravel(), jaccard, lengths])

    def scores(pred: np.ndarray) -> dict[str, float]:
        return {"pearson": round(float(pearsonr(pred, test.score)[0]), 4),
                "spearman": round(float(spearmanr(pred, test.score)[0]), 4),
                "mse": round(float(np.mean((pred - test.score) ** 2)), 4)}

    mean = np.full(len(test), train.score.mean())
    ridge = Ridge(alpha=1.0).fit(features(train), train.score)
    return [{"name": "training mean", "metrics": {"mse": round(float(np.mean((mean - test.score) ** 2)), 4)}},
            {"name": "TF-IDF cosine of the two sentences (unsupervised; Pearson/Spearman only)",
             "metrics": {k: v for k, v in scores(cosine(test)).items() if k != "mse"}},
            {"name": "ridge on TF-IDF cosine, word Jaccard and length difference", "metrics":
             scores(ridge.predict(features(test)))}]


def image_classification(folder: str) -> list[dict[str, Any]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from hf_finetune.kinds import baselines

    prepared = load("image-classification", folder)
    train, test = prepared.splits["train"], prepared.splits["test"]
    side = 32
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1, random_state=SEED))
    return [baselines.majority_class(train["label"], test["label"], prepared.labels),
            baselines.svc_on_pixels(train["image"], train["label"], test["image"], test["label"]),
            baselines.fitted(f"standardised {side}x{side} pixels + logistic regression (C=0.1)", logistic,
                             baselines.pixels(train["image"], side), train["label"],
                             baselines.pixels(test["image"], side), test["label"])]


def summarization(folder: str) -> list[dict[str, Any]]:
    from hf_finetune.kinds import baselines

    test = load("summarization", folder).splits["test"]
    return [baselines.lead_k(test["text"], test["summary"], k) for k in (1, 2)]


SUITE = [("sentiment", "sentiment/banking77", text_classification),
         ("multi-label", "multi-label/nlupp-banking", multi_label),
         ("regression", "regression/stsb-cc", sentence_pairs),
         ("image-classification", "image-classification/elpv", image_classification),
         ("summarization", "summarization/scitldr-a", summarization)]


def rounded(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**row, "metrics": {k: round(float(v), 4) for k, v in row["metrics"].items()}} for row in rows]


def main() -> int:
    results = {}
    for task, folder, compute in SUITE:
        if not (HERE / folder).is_dir():
            print(f"{folder}: not built (run prepare.py first)", file=sys.stderr)
            continue
        start = time.perf_counter()
        rows = rounded(compute(folder))
        results[folder] = {"task": task, "split": "test", "seconds": round(time.perf_counter() - start, 1),
                           "baselines": rows}
        for row in rows:
            print(f"{folder}: {row['name']}: {row['metrics']}")
    (HERE / "classical.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
