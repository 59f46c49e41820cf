"""Predictions with a fine-tuned model: a run dir or a Hub id, inputs from a file or stdin.

Kept apart from training: it needs only the saved model, its processor and (for runs made
here) run_info.json, which says the task kind and the input prefix.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any, Iterator

import torch

from . import data as data_mod
from .errors import DataError, ModelError
from .rundir import RunDir

KIND_BY_ARCHITECTURE = (("ForSequenceClassification", "text-classification"),
                        ("ForConditionalGeneration", "summarization"), ("ForSeq2SeqLM", "summarization"),
                        ("ForImageClassification", "image-classification"))


def load_run(model_ref: str, token: str | None = None) -> tuple[str, dict[str, Any]]:
    """(local folder, run info) for a run dir, a model folder or a Hub repo id."""
    path = Path(model_ref)
    if not path.exists():
        from . import hub

        folder, _ = hub.pull(model_ref, token=token)
        path = Path(folder)
    run = RunDir(path)
    if not run.has("config.json"):
        raise ModelError(f"{model_ref} holds no model (no config.json).")
    info = dict(run.info)
    if "kind" not in info:
        config = run.read_json("config.json")
        arch = " ".join(config.get("architectures") or [])
        info["kind"] = next((kind for key, kind in KIND_BY_ARCHITECTURE if key in arch), None)
        if info["kind"] is None:
            raise ModelError(f"Can't tell the task of {model_ref} (architectures: {arch or 'none'}).")
    return str(path), info


def read_inputs(source: str, column: str | None, kind: str) -> list[str]:
    """Text lines, JSON Lines or CSV (a column), or image paths; '-' reads standard input."""
    default_column = "image" if kind == "image-classification" else "text"
    if source == "-":
        try:
            lines = sys.stdin.read().splitlines() if sys.stdin is not None else []
        except (OSError, ValueError):   # closed or unreadable standard input
            lines = []
        if not lines:
            raise DataError("Standard input is empty or closed; nothing to predict.",
                            "Pipe the inputs in (e.g. `cat texts.txt | hf-finetune predict RUN --input -`).")
        suffix = ".jsonl" if lines and lines[0].lstrip().startswith("{") else ".txt"
    else:
        path = Path(source)
        if not path.is_file():
            raise DataError(f"Input file {source} does not exist.")
        suffix = path.suffix.lower()
        if kind == "image-classification" and suffix not in (".txt", ".jsonl", ".csv"):
            return [str(path)]
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            text = path.read_text(encoding="latin-1")
        lines = text.splitlines()
    if suffix == ".csv":
        rows = list(csv.DictReader(lines))
        col = column or next((c for c in (rows[0] if rows else {}) if c.lower() in (default_column, "document",
                                                                                       "sentence", "path")), None)
        if not rows or col not in rows[0]:
            raise DataError(f"The CSV input has no column {col or default_column!r}; name one with --column.")
        return [r[col] for r in rows]
    if suffix == ".jsonl":
        values = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise DataError(f"Line {number} of the input is not valid JSON.") from None
            if not isinstance(record, dict):
                raise DataError(f"Line {number} of the input is not a JSON object.")
            key = column or next((k for k in record if k.lower() in (default_column, "document", "sentence")), None)
            if key not in record:
                raise DataError(f"Line {number} of the input has no field {key or default_column!r}; use --column.")
            if record[key] is None or isinstance(record[key], (dict, list)):
                raise DataError(f"Line {number} of the input has no text in field {key!r} "
                                f"({json.dumps(record[key])}).", "Give every line a text, or leave the line out.")
            values.append(str(record[key]))
        return values
    return [line for line in lines if line.strip()]


def input_limit(tokenizer: Any, model: Any, run_max_length: int | None) -> int:
    """The run's own max_length; for other models what both the tokenizer and the position table allow."""
    if run_max_length:
        return int(run_max_length)
    limits = [getattr(tokenizer, "model_max_length", None),
              getattr(getattr(model, "config", None), "max_position_embeddings", None)]
    limits = [int(n) for n in limits if isinstance(n, (int, float)) and 0 < n < 1_000_000]
    return min(limits) if limits else 512


def batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def predict(model_ref: str, inputs: list[str], *, batch_size: int = 32, token: str | None = None,
            trust_remote_code: bool = False, progress: Any = None) -> list[dict[str, Any]]:
    """Predictions for ``inputs`` (texts, or image paths), one dict per input. A model with its own
    Python code (a custom architecture) is loaded only with ``trust_remote_code``."""
    folder, info = load_run(model_ref, token)
    remote = {"trust_remote_code": True} if trust_remote_code else {}
    saved = RunDir(folder)
    run_max_length = saved.config.get("max_length") if saved.has("run_config.yaml") else None
    kind = info["kind"]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    results: list[dict[str, Any]] = []
    if kind == "summarization":
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder, **remote)
        model = AutoModelForSeq2SeqLM.from_pretrained(folder, **remote)
        model.to(device).eval()
        prefix = info.get("prefix", "")
        for chunk in batches(inputs, batch_size):
            enc = tokenizer([prefix + t for t in chunk], return_tensors="pt", padding=True, truncation=True,
                            max_length=input_limit(tokenizer, model, run_max_length)).to(device)
            with torch.inference_mode():   # only what every encoder-decoder's generate() takes
                ids = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            for text, summary in zip(chunk, tokenizer.batch_decode(ids, skip_special_tokens=True)):
                results.append({"input": text, "summary": summary.strip()})
            if progress:
                progress(len(chunk))
        return results
    if kind == "image-classification":
        from PIL import Image
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        processor = AutoImageProcessor.from_pretrained(folder, **remote)
        model = AutoModelForImageClassification.from_pretrained(folder, **remote).to(device).eval()

        def encode(chunk: list[str]) -> Any:
            images = []
            for p in chunk:
                try:
                    with Image.open(p) as image:
                        images.append(image.convert("RGB"))
                except Exception:  # noqa: BLE001
                    raise DataError(f"{p} is not a readable image.") from None
            return processor(images=images, return_tensors="pt")
    else:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder, **remote)
        model = AutoModelForSequenceClassification.from_pretrained(folder, **remote).to(device).eval()

        limit = input_limit(tokenizer, model, run_max_length)

        def encode(chunk: list[str]) -> Any:
            return tokenizer(data_mod.bounded(chunk, limit), return_tensors="pt", padding=True, truncation=True,
                             max_length=limit)
    id2label = model.config.id2label
    for chunk in batches(inputs, batch_size):
        enc = encode(chunk).to(device)
        with torch.inference_mode():
            probs = model(**enc).logits.float().softmax(-1).cpu()
        for value, row in zip(chunk, probs):
            best = int(row.argmax())
            results.append({"input": value, "label": id2label[best], "score": round(float(row[best]), 6),
                            "scores": {id2label[i]: round(float(p), 6) for i, p in enumerate(row)}})
        if progress:
            progress(len(chunk))
    return results


def write(results: list[dict[str, Any]], output: str | None) -> None:
    """JSON Lines (default, or a .jsonl path) or CSV (a .csv path)."""
    if output and output.lower().endswith(".csv"):
        keys = [k for k in results[0] if k != "scores"] if results else ["input"]
        tmp = Path(output + ".partial")
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(results)
        tmp.replace(output)
        return
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
    if output:
        tmp = Path(output + ".partial")
        tmp.write_text(lines, encoding="utf-8")
        tmp.replace(output)
    else:
        sys.stdout.write(lines)
