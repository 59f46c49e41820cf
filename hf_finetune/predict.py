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


def load_run(model_ref: str, token: str | None = None, revision: str | None = None) -> tuple[str, dict[str, Any]]:
    """(local folder, run info) for a run dir, a model folder or a Hub repo id (at ``revision``)."""
    path = Path(model_ref)
    from_hub = not path.exists()
    if from_hub:
        from . import hub

        folder, _ = hub.pull(model_ref, revision, token=token)
        path = Path(folder)
    run = RunDir(path, hub_snapshot=from_hub)
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


INPUT_COLUMNS = {"text": ["text", "sentence", "document", "review", "content", "input"],
                 "image": ["image", "path", "file", "image_path", "filename"]}


def read_inputs(source: str, column: str | None, kind: str, info: dict[str, Any] | None = None) -> list[str]:
    """The inputs to predict on: a table (CSV, TSV, JSON Lines, JSON, Parquet) read with the same loader
    and column detection as training; text lines (.txt); image paths; '-' reads standard input (JSON
    Lines or text lines)."""
    role = "image" if kind == "image-classification" else "text"
    if source == "-":
        return _read_stdin(column, role, info or {})
    path = Path(source)
    if not path.is_file():
        raise DataError(f"Input file {source} does not exist.")
    suffix = path.suffix.lower()
    if suffix in data_mod.FILE_BUILDERS and suffix != ".txt":
        return _read_table(path, column, role, info or {})
    if column:
        raise DataError(f"--column names a column of a table; {path.name} is read as plain lines.",
                        "Give a CSV / TSV / JSON Lines / Parquet file, or leave --column out.")
    if role == "image" and suffix != ".txt":
        return [str(path)]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    return [line for line in text.splitlines() if line.strip()]


def _read_stdin(column: str | None, role: str, info: dict[str, Any]) -> list[str]:
    try:
        text = sys.stdin.read() if sys.stdin is not None else ""
    except (OSError, ValueError):   # closed or unreadable standard input
        text = ""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise DataError("Standard input is empty or closed; nothing to predict.",
                        "Pipe the inputs in (e.g. `cat texts.txt | hf-finetune predict RUN --input -`).")
    if not lines[0].lstrip().startswith("{"):
        return lines
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:   # JSON Lines: through the same loader as files
        path = Path(tmp) / "stdin.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return _read_table(path, column, role, info)


def _read_table(path: Path, column: str | None, role: str, info: dict[str, Any]) -> list[str]:
    split = next(iter(data_mod.read_local(path).values()))
    columns = split.column_names
    candidates = [c for c in [(info.get("columns") or {}).get(role), *INPUT_COLUMNS[role]] if c]
    try:
        name = data_mod.resolve_column(columns, role, column, candidates, "--column")
    except DataError:
        if not column and data_mod.looks_headerless(columns):
            raise DataError(f"{path.name} seems to have no header row: its first line was read as the column names "
                            f"({', '.join(repr(c) for c in columns)}).",
                            "Add a header line naming the columns (e.g. `sentence<TAB>label`).") from None
        raise
    values = []
    for row, value in enumerate(split[name], 1):
        if value is None or isinstance(value, (dict, list)) or not str(value).strip():
            raise DataError(f"Row {row} of {path.name} has no {role} in column {name!r} ({json.dumps(value)}).",
                            "Give every row one, or leave the row out.")
        values.append(str(value))
    if role == "image":   # paths relative to the table's folder, as in training
        values = [v if Path(v).is_absolute() else str(path.parent / v) for v in values]
    return values


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
            revision: str | None = None, trust_remote_code: bool = False,
            progress: Any = None) -> list[dict[str, Any]]:
    """Predictions for ``inputs`` (texts, or image paths), one dict per input. A model with its own
    Python code (a custom architecture) is loaded only with ``trust_remote_code``."""
    folder, info = load_run(model_ref, token, revision)
    remote = {"trust_remote_code": True} if trust_remote_code else {}
    saved = RunDir(folder, hub_snapshot=not Path(model_ref).exists())
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
    problem = getattr(model.config, "problem_type", None)
    if problem in ("multi_label_classification", "regression"):
        return _predict_scores(model, encode, inputs, batch_size, device, progress)
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


def _predict_scores(model: Any, encode: Any, inputs: list[str], batch_size: int, device: str,
                    progress: Any) -> list[dict[str, Any]]:
    """Multi-label: every label whose sigmoid score reaches the threshold saved at training (tuned on the
    validation split). Regression: the output mapped back to the target's units with the saved scaling."""
    config = model.config
    threshold = float(getattr(config, "multi_label_threshold", None) or 0.5)
    scaling = getattr(config, "regression_target", None) or {"mean": 0.0, "std": 1.0, "name": "score"}
    results: list[dict[str, Any]] = []
    for chunk in batches(inputs, batch_size):
        enc = encode(chunk).to(device)
        with torch.inference_mode():
            logits = model(**enc).logits.float().cpu()
        for value, row in zip(chunk, logits):
            if config.problem_type == "regression":
                results.append({"input": value,
                                scaling["name"]: round(float(row[0]) * scaling["std"] + scaling["mean"], 6)})
                continue
            scores = row.sigmoid()
            results.append({"input": value,
                            "labels": [config.id2label[i] for i, p in enumerate(scores) if float(p) >= threshold],
                            "threshold": threshold,
                            "scores": {config.id2label[i]: round(float(p), 6) for i, p in enumerate(scores)}})
        if progress:
            progress(len(chunk))
    return results


def write(results: list[dict[str, Any]], output: str | None) -> None:
    """JSON Lines (default, or a .jsonl path) or CSV (a .csv path)."""
    if output and output.lower().endswith(".csv"):
        # every class's score as a column of its own: score:<label>
        flat = [{**{k: (json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v)   # multi-label sets
                    for k, v in r.items() if k != "scores"},
                 **{f"score:{label}": p for label, p in (r.get("scores") or {}).items()}} for r in results]
        keys = list(flat[0]) if flat else ["input"]
        tmp = Path(output + ".partial")
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(flat)
        tmp.replace(output)
        return
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
    if output:
        tmp = Path(output + ".partial")
        tmp.write_text(lines, encoding="utf-8")
        tmp.replace(output)
    else:
        sys.stdout.write(lines)
