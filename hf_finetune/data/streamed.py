"""--streaming: the training split read as training goes (``datasets``' ``IterableDataset``), never whole.

What needs rows before training reads a bounded head of the stream, once: the validation and test splits
(the data's own, or the stream's first rows, held out of it), the label names (from the data's features, a
label names file or ``--label-names``, else the rows read first) and the training statistics, baselines and
linear probe (the first ``HEAD_ROWS`` training rows). The training rows are encoded and tokenized batch by
batch as the Trainer draws them; a label outside the known names stops the run with a message, not a crash.
"""

from __future__ import annotations

import itertools
import logging
import os
import traceback
from typing import TYPE_CHECKING, Any

from ..config import RunConfig
from ..errors import DataError, FinetuneError
from . import TEXT_ROLES, PreparedData, _clean, _map_columns
from .labels import integer_labels_are_indices, is_missing
from .sources import TEST_NAMES, VALIDATION_NAMES, SPLIT_COLUMN, load_stream, read_label_names
from .splits import pick_split

if TYPE_CHECKING:
    from datasets import Dataset

    from ..kinds.base import TaskKind
    from ..templates import TaskTemplate

log = logging.getLogger("hf_finetune")

EVAL_ROWS = 1000      # validation / test rows read from a stream, unless --max-eval-samples / --max-test-samples
HEAD_ROWS = 1000      # first training rows read for the label names, statistics, baselines and a linear probe
SHUFFLE_BUFFER = 1000   # rows the stream is shuffled within (datasets' buffer shuffle), seeded


def prepare_streamed(template: TaskTemplate, config: RunConfig, kind: type[TaskKind],
                     labels: list[str] | None = None) -> PreparedData:
    """``prepare`` for --streaming: validation / test and the training head as small in-memory splits, the
    training rows as ``PreparedData.stream``; what was read from where is in ``split_origin`` and ``notes``.
    ``labels``: a trained model's label names (``evaluate``), else they are found as the docstring above says."""
    from datasets import DatasetDict

    _check_kind(template, kind)
    ref = config.dataset or template.default_dataset
    raw, source = load_stream(ref, config)
    train_name = pick_split(raw, config.train_split, (), "training", source) or config.train_split
    if train_name not in raw:
        raise DataError(f"The data set has no split {train_name!r} to stream; its splits: "
                        f"{', '.join(map(source.split_label, raw))}.", "Choose one with --train-split.")
    own = {role: pick_split(raw, getattr(config, f"{role}_split"), names, role, source)
           for role, names in (("validation", VALIDATION_NAMES), ("test", TEST_NAMES))}
    own = {role: name for role, name in own.items() if name and name != train_name}
    counts = {"validation": config.max_eval_samples or EVAL_ROWS, "test": config.max_test_samples or EVAL_ROWS}
    flags = {"validation": "--max-eval-samples", "test": "--max-test-samples"}
    train_label = source.split_label(train_name)

    splits, origin = {}, {}
    for role, name in own.items():
        splits[role] = _take(raw[name], counts[role], source.split_label(name))
        origin[role] = _own_origin(source.split_label(name), len(splits[role]), counts[role], flags[role])
    held = [role for role in ("test", "validation") if role not in own]
    head_count = min(HEAD_ROWS, config.max_train_samples or HEAD_ROWS)
    first = _take(raw[train_name], sum(counts[r] for r in held) + head_count, train_label)
    if any(c.strip().lower() == SPLIT_COLUMN for c in first.column_names):
        raise DataError(f"{train_label} has a {SPLIT_COLUMN!r} column naming each row's split, which --streaming can't "
                        "follow (it would read every row to find the validation and test rows).",
                        "Put each split in a file of its own (train.jsonl, validation.jsonl, test.jsonl), or leave out "
                        "--streaming.")
    start = 0
    for role in held:
        splits[role] = first.select(range(start, min(start + counts[role], len(first))))
        origin[role] = (f"hold-out of rows {start + 1}-{start + len(splits[role])} of the {train_label} stream "
                        f"({flags[role]}), not trained on")
        start += counts[role]
    if start >= len(first):
        raise DataError(f"The {train_label} stream has {len(first)} rows: none is left to train on after the "
                        f"{start} held out for {' and '.join(held)}.",
                        "Give smaller --max-eval-samples / --max-test-samples, or a data set with its own splits.")
    splits["train"] = first.select(range(start, len(first)))
    origin["train"] = f"{train_label}, streamed" + (f" after its first {start} rows (held out)" if start else "")
    head = splits["train"]

    mapping = _map_columns(head, kind, config, template, {}, source)
    target = mapping[kind.target_role]
    raw_feature = head.features[target]
    given = labels or kind.named_labels(config) or read_label_names(ref, source)
    splits, labels, _ = _clean(DatasetDict({k: splits[k] for k in ("train", "validation", "test")}), mapping, kind,
                               given, bool(given) and not labels, ref, origin, config, source)
    if len(splits["test"]) == 0:
        splits["test"] = splits["validation"]
        origin["test"] = f"{origin['validation']}: the test rows read have no labels, so the final metrics are " \
                         "taken on the validation split"
    read = len(first) + sum(len(splits[role]) for role in own)
    label_source = _label_source(config, source, raw_feature, given, read)
    if len(labels) < 2:
        raise DataError(f"The rows read first from the stream hold a single label ({', '.join(labels) or 'none'}); "
                        "a classifier needs at least two, and the label names of a stream are taken from its first "
                        "rows unless given.",
                        "Name every label with --label-names (in id order), or put a label_names.txt beside the data.")
    present = [v for v in (head[target] if target in head.column_names else []) if not is_missing(v)]
    as_index = integer_labels_are_indices(present, given)
    stream = raw[train_name].skip(start) if start else raw[train_name]
    if config.max_train_samples:
        stream = stream.take(config.max_train_samples)
    stream = _encoded(stream, mapping, raw_feature, labels, as_index, start, label_source)
    stream = stream.shuffle(seed=config.seed, buffer_size=SHUFFLE_BUFFER)
    notes = [f"label names {', '.join(labels[:8])}{', ...' if len(labels) > 8 else ''} from {label_source}; a later "
             "row with another label stops the run" if kind.classification else "",
             f"the training rows are streamed ({origin['train']}), shuffled within a buffer of {SHUFFLE_BUFFER} "
             f"(seed {config.seed}); the training statistics, baselines and a --linear-probe are of its first "
             f"{len(head)} rows",
             "a resumed run reads the stream again from its start and skips the batches already trained on"]
    prepared = PreparedData(DatasetDict(splits), labels, mapping, source, origin, {}, stream=stream,
                            notes=[n for n in notes if n])
    prepared.fingerprint_splits()
    return prepared


