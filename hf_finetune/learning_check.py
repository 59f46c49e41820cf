"""Whether a run learned anything: its test figure beside the baselines it printed, and whether it gave (nearly)
one output to every test example. A multi-label run that tied its label-frequency prior to the last digit, or a
summarizer that wrote one summary for every text, said nothing of it before: now the output, the card and
``metrics.json`` (``learning_check``, for benchmarks) say so, with the likely cause and the flags to try.

The comparison and the wording are here, the same for every kind; what is kind-specific (how to tell that the
outputs are one, the likely cause) is the task kind's (``TaskKind.one_output``, ``learned_nothing_cause``).
"""

from __future__ import annotations

import math
from typing import Any

from .config import RunConfig, display_value

DIVERGED = ("training diverged: the model's outputs are not numbers (NaN or infinite), so none of its predictions "
            "mean anything; most often too high a learning rate, or fp16 overflow")
TIE = 0.01   # a test figure within 1% (relative) of a baseline's ties it
FEW_TRAINING_EXAMPLES = 1000


def _perfect(value: float, greater_is_better: bool) -> bool:
    """A figure nothing can beat (accuracy, F1, ROUGE at 1; an error at 0): tying a baseline there is no sign."""
    return value >= 1.0 if greater_is_better else value <= 0.0


def _behind(test: float, baseline: float, greater_is_better: bool) -> bool:
    """Whether ``test`` ties or trails ``baseline``: not better than it by more than TIE of its size."""
    better_by = test - baseline if greater_is_better else baseline - test
    return better_by <= TIE * abs(baseline)


def _baseline_findings(test: dict[str, float], baseline: dict[str, Any] | None, metric: str,
                       greater_is_better: bool) -> list[dict[str, Any]]:
    entries = [baseline, *baseline.get("also", [])] if baseline else []
    value = test.get(metric)
    if value is None or _perfect(value, greater_is_better):
        return []
    findings = []
    for entry in entries:
        reference = entry["metrics"].get(metric)
        if reference is None or not _behind(value, reference, greater_is_better):
            continue
        relation = "ties" if abs(value - reference) <= TIE * abs(reference) else "trails"
        findings.append({"signal": "baseline", "trivial": bool(entry.get("trivial")), "baseline": entry["name"],
                         "metric": metric,
                         "test": value, "baseline_value": reference, "relation": relation})
    return findings


def remedies(config: RunConfig, train_examples: int) -> list[str]:
    """The flags to try, from this run's own settings."""
    tips = []
    if config.max_steps > 0:
        tips.append(f"more optimizer steps: --max-steps {config.max_steps * 2} (this run: {config.max_steps})")
    else:
        tips.append(f"more epochs: --num-train-epochs {display_value(config.num_train_epochs * 2)} "
                    f"(this run: {display_value(config.num_train_epochs)})")
    rate = config.learning_rate
    if rate >= 5e-4:
        tips.append(f"a lower learning rate: --learning-rate {rate / 10:g} (this run: {rate:g}; too high a rate can "
                    "also throw a model onto one output)")
    else:
        tips.append(f"a higher learning rate: --learning-rate {rate * 3:g} (this run: {rate:g})")
    if config.max_train_samples:
        tips.append(f"all the training data: leave out --max-train-samples (this run: {config.max_train_samples})")
    elif train_examples < FEW_TRAINING_EXAMPLES:
        tips.append(f"more training examples (this run: {train_examples})")
    return tips


def check(test: dict[str, float], baseline: dict[str, Any] | None, metric: str, greater_is_better: bool,
          one_output: str | None, cause: str, config: RunConfig, train_examples: int) -> dict[str, Any]:
    """The run's ``learning_check``: ``learned_nothing`` (it ties or trails a trivial baseline, one that reads
    no input, or gives one output to (nearly) every test example), ``behind_a_baseline`` (it ties or trails any
    baseline it printed, a classical one included), the ``findings`` (each baseline tied or trailed; the one
    output), and, when there are any, the likely ``cause`` and the flags to ``try``."""
    value = test.get(metric)
    if isinstance(value, float) and not math.isfinite(value):
        return {"learned_nothing": True, "behind_a_baseline": False,
                "findings": [{"signal": "not_finite", "metric": metric, "test": None}], "cause": DIVERGED,
                "try": [f"a lower learning rate: --learning-rate {config.learning_rate / 10:g} (this run: "
                        f"{config.learning_rate:g})", *(["float32 (leave out --fp16)"] if config.fp16 else [])]}
    findings = _baseline_findings(test, baseline, metric, greater_is_better)
    if one_output:
        findings.append({"signal": "one_output", "output": one_output})
    record: dict[str, Any] = {
        "learned_nothing": any(f["signal"] == "one_output" or f["trivial"] for f in findings),
        "behind_a_baseline": any(f["signal"] == "baseline" for f in findings),
        "findings": findings,
    }
    if findings:
        record["cause"] = cause
        record["try"] = remedies(config, train_examples)
    return record


def _title(record: dict[str, Any]) -> str:
    if record.get("learned_nothing"):
        return "This run learned nothing useful."
    return "This run did no better than a classical baseline."


def _body(record: dict[str, Any]) -> str:
    """The findings in sentences, then the likely cause."""
    behind = [f for f in record["findings"] if f["signal"] == "baseline"]
    sentences = []
    if behind:
        sentences.append(f"Its test {behind[0]['metric']} {behind[0]['test']:.4f} " + " and ".join(
            f"{f['relation']} the baseline {f['baseline']} ({f['baseline_value']:.4f})" for f in behind) + ".")
    sentences += [f"It gives {f['output']}." for f in record["findings"] if f["signal"] == "one_output"]
    sentences += [f"Its test {f['metric']} is not a number." for f in record["findings"] if f["signal"] == "not_finite"]
    return " ".join(sentences) + f" Likely cause: {record['cause']}."


def warning_lines(record: dict[str, Any] | None) -> list[str]:
    """The warning block of the command's output (plain text: the caller styles it); none when it learned."""
    if not record or not record.get("findings"):
        return []
    return [f"WARNING: {_title(record)}", _body(record), "Try: " + "; ".join(record["try"]) + "."]


def card_note(record: dict[str, Any] | None) -> str:
    """The card's note (a Markdown paragraph); empty when it learned."""
    if not record or not record.get("findings"):
        return ""
    tips = "; ".join(record["try"])
    return f"**Warning: {_title(record)}** {_body(record)} Try: {tips}."
