"""Predictions with a fine-tuned model: a run dir or a Hub id, inputs from a file or stdin.

Kept apart from training: it needs only the saved model, its processor and (for runs made
here) run_info.json, which says the task kind and the input prefix. The kind loads the model and
turns its outputs into predictions.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path
from typing import Any, Iterator

import torch

from . import data as data_mod, kinds, templates
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


def read_inputs(source: str, column: str | None, kind: str, info: RunInfo | None = None) -> list[str]:
    """The inputs to predict on: a table (CSV, TSV, JSON Lines, JSON, Parquet) read with the same loader
    and column detection as training; text lines (.txt); image paths. '-' reads standard input, and a
    stream such as /dev/stdin is read the same way: text lines, JSON Lines, or with ``column`` a CSV / TSV
    table."""
    role = kinds.get(kind).input_role
    info = info or RunInfo()
    own_template = info.template.name if info.template.bundled else None
    candidates = [c for c in [info.columns.get(role), *templates.column_candidates(role, own_template)] if c]
    if source == "-":
        text = _stdin_text()
        if not text.strip():
            raise DataError("Standard input is empty or closed; nothing to predict.",
                            "Pipe the inputs in (e.g. `cat texts.txt | hf-finetune predict RUN --input -`).")
        return _read_stream(text, "standard input", column, role, candidates)
    path = Path(source)
    if not path.exists() or path.is_dir():
        raise DataError(f"Input file {source} does not exist." if not path.exists()
                        else f"Input {source} is a folder; give a file.")
    if not path.is_file():   # a pipe or a device: /dev/stdin, <(command)
        return _read_stream(_file_text(path), path.name, column, role, candidates)
    suffix = path.suffix.lower()
    if suffix in FILE_BUILDERS and suffix != ".txt":
        return _read_table(path, column, role, candidates, path.name)
    if column and suffix:
        raise DataError(f"--column names a column of a table; {path.name} is read as plain lines.",
                        "Give a CSV / TSV / JSON Lines / Parquet file, or leave --column out.")
    if role == "image" and suffix != ".txt":
        return [str(path)]
    return _read_stream(_file_text(path), path.name, column, role, candidates)


def _stdin_text() -> str:
    try:
        return sys.stdin.read() if sys.stdin is not None else ""
    except (OSError, ValueError):   # closed or unreadable standard input
        return ""


def _file_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _read_stream(text: str, name: str, column: str | None, role: str, candidates: list[str]) -> list[str]:
    """Text read whole (standard input, a pipe, a file without a table suffix): JSON Lines when its first
    line is an object, a CSV (or TSV) table with ``column`` or when its first line is a header naming an
    input column, else one input per line. Tables go through the same loader as files."""
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and lines[0].lstrip().startswith("{"):
        suffix = ".jsonl"
    elif lines and (column or _is_table_header(lines[0], candidates)):
        suffix = ".tsv" if "\t" in lines[0] else ".csv"
    else:
        return lines
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"input{suffix}"
        path.write_text(text if suffix != ".jsonl" else "\n".join(lines) + "\n", encoding="utf-8")
        try:
            return _read_table(path, column, role, candidates, name, base=Path.cwd())
        except DataError as err:   # about the temporary copy: name what the user gave
            raise DataError(err.message.replace(str(path), name), err.hint) from None


def _is_table_header(line: str, candidates: list[str]) -> bool:
    """A first line of column names (two or more plain names, one of them an input column training would
    find), as `cat table.csv |` sends: the table is read, not its lines."""
    fields = [f.strip().strip('"') for f in line.split("\t" if "\t" in line else ",")]
    names = {c.lower() for c in candidates}
    return len(fields) >= 2 and all(re.fullmatch(r"[A-Za-z_][\w.-]*", f) for f in fields) \
        and any(f.lower() in names for f in fields)


def _read_table(path: Path, column: str | None, role: str, candidates: list[str], name: str,
                base: Path | None = None) -> list[str]:
    """The ``role`` column of a table, every row filled; image paths relative to ``base`` (the table's
    folder by default, as in training)."""
    split = next(iter(load_local(path).values()))
    column_name = data_mod.find_column(split.column_names, role, column, candidates, "--column", name)
    values = []
    for row, value in enumerate(split[column_name], 1):
        if value is None or isinstance(value, (dict, list)) or not str(value).strip():
            raise DataError(f"Row {row} of {name} has no {role} in column {column_name!r} ({json.dumps(value)}).",
                            "Give every row one, or leave the row out.")
        values.append(str(value))
    if role == "image":
        values = [v if Path(v).is_absolute() else str((base or path.parent) / v) for v in values]
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
