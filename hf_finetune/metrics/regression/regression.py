"""Regression scores: mean squared and absolute error, Pearson and Spearman correlation.

Shipped inside hf-finetune so `evaluate.load(<this folder>)` works offline; errors with numpy,
correlations with scipy (as the Hub's `pearsonr` / `spearmanr` modules do).
"""

import datasets
import evaluate
import numpy as np
from scipy.stats import pearsonr, spearmanr

_DESCRIPTION = "MSE, MAE, Pearson's r and Spearman's rho between predicted and true values."
_KWARGS = """
Args:
    predictions (list of float): predicted values, in the target's own units.
    references (list of float): true values.
Returns:
    mse, mae, pearson, spearman (float; a correlation is 0.0 when either side is constant)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class Regression(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("float64"),
                                        "references": datasets.Value("float64")}),
        )

    def _compute(self, predictions, references):
        predicted, truth = np.asarray(predictions, dtype=float), np.asarray(references, dtype=float)
        errors = predicted - truth
        constant = np.ptp(predicted) == 0 or np.ptp(truth) == 0   # correlation undefined: report none
        return {"mse": float(np.mean(errors ** 2)), "mae": float(np.mean(np.abs(errors))),
                "pearson": 0.0 if constant else float(pearsonr(predicted, truth)[0]),
                "spearman": 0.0 if constant else float(spearmanr(predicted, truth)[0])}
