"""Predictions with a fine-tuned model: a run dir or a Hub id, inputs from a file or stdin.

Kept apart from training: it needs only the saved model, its processor and (for runs made
here) run_info.json, which says the task kind and the input prefix. The kind loads the model and
turns its outputs into predictions.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any, Iterator

import torch

from . import data as data_mod, kinds
from .data.sources import FILE_BUILDERS, load_local
from .errors import DataError, ModelError
from .run_info import RunInfo
from .rundir import RunDir


def load_run(model_ref: str, token: str | None = None, revision: str | None = None) -> tuple[str, RunInfo]:
    """(local folder, run record) for a run dir, a model folder or a Hub repo id (at ``revision``). A model
    with no record of ours gets a record naming the kind that serves it (by its config.json)."""
    path = Path(model_ref)
    from_hub = not path.exists()
    if from_hub:
        from . import hub

        folder, _ = hub.pull(model_ref, revision, token=token)
        path = Path(folder)
    run = RunDir(path, hub_snapshot=from_hub)
    if not run.has("config.json"):
        raise ModelError(f"{model_ref} holds no model (no config.json).")
    info = run.info
    if not info.kind:
        config = run.read_json("config.json")
        kind = kinds.serving(config) if isinstance(config, dict) else None
        if kind is None:
            arch = " ".join(config.get("architectures") or []) if isinstance(config, dict) else ""
            raise ModelError(f"Can't tell the task of {model_ref} (architectures: {arch or 'none'}).")
        info = RunInfo(kind=kind.name)
    return str(path), info


INPUT_COLUMNS = {"text": ["text", "sentence", "document", "review", "content", "input"],
                 "image": ["image", "path", "file", "image_path", "filename"]}


def read_inputs(source: str, column: str | None, kind: str, info: RunInfo | None = None) -> list[str]:
    """The inputs to predict on: a table (CSV, TSV, JSON Lines, JSON, Parquet) read with the same loader
    and column detection as training; text lines (.txt); image paths; '-' reads standard input (JSON
    Lines or text lines)."""
    role = kinds.get(kind).input_role
    columns = info.columns if info is not None else {}
    if source == "-":
        return _read_stdin(column, role, columns)
    path = Path(source)
    if not path.is_file():
        raise DataError(f"Input file {source} does not exist.")
    suffix = path.suffix.lower()
    if suffix in FILE_BUILDERS and suffix != ".txt":
        return _read_table(path, column, role, columns)
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


def _read_stdin(column: str | None, role: str, columns: dict[str, str]) -> list[str]:
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
        return _read_table(path, column, role, columns)


def _read_table(path: Path, column: str | None, role: str, trained_columns: dict[str, str]) -> list[str]:
    split = next(iter(load_local(path).values()))
    columns = split.column_names
    candidates = [c for c in [trained_columns.get(role), *INPUT_COLUMNS[role]] if c]
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
    """Predictions for ``inputs`` (texts, or image paths), one dict per input, by the run's task kind. A
    model with its own Python code (a custom architecture) is loaded only with ``trust_remote_code``."""
    folder, info = load_run(model_ref, token, revision)
    saved = RunDir(folder, hub_snapshot=not Path(model_ref).exists())
    run_max_length = saved.config.get("max_length") if saved.has("run_config.yaml") else None
    kind_class = kinds.get(info.kind)
    processor, model = kind_class.load_trained(folder, trust_remote_code)
    model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    kind = kind_class(model_config=model.config, prefix=info.prefix)
    limit = input_limit(processor, model, run_max_length)
    results: list[dict[str, Any]] = []
    for chunk in batches(inputs, batch_size):
        results.extend(kind.predict_batch(processor, model, chunk, limit))
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