def _check_kind(template: TaskTemplate, kind: type[TaskKind]) -> None:
    if kind.streams:
        return
    from .. import kinds, templates

    streaming = [t.name for t in templates.list_templates() if kinds.get(t.kind).streams]
    raise DataError(f"--streaming is not available for the {template.name} task: its targets are checked and "
                    "prepared over the whole training split.",
                    f"Leave out --streaming (e.g. with --max-train-samples), or stream with {', '.join(streaming)}.")


def _take(stream: Any, count: int, what: str) -> Dataset:
    """The first ``count`` rows of a stream, as a small in-memory split (the stream's features kept)."""
    from datasets import Dataset

    try:
        rows = list(itertools.islice(iter(stream), count))
    except Exception as err:  # noqa: BLE001 - pyarrow / pandas / fsspec errors of a malformed or unreachable file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"Could not read {what}: {reason}.",
                        "Check that it is a well-formed CSV / JSON Lines / Parquet file with a header row.") from None
    if not rows:
        raise DataError(f"{what} holds no rows.")
    features = stream.features
    return Dataset.from_list(rows, features=features) if features else Dataset.from_list(rows)


def _own_origin(label: str, read: int, wanted: int, flag: str) -> str:
    return f"{label}, its first {read} rows ({flag})" if read == wanted else f"{label}, all {read} rows"


def _label_source(config: RunConfig, source: Any, feature: Any, given: list[str] | None, rows: int) -> str:
    from datasets import ClassLabel

    if config.label_names:
        return "--label-names"
    if given:
        return f"{source.label_names_file} beside the data"
    if isinstance(feature, ClassLabel):
        return "the data set's features (a ClassLabel)"
    return f"the first {rows} rows read (validation, test and the first training rows)"


def _encoded(stream: Any, mapping: dict[str, str], feature: Any, labels: list[str], as_index: bool, offset: int,
             label_source: str) -> Any:
    """The training stream with role-named columns and label ids, rows with an empty value left out; a label
    outside ``labels`` is a DataError naming the row."""
    from datasets import ClassLabel, Features, Value

    index = {name: i for i, name in enumerate(labels)}
    own_names = list(feature.names) if isinstance(feature, ClassLabel) else None
    texts = [role for role in mapping if role in TEXT_ROLES]
    target = mapping["label"]

    def label_id(value: Any) -> int | None:
        if own_names is not None:
            return index.get(own_names[value]) if 0 <= value < len(own_names) else None
        if as_index:
            return value if isinstance(value, int) and 0 <= value < len(labels) else None
        if isinstance(value, float):
            return index.get(str(int(value))) if value.is_integer() else None
        return index.get(str(value))

    def encode(batch: dict[str, list], rows: list[int]) -> dict[str, list]:
        out: dict[str, list] = {role: [] for role in (*texts, "label")}
        for i, row in enumerate(rows):
            value = batch[target][i]
            if is_missing(value) or (own_names is not None and value < 0) or any(
                    is_missing(batch[mapping[role]][i]) for role in texts):
                continue
            found = label_id(value)
            if found is None:
                raise DataError(f"Row {offset + row + 1} of the training stream has the label {value!r}, which is not "
                                f"among the {len(labels)} label names taken from {label_source} "
                                f"({', '.join(labels[:10])}{', ...' if len(labels) > 10 else ''}).",
                                "Name every label with --label-names (in id order) or in a label_names.txt beside the "
                                "data, and run again.")
            out["label"].append(found)
            for role in texts:
                text = batch[mapping[role]][i]
                out[role].append(text if isinstance(text, str) else str(text))
        return out

    columns = list(dict.fromkeys(mapping.values()))
    features = Features({**{role: Value("string") for role in texts}, "label": ClassLabel(names=labels)})
    return stream.select_columns(columns).map(encode, batched=True, with_indices=True, remove_columns=columns,
                                              features=features)



def read_failure(err: BaseException, step: int) -> DataError | None:
    """A failure to read the training stream during training (a malformed row past the rows read first, a lost
    connection), as one message; None for any other failure (one that never passed through ``datasets``)."""
    if isinstance(err, FinetuneError) or not isinstance(err, Exception):
        return None
    if not any(f"{os.sep}datasets{os.sep}" in frame.filename for frame in traceback.extract_tb(err.__traceback__)):
        return None
    reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return DataError(f"Reading the training stream failed after step {step}: {type(err).__name__}: {reason}".rstrip()
                     + ".", "A lost connection: run the same command again; it resumes from the last checkpoint. A "
                            "malformed row: fix or remove it and run again (other data: training starts afresh).")
