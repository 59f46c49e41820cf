"""F1 score (harmonic mean of precision and recall), binary, micro, macro or weighted.

Shipped inside hf-finetune so `evaluate.load(<this folder>)` works offline. Computed with
scikit-learn, which is what the Hub's own `f1` module uses.
"""

import datasets
import evaluate
from sklearn.metrics import f1_score

_DESCRIPTION = "F1 = 2 * precision * recall / (precision + recall), averaged over classes as asked."
_KWARGS = """
Args:
    predictions (list of int): predicted labels.
    references (list of int): ground-truth labels.
    average (str): 'binary' (default), 'micro', 'macro', 'weighted' or None (per class).
    labels (list of int): the labels to include when average is not 'binary'.
    pos_label (int): the positive class for 'binary'.
Returns:
    f1 (float, or list of float when average is None)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class F1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, average="binary", labels=None, pos_label=1, sample_weight=None):
        score = f1_score(references, predictions, labels=labels, pos_label=pos_label, average=average,
                         sample_weight=sample_weight, zero_division=0)
        return {"f1": score.tolist() if hasattr(score, "tolist") and score.ndim else float(score)}
