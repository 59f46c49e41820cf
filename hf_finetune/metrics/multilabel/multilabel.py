"""Multi-label scores: micro / macro F1 over the labels, subset accuracy, and per-label F1.

Shipped inside hf-finetune so `evaluate.load(<this folder>)` works offline; computed with
scikit-learn on 0/1 indicator rows, as the Hub's `f1` module does in its "multilabel" config.
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import accuracy_score, f1_score

_DESCRIPTION = ("Multi-label F1 (micro: over every (example, label) decision; macro: the mean of the per-label F1) "
                "and subset accuracy (the whole label set right).")
_KWARGS = """
Args:
    predictions (list of list of int): predicted 0/1 indicators, one row per example, one column per label.
    references (list of list of int): true 0/1 indicators, same shape.
    per_label (bool): also return `f1_per_label`, a list with each label's F1.
Returns:
    f1_micro, f1_macro, subset_accuracy (float), and f1_per_label (list of float) when asked
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class MultiLabel(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("int32")),
                                        "references": datasets.Sequence(datasets.Value("int32"))}),
        )

    def _compute(self, predictions, references, per_label=False):
        predicted, truth = np.asarray(predictions, dtype=int), np.asarray(references, dtype=int)
        out = {"f1_micro": float(f1_score(truth, predicted, average="micro", zero_division=0)),
               "f1_macro": float(f1_score(truth, predicted, average="macro", zero_division=0)),
               "subset_accuracy": float(accuracy_score(truth, predicted))}
        if per_label:
            out["f1_per_label"] = f1_score(truth, predicted, average=None, zero_division=0).tolist()
        return out
