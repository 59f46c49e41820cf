"""ROUGE-1/2/L/Lsum for summaries, shipped inside hf-finetune so it works offline.

Scores come from Google's `rouge-score` package (the reference re-implementation of ROUGE-1.5.5).
ROUGE-Lsum compares summaries sentence by sentence and expects one sentence per line; we split
sentences with a small regular expression instead of NLTK's punkt, whose data must be downloaded.
"""

import re

import datasets
import evaluate
from rouge_score import rouge_scorer, scoring

_DESCRIPTION = "ROUGE F-measures (1, 2, L, Lsum) between generated and reference summaries, as fractions."
_KWARGS = """
Args:
    predictions (list of str): generated summaries.
    references (list of str): reference summaries.
    rouge_types (list of str): default ["rouge1", "rouge2", "rougeL", "rougeLsum"].
    use_stemmer (bool): Porter-stem words before matching (default True).
Returns:
    one float per ROUGE type (the aggregated mid F-measure).
"""

# A sentence ends at . ! or ? (optionally followed by quotes/brackets) and then whitespace.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")


def split_sentences(text: str) -> str:
    """One sentence per line, as ROUGE-Lsum expects."""
    text = text.strip()
    if "\n" in text:
        return "\n".join(line.strip() for line in text.splitlines() if line.strip())
    return "\n".join(s.strip() for s in _SENTENCE_END.split(text) if s.strip())


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class Rouge(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Lin, Chin-Yew. ROUGE: a package for automatic evaluation of summaries. 2004.",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references, rouge_types=None, use_stemmer=True):
        rouge_types = rouge_types or ["rouge1", "rouge2", "rougeL", "rougeLsum"]
        scorer = rouge_scorer.RougeScorer(rouge_types, use_stemmer=use_stemmer)
        aggregator = scoring.BootstrapAggregator()
        for prediction, reference in zip(predictions, references):
            if "rougeLsum" in rouge_types:
                prediction, reference = split_sentences(prediction), split_sentences(reference)
            aggregator.add_scores(scorer.score(reference, prediction))
        result = aggregator.aggregate()
        return {key: float(result[key].mid.fmeasure) for key in rouge_types}
