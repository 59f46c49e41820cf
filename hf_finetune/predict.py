"""Predictions with a fine-tuned model: a run dir or a Hub id, inputs from a file or stdin.

Kept apart from training: it needs only the saved model, its processor and (for runs made
here) run_info.json, which says the task kind and the input prefix. The kind loads the model and
turns its outputs into predictions.
"""

from __future__ import annotations

import csv
import json
import math
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


def reads_pairs(info: RunInfo) -> bool:
    """Whether the run was trained on text pairs (its record names a second text column)."""
    return data_mod.PAIR_ROLE in info.columns


def read_inputs(source: str, column: str | None, kind: str, info: RunInfo | None = None) -> list[Any]:
    """The inputs to predict on: a table (CSV, TSV, JSON Lines, JSON, Parquet) read with the same loader
    and column detection as training; text lines (.txt); image paths. '-' reads standard input, and a
    stream such as /dev/stdin is read the same way: text lines, JSON Lines, or with ``column`` a CSV / TSV
    table. A run trained on text pairs reads (text, text_pair) tuples: from a table's two columns
    (``column`` 'first,second', else the run's own or common pair names), or one pair per line, its two
    texts separated by a tab."""
    role = kinds.get(kind).input_role
    info = info or RunInfo()
    own_template = info.template.name if info.template.bundled else None
    pairs = reads_pairs(info)
    own = f"{info.columns[role]},{info.columns[data_mod.PAIR_ROLE]}" if pairs else info.columns.get(role)
    candidates = [c for c in [own, *templates.column_candidates(role, own_template)]
                  if c and data_mod.is_pair(c) == pairs]
    if source == "-":
        text = _stdin_text()
        if not text.strip():
            raise DataError("Standard input is empty or closed; nothing to predict.",
                            "Pipe the inputs in (e.g. `cat texts.txt | hf-finetune predict RUN --input -`).")
        return _read_stream(text, "standard input", column, role, candidates, pairs)
    path = Path(source)
    if not path.exists() or path.is_dir():
        raise DataError(f"Input file {source} does not exist." if not path.exists()
                        else f"Input {source} is a folder; give a file.")
    if not path.is_file():   # a pipe or a device: /dev/stdin, <(command)
        return _read_stream(_file_text(path), path.name, column, role, candidates, pairs)
    suffix = path.suffix.lower()
    if suffix in FILE_BUILDERS and suffix != ".txt":
        return _read_table(path, column, role, candidates, path.name, pairs=pairs)
    if column and suffix:
        raise DataError(f"--column names a column of a table; {path.name} is read as plain lines.",
                        "Give a CSV / TSV / JSON Lines / Parquet file, or leave --column out.")
    if role == "image" and suffix != ".txt":
        return [str(path)]
    return _read_stream(_file_text(path), path.name, column, role, candidates, pairs)


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


def _read_stream(text: str, name: str, column: str | None, role: str, candidates: list[str],
                 pairs: bool = False) -> list[Any]:
    """Text read whole (standard input, a pipe, a file without a table suffix): JSON Lines when its first
    line is an object, a CSV (or TSV) table with ``column`` or when its first line is a header naming an
    input column, else one input per line (with ``pairs``, one text pair per line, tab-separated). Tables go
    through the same loader as files."""
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and lines[0].lstrip().startswith("{"):
        suffix = ".jsonl"
    elif lines and (column or _is_table_header(lines[0], candidates)):
        suffix = ".tsv" if "\t" in lines[0] else ".csv"
    else:
        return _pair_lines(lines, name) if pairs else lines
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"input{suffix}"
        path.write_text(text if suffix != ".jsonl" else "\n".join(lines) + "\n", encoding="utf-8")
        try:
            return _read_table(path, column, role, candidates, name, base=Path.cwd(), pairs=pairs)
        except DataError as err:   # about the temporary copy: name what the user gave
            raise DataError(err.message.replace(str(path), name), err.hint) from None


def _pair_lines(lines: list[str], name: str) -> list[tuple[str, str]]:
    """One text pair per line: the two texts separated by a tab (the pair form of text lines)."""
    pairs = []
    for number, line in enumerate(lines, 1):
        texts = line.split("\t")
        if len(texts) != 2 or not all(t.strip() for t in texts):
            raise DataError(f"Line {number} of {name} is not a text pair ({len(texts)} tab-separated "
                            f"part(s)): the model was trained on text pairs.",
                            "Give each pair on one line, its two texts separated by a tab, or a table with both "
                            "columns (--column FIRST,SECOND).")
        pairs.append((texts[0], texts[1]))
    return pairs


