"""Accuracy: the fraction of predictions equal to the references.

Shipped inside hf-finetune so `evaluate.load(<this folder>)` works offline; the Hub's
`evaluate.load("accuracy")` would download its script first.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Accuracy = (number of correct predictions) / (number of predictions)."
_KWARGS = """
Args:
    predictions (list of int): predicted labels.
    references (list of int): ground-truth labels.
    normalize (bool): return a fraction (default) or a count.
    sample_weight (list of float): optional weight per example.
Returns:
    accuracy (float)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None):
        predictions, references = np.asarray(predictions), np.asarray(references)
        correct = (predictions == references).astype(float)
        if sample_weight is not None:
            correct = correct * np.asarray(sample_weight, dtype=float)
            total = float(np.sum(sample_weight))
        else:
            total = float(len(correct))
        score = float(correct.sum())
        return {"accuracy": score / total if normalize and total else score}
