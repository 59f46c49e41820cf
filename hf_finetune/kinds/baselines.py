"""Trivial and cheap classical predictors, scored on a run's own test split, so the card shows what the
fine-tune added: a 0.76 accuracy reads differently beside a 0.42 majority class than beside a 0.75
TF-IDF model.

Each function returns ``{"name": str, "metrics": {...}}`` with the metric names the run's own metrics
use (the bundled ``evaluate`` modules: accuracy, macro-F1, ROUGE), so the card can put them side by side;
a predictor that reads no input (the majority class, a constant) is also ``"trivial": True``: a run that does
no better than it learned nothing (learning_check.py).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Sequence

import numpy as np

from .. import metrics as metrics_mod

CLASSIFICATION_METRICS = [("accuracy", {}), ("f1", {"average": "macro"})]
SUMMARIZATION_METRICS = [("rouge", {})]
# the same sentence boundary as the bundled ROUGE module's ROUGE-Lsum splitting
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")


def score(predictions: Sequence[Any], references: Sequence[Any], specs: list[tuple[str, dict[str, Any]]]
          ) -> dict[str, float]:
    return metrics_mod.MetricSuite(specs).compute(predictions, references)


def majority_class(train_labels: Sequence[int], test_labels: Sequence[int], labels: list[str]) -> dict[str, Any]:
    """Always the most frequent training label."""
    top = Counter(train_labels).most_common(1)[0][0]
    predictions = np.full(len(test_labels), top)
    return {"name": f"majority class (always `{labels[top]}`)", "trivial": True,
            "metrics": score(predictions, np.asarray(test_labels), CLASSIFICATION_METRICS)}


def fitted(name: str, model: Any, train_x: Any, train_y: Sequence[int], test_x: Any,
           test_y: Sequence[int]) -> dict[str, Any]:
    """A scikit-learn estimator fitted on train, scored on test."""
    model.fit(train_x, np.asarray(train_y))
    return {"name": name, "metrics": score(model.predict(test_x), np.asarray(test_y), CLASSIFICATION_METRICS)}


def tfidf_logistic_regression(train_texts: list[str], train_y: Sequence[int], test_texts: list[str],
                              test_y: Sequence[int], seed: int) -> dict[str, Any]:
    """Word uni- and bi-gram TF-IDF + logistic regression: the classical text classifier."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=200_000),
                          LogisticRegression(max_iter=1000, random_state=seed))
    return fitted("TF-IDF + logistic regression (scikit-learn)", model, train_texts, train_y, test_texts, test_y)


def tfidf_one_vs_rest(train_texts: list[str], train_rows: Any, test_texts: list[str], test_rows: Any,
                      seed: int) -> dict[str, Any]:
    """Multi-label: TF-IDF + a logistic regression per label (a label at probability 0.5 or more)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=200_000)
    train_rows, test_rows = np.asarray(train_rows).round().astype(int), np.asarray(test_rows).round().astype(int)
    present = train_rows.any(axis=0) & ~train_rows.all(axis=0)   # a constant label is predicted as it is
    predicted = np.broadcast_to(train_rows[0], test_rows.shape).copy()
    if present.any():
        model = OneVsRestClassifier(LogisticRegression(max_iter=1000, random_state=seed))
        model.fit(vectorizer.fit_transform(train_texts), train_rows[:, present])
        predicted[:, present] = model.predict(vectorizer.transform(test_texts))
    return {"name": "TF-IDF + logistic regression per label (scikit-learn)",
            "metrics": {k: float(v) for k, v in
                        metrics_mod.load("multilabel").compute(predictions=predicted, references=test_rows).items()}}


def tfidf_ridge(train_texts: list[str], train_y: Sequence[float], test_texts: list[str],
                test_y: Sequence[float]) -> dict[str, Any]:
    """Regression: TF-IDF + ridge regression (scikit-learn's default strength)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=200_000),
                          Ridge())
    model.fit(train_texts, np.asarray(train_y, dtype=np.float64))
    scores = metrics_mod.load("regression").compute(predictions=model.predict(test_texts),
                                                    references=np.asarray(test_y, dtype=np.float64))
    return {"name": "TF-IDF + ridge regression (scikit-learn)", "metrics": {k: float(v) for k, v in scores.items()}}


def tfidf_cosine_regression(train_pairs: tuple[list[str], list[str]], train_y: Sequence[float],
                            test_pairs: tuple[list[str], list[str]], test_y: Sequence[float]) -> dict[str, Any]:
    """Text pairs (similarity, entailment scores): the cosine of the two texts' TF-IDF vectors, mapped to the
    target by a linear regression fitted on the training pairs."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LinearRegression

    vectorizer = TfidfVectorizer(sublinear_tf=True).fit([*train_pairs[0], *train_pairs[1]])

    def cosines(pairs: tuple[list[str], list[str]]) -> np.ndarray:
        first, second = vectorizer.transform(pairs[0]), vectorizer.transform(pairs[1])   # rows of unit length
        return np.asarray(first.multiply(second).sum(axis=1)).reshape(-1, 1)

    model = LinearRegression().fit(cosines(train_pairs), np.asarray(train_y, dtype=np.float64))
    scores = metrics_mod.load("regression").compute(predictions=model.predict(cosines(test_pairs)),
                                                    references=np.asarray(test_y, dtype=np.float64))
    return {"name": "TF-IDF cosine of the two texts + linear regression (scikit-learn)",
            "metrics": {k: float(v) for k, v in scores.items()}}


PIXEL_SIDE = 16   # 16x16 RGB: 768 features, enough for small scans, cheap for an SVC


def pixels(images: Sequence[Any], side: int = PIXEL_SIDE) -> np.ndarray:
    """Images as flat RGB pixel vectors in [0, 1], resized to side x side."""
    from PIL import Image

    return np.stack([np.asarray(img.convert("RGB").resize((side, side), Image.BILINEAR), dtype=np.float32).ravel()
                     / 255.0 for img in images])


def svc_on_pixels(train_images: Sequence[Any], train_y: Sequence[int], test_images: Sequence[Any],
                  test_y: Sequence[int]) -> dict[str, Any]:
    """scikit-learn's plain ``SVC()`` (RBF kernel, default settings) on 16x16 pixels."""
    from sklearn.svm import SVC

    return fitted(f"SVC on {PIXEL_SIDE}x{PIXEL_SIDE} pixels (scikit-learn, default settings)", SVC(),
                  pixels(train_images), train_y, pixels(test_images), test_y)


def lead(text: str, k: int) -> str:
    """The first ``k`` sentences of a text."""
    sentences = [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]
    return " ".join(sentences[:k])


def lead_k(texts: list[str], references: list[str], k: int = 3) -> dict[str, Any]:
    """The text's first k sentences as its summary (the classic news-summarization baseline)."""
    return {"name": f"lead-{k} (the text's first {k} sentences)",
            "metrics": score([lead(t, k) for t in texts], list(references), SUMMARIZATION_METRICS)}