def _is_table_header(line: str, candidates: list[str]) -> bool:
    """A first line of column names (two or more plain names, one of them an input column training would
    find), as `cat table.csv |` sends: the table is read, not its lines."""
    fields = [f.strip().strip('"') for f in line.split("\t" if "\t" in line else ",")]
    names = {part.lower() for c in candidates for part in data_mod.pair_columns(c)}
    return len(fields) >= 2 and all(re.fullmatch(r"[A-Za-z_][\w.-]*", f) for f in fields) \
        and any(f.lower() in names for f in fields)


def _read_table(path: Path, column: str | None, role: str, candidates: list[str], name: str,
                base: Path | None = None, pairs: bool = False) -> list[Any]:
    """The ``role`` column of a table, every row filled; image paths relative to ``base`` (the table's
    folder by default, as in training). With ``pairs``, its two text columns, as (text, text_pair)."""
    split = next(iter(load_local(path).values()))
    found = data_mod.find_column(split.column_names, role, column, candidates, "--column", name, pairs=pairs)
    names = data_mod.pair_columns(found) if found not in split.column_names else [found]
    if pairs and len(names) != 2:
        raise DataError(f"--column {column!r} names one column; the model was trained on text pairs.",
                        "Name the two columns of each pair: --column FIRST,SECOND.")
    columns = [_filled(split[column_name], column_name, role, name) for column_name in names]
    values = list(zip(*columns)) if pairs else columns[0]
    if role == "image":
        values = [v if Path(v).is_absolute() else str((base or path.parent) / v) for v in values]
    return values


def _filled(values: list[Any], column_name: str, role: str, name: str) -> list[str]:
    """A column's values as text, every row filled."""
    texts = []
    for row, value in enumerate(values, 1):
        if value is None or isinstance(value, (dict, list)) or not str(value).strip():
            raise DataError(f"Row {row} of {name} has no {role} in column {column_name!r} ({json.dumps(value)}).",
                            "Give every row one, or leave the row out.")
        texts.append(str(value))
    return texts


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


def predict(model_ref: str, inputs: list[Any], *, batch_size: int = 32, token: str | None = None,
            revision: str | None = None, trust_remote_code: bool = False,
            progress: Any = None) -> list[dict[str, Any]]:
    """Predictions for ``inputs`` (texts, image paths, or for a model of text pairs (text, text_pair)
    tuples), one dict per input, by the run's task kind. A model with its own Python code (a custom
    architecture) is loaded only with ``trust_remote_code``."""
    folder, info = load_run(model_ref, token, revision)
    check_pairs(inputs, info)
    saved = RunDir(folder, hub_snapshot=not Path(model_ref).exists())
    run_max_length = saved.config.get("max_length") if saved.has("run_config.yaml") else None
    kind_class = kinds.get(info.kind)
    processor, model = kind_class.load_trained(folder, trust_remote_code)
    model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    kind = kind_class(model_config=model.config, prefix=info.prefix)
    limit = input_limit(processor, model, run_max_length)
    results: list[dict[str, Any]] = []
    for chunk in batches(inputs, batch_size):
        predicted = kind.predict_batch(processor, model, chunk, limit)
        _check_finite(predicted, len(results), model_ref)
        results.extend(predicted)
        if progress:
            progress(len(chunk))
    return results


def _check_finite(results: list[dict[str, Any]], before: int, model_ref: str) -> None:
    """A prediction that is not a finite number (NaN, inf) is refused: written out it would be `NaN` or
    `Infinity`, which JSON has not, and as a figure it means nothing."""
    def numbers(value: Any) -> Iterator[float]:
        if isinstance(value, float):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from numbers(item)

    for number, result in enumerate(results, before + 1):
        bad = next((v for v in numbers(result) if not math.isfinite(v)), None)
        if bad is not None:
            raise ModelError(f"The model {model_ref} gives input {number} an output that is not a finite number "
                             f"({bad}): its weights are not numbers (a training run that diverged), or its "
                             "config.json scales the output beyond float range (regression_target).",
                             "Retrain with a lower --learning-rate, or check the model's config.json.")


def check_pairs(inputs: list[Any], info: RunInfo) -> None:
    """Text pairs for a model trained on pairs, single inputs for one trained on single texts: a model given
    the other form would answer, wrongly."""
    from .kinds.base import is_pair_input

    given = sum(map(is_pair_input, inputs))
    if reads_pairs(info) and given < len(inputs):
        raise DataError("The model was trained on text pairs "
                        f"({info.columns['text']}, {info.columns[data_mod.PAIR_ROLE]}); give each input as "
                        "(text, text_pair).")
    if given and ((info.columns and not reads_pairs(info)) or not kinds.get(info.kind).text_pairs):
        raise DataError("Text pairs were given, but the model was trained on one input per example.",
                        "Give one text per input.")


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
