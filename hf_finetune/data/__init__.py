"""Shaping a data set for a run: ``prepare`` (train / validation / test) and ``prepare_split`` (one split
to score), whose columns are named by role (``text``, ``label``, ...), matched from the template's
candidate names or the user's flags.

The steps live by concern: ``sources`` reads the data from wherever it lives, ``labels`` encodes class
labels and checks values, ``splits`` chooses and holds out the splits (the task kind encodes its target
and stratifies hold-outs, through these or its own code), ``tokenized`` caches the model
inputs across runs. No module of this package imports ``datasets`` at module level: the task kinds
import ``tokenized`` (and so this package), and the ``card`` command imports the kinds without reading
any data.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import RunConfig
from ..errors import DataError, did_you_mean
from .labels import is_missing
from .sources import VALIDATION_NAMES, DataSource, load_raw, read_label_names
from .splits import cap_samples, hold_out, own_splits, pick_split

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict

    from ..kinds.base import TaskKind
    from ..templates import TaskTemplate

log = logging.getLogger("hf_finetune")


@dataclass
class PreparedData:
    splits: DatasetDict                      # train / validation / test, with role-named columns
    labels: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)   # role -> original column name
    source: DataSource = field(default_factory=lambda: DataSource("unknown"))
    split_origin: dict[str, str] = field(default_factory=dict)  # split -> where it came from
    dropped: dict[str, int] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)  # split -> hash of its content
    stream: Any = None   # --streaming: the training rows as an IterableDataset (``splits["train"]``: its first rows)
    notes: list[str] = field(default_factory=list)   # what a stream read from where, for the output and the card

    def fingerprint_splits(self) -> None:
        """A hash per split of exactly what it holds (its rows, as Arrow) and of the bytes it was read
        from (image files are referred to by path): the key of the tokenization cache and of resuming."""
        import pyarrow as pa

        for name, split in self.splits.items():
            digest = hashlib.sha256(self.source.content.encode())
            table = _without_datasets_fingerprint(split.with_format("arrow")[:])
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table.combine_chunks())
            digest.update(sink.getvalue().to_pybytes())
            self.fingerprints[name] = digest.hexdigest()


def _without_datasets_fingerprint(table):
    """The table with the ``datasets`` fingerprint taken out of its schema metadata: for data read from
    local files that fingerprint follows their modification times, so a ``touch`` (a fresh git checkout)
    would make the same rows look like other data. The features stay: they are part of the content."""
    metadata = dict(table.schema.metadata or {})
    info = metadata.get(b"huggingface")
    if info is None:
        return table
    values = json.loads(info)
    if "fingerprint" not in values:
        return table
    del values["fingerprint"]
    metadata[b"huggingface"] = json.dumps(values).encode()
    return table.replace_schema_metadata(metadata)


def prepare(template: TaskTemplate, config: RunConfig, kind: type[TaskKind] | None = None,
            labels: list[str] | None = None) -> PreparedData:
    """Load the data set and return clean train / validation / test splits whose columns are the kind's
    roles: ("text", "label"), ("text", "summary"), ("image", "label"), ...

    The kind encodes its target column (a ClassLabel shared by all splits, label sets, a number), checks
    it and holds splits out stratified by it; ``labels`` fixes the label names and order (a trained
    model's id2label) instead of reading them from the data. The data's own validation and test splits are used when it has them (a test split
    without labels is set aside, and the final metrics are taken on the validation split); what is
    missing is held out of train, and every split's origin is recorded for the output and the card.
    ``kind``: the template's own by default.
    """
    from datasets import DatasetDict

    from .. import kinds

    kind = kind or kinds.get(template.kind)
    if config.streaming:
        from .streamed import prepare_streamed

        return prepare_streamed(template, config, kind, labels)

    ref = config.dataset or template.default_dataset
    if not ref:
        raise DataError(f"Task {template.name!r} has no default data set; pass --dataset.")
    raw, source, declared = load_raw(ref, config)
    raw, from_options = kind.read_columns(raw, config)
    declared = {**declared, **from_options}
    train_name = pick_split(raw, config.train_split, (), "training", source) or config.train_split
    mapping = _map_columns(raw[train_name], kind, config, template, declared, source)
    splits, origin, unlabelled = own_splits(raw, train_name, config, mapping, source)
    names, strict = labels, False
    if not names and kind.classification:
        names, strict = kind.named_labels(config) or read_label_names(ref, source), True
    splits, labels, dropped = _clean(splits, mapping, kind, names, strict, ref, origin, config, source)
    if "test" in splits and len(splits["test"]) == 0 and "label" in kind.roles:
        del splits["test"]   # every test label empty: e.g. a Hub benchmark's test split with label -1
        unlabelled = origin.pop("test")
    kind.check_targets(splits, labels, mapping[kind.target_role])
    if unlabelled and "validation" in splits and "test" not in splits:
        splits["test"] = splits["validation"]
        origin["test"] = (f"{origin['validation']}: split {unlabelled} has no labels, so the final "
                          "metrics are taken on the validation split, which also chose the best checkpoint")
    splits, origin = hold_out(splits, origin, config, kind)
    splits = cap_samples(splits, config)
    splits = DatasetDict({k: splits[k] for k in ("train", "validation", "test")})
    prepared = PreparedData(splits, labels, mapping, source, origin, dropped)
    prepared.fingerprint_splits()
    return prepared


def prepare_split(template: TaskTemplate, config: RunConfig, kind: type[TaskKind], labels: list[str] | None,
                  split: str | None) -> PreparedData:
    """One split to score a trained model on (``evaluate``), as its ``test`` split, whole: the named
    split, else the data's test split, else its only split (a single file is scored whole), else its
    validation split. Labels map onto the model's ``labels``; rows with labels it doesn't know are
    dropped with a count."""
    from datasets import DatasetDict

    ref = config.dataset
    raw, source, declared = load_raw(ref, config)
    raw, from_options = kind.read_columns(raw, config)
    declared = {**declared, **from_options}
    name = pick_split(raw, split, (), "evaluation", source)
    if name is None:
        name = next((n for n in ("test",) if n in raw), None) or (next(iter(raw)) if len(raw) == 1 else None) \
            or next((n for n in VALIDATION_NAMES if n in raw), None)
    if name is None:
        raise DataError(f"Which split to score? The data set has {', '.join(map(source.split_label, raw))}.",
                        "Name one with --split.")
    mapping = _map_columns(raw[name], kind, config, template, declared, source)
    origin = {"test": source.split_label(name)}
    splits, labels, dropped = _clean(DatasetDict(test=raw[name]), mapping, kind, labels, False, ref, origin, config,
                                     source)
    if len(splits["test"]) == 0:
        raise DataError(f"Split {origin['test']!r} has no rows with every column ({', '.join(mapping.values())}) "
                        "filled" + (" with a label the model knows." if "label" in kind.roles else "."))
    splits = cap_samples(splits, config)
    prepared = PreparedData(splits, labels, mapping, source, origin, dropped)
    prepared.fingerprint_splits()
    return prepared


# ---------------------------------------------------------------------------------------------
# columns by role


PAIR_ROLE = "text_pair"   # the second text of a text pair (the tokenizer's name for it): NLI, paraphrase, STS


def pair_columns(name: str) -> list[str]:
    """The columns a text column's name gives: two for a pair, written ``first,second`` (flags, config files,
    the templates' candidates), else one."""
    return [part.strip() for part in name.split(",") if part.strip()] or [name]


def is_pair(name: str) -> bool:
    return len(pair_columns(name)) == 2


def resolve_column(columns: list[str], role: str, given: str | None, candidates: list[str], flag: str,
                   pairs: bool = False) -> str:
    """The column that plays ``role``: the user's choice (checked) or the first common name present. With
    ``pairs``, a name ``first,second`` (given, or a candidate whose two columns are both present) is a text
    pair, returned in that form."""
    if given:
        if given in columns:
            return given
        parts = pair_columns(given) if pairs else [given]
        if len(parts) > 2:
            raise DataError(f"{flag} {given!r} names {len(parts)} columns; give one, or two for a text pair "
                            "(e.g. sentence1,sentence2).")
        for part in parts:
            if part not in columns:
                raise DataError(f"There is no {role} column {part!r}. {did_you_mean(part, columns)}",
                                f"Pass the right name with {flag}.")
        return ",".join(parts)
    lowered = {c.lower(): c for c in columns}
    for name in candidates:
        if is_pair(name) and not pairs:
            continue
        found = [lowered.get(part.lower()) for part in pair_columns(name)]
        if all(found):
            return ",".join(found)
    raise DataError(f"Could not find the {role} column among {', '.join(repr(c) for c in columns)}.",
                    f"Name it with {flag} COLUMN.")


def find_column(columns: list[str], role: str, given: str | None, candidates: list[str], flag: str,
                what: str = "the file", pairs: bool = False) -> str:
    """The column of a table that plays ``role`` (``resolve_column``), or an error that says when the table
    seems to have no header row: training and ``predict`` find their columns here."""
    try:
        return resolve_column(columns, role, given, candidates, flag, pairs)
    except DataError:
        if not given and looks_headerless(columns):
            raise DataError(f"Could not find the {role} column: {what} seems to have no header row, so its "
                            f"first line was read as the column names ({', '.join(repr(c) for c in columns)}).",
                            "Add a header line naming the columns (e.g. `sentence<TAB>label`).") from None
        raise


TEXT_ROLES = ("text", PAIR_ROLE, "summary")
COLUMN_FLAGS = {"labels": "label", "target": "label"}   # roles named by --label-column too


def _map_columns(split: Dataset, kind: type[TaskKind], config: RunConfig, template: TaskTemplate,
                 declared: dict[str, str], source: DataSource) -> dict[str, str]:
    """role -> column of the data, from the flags, the data's declaration or the template's candidates. A
    text column named ``first,second`` (or found so among the candidates) is a text pair: its second column
    plays ``text_pair``, for the kinds that read pairs."""
    columns = split.column_names
    mapping: dict[str, str] = {}
    for role in kind.roles:
        flag = COLUMN_FLAGS.get(role, role)
        given = getattr(config, f"{flag}_column", None) or declared.get(role)
        candidates = template.columns.get(role, [])
        found = find_column(columns, role, given, candidates, f"--{flag}-column", pairs=role == "text")
        if role == "text" and found not in columns:
            _check_reads_pairs(kind, template, found)
            mapping["text"], mapping[PAIR_ROLE] = pair_columns(found)
            continue
        mapping[role] = found
        if role == "text" and given and kind.text_pairs:
            _warn_half_pair(given, columns, candidates)
    if len(set(mapping.values())) < len(mapping):
        raise DataError(f"Two roles map to the same column ({mapping}); name them with the --*-column flags.")
    return mapping


def _check_reads_pairs(kind: type[TaskKind], template: TaskTemplate, pair: str) -> None:
    """A text pair for a kind that reads one text per example: one clear error, naming the tasks that read pairs."""
    if kind.text_pairs:
        return
    from .. import kinds, templates

    readers = [t.name for t in templates.list_templates() if kinds.get(t.kind).text_pairs]
    raise DataError(f"--text-column {pair!r} names a text pair (two columns); the {template.name} task reads one "
                    "text per example.",
                    "Name one column with --text-column" + (f", or train on text pairs with a task that reads them: "
                                                            f"{', '.join(readers)}." if readers else "."))


def _warn_half_pair(given: str, columns: list[str], candidates: list[str]) -> None:
    """A text column named alone that is one half of a common pair whose other half is there too (sentence1
    without sentence2): said, since the other text is left out."""
    lowered = {c.lower(): c for c in columns}
    for name in filter(is_pair, candidates):
        halves = [lowered.get(part.lower()) for part in pair_columns(name)]
        if given in halves and all(halves):
            log.warning("--text-column %s reads one text; the data also has %r, the other half of a common text "
                        "pair, which is left out. To read both as a pair: --text-column %s.", given,
                        next(h for h in halves if h != given), ",".join(halves))
            return


def looks_headerless(columns: list[str]) -> bool:
    """Column names that look like a row of data: numbers, or long text with spaces."""
    def is_number(name: str) -> bool:
        try:
            float(name)
            return True
        except ValueError:
            return False

    return any(is_number(c) or (" " in c and len(c) > 25) for c in columns)


def _plain_columns(splits: DatasetDict, mapping: dict[str, str]) -> DatasetDict:
    """Text roles hold strings (numbers are turned into text, with a note); nested values (lists,
    structs) in a text or label role are refused: they need another template."""
    from datasets import ClassLabel, Value

    for role, column in mapping.items():
        if role not in (*TEXT_ROLES, "label", "target"):
            continue
        feature = next(iter(splits.values())).features[column]
        if not isinstance(feature, (Value, ClassLabel)):
            what = "lists" if type(feature).__name__ in ("List", "Sequence", "LargeList") else f"{feature}"
            hint = ("One label per row is what this template does; for a list of labels per row use the multi-label "
                    "template: `hf-finetune multi-label` (the same --dataset and columns)." if role == "label"
                    else f"Name a column of plain values with --{COLUMN_FLAGS.get(role, role)}-column.")
            raise DataError(f"The {role} column {column!r} holds {what}, not plain values.", hint)
        if role in TEXT_ROLES and isinstance(feature, Value) and feature.dtype not in ("string", "large_string"):
            log.warning("The %s column %r holds %s values; they are used as text.", role, column, feature.dtype)
            splits = splits.cast_column(column, Value("string"))
    return splits


# ---------------------------------------------------------------------------------------------
# cleaning


def _clean(splits: DatasetDict, mapping: dict[str, str], kind: type[TaskKind], names: list[str] | None,
           strict: bool, ref: str, origin: dict[str, str], config: RunConfig,
           source: DataSource) -> tuple[DatasetDict, list[str], dict[str, int]]:
    """Role-named plain columns, the target as the kind encodes it, images decoded lazily, empty rows
    dropped."""
    from datasets import DatasetDict

    splits = DatasetDict({k: v.select_columns(list(mapping.values())) for k, v in splits.items()})
    splits = _plain_columns(splits, mapping)
    splits, labels = kind.encode_targets(splits, mapping[kind.target_role], names, strict, config)
    renames = {col: role for role, col in mapping.items() if col != role and role != kind.target_role}
    if renames:
        splits = splits.rename_columns(renames)
    if "image" in kind.roles:
        splits = _as_images(splits, Path(ref).parent if Path(ref).is_file() else Path(ref), source)
    splits, dropped = drop_empty_rows(splits, tuple(mapping))
    for name in list(splits):
        if len(splits[name]) == 0 and name != "test":
            raise DataError(f"Split {origin[name]!r} has no rows with every column "
                            f"({', '.join(mapping.values())}) filled.")
    return splits, labels, dropped


def _as_images(splits: DatasetDict, base: Path, source: DataSource) -> DatasetDict:
    """An image column of file paths (CSV / JSON Lines) becomes an Image feature; relative paths
    are taken from the data file's folder. The files are recorded in ``source.named_files``."""
    from datasets import Image as ImageFeature, Value

    feature = next(iter(splits.values())).features["image"]
    if isinstance(feature, ImageFeature):
        return splits
    if not (isinstance(feature, Value) and feature.dtype in ("string", "large_string")):
        raise DataError(f"The image column holds {feature}, not images or image file paths.")

    def resolve(batch: dict[str, list]) -> dict[str, list]:
        return {"image": [None if is_missing(p) else str(p if Path(p).is_absolute() else base / p)
                          for p in batch["image"]]}

    for name in splits:
        values = [p for p in splits[name]["image"] if not is_missing(p)]
        named = [Path(p) if Path(p).is_absolute() else base / p for p in values]
        missing = [value for value, path in zip(values, named) if not path.exists()]
        if missing:
            raise DataError(f"{len(missing)} image file(s) of split {name!r} do not exist, e.g. {missing[0]!r}.",
                            f"Paths are taken relative to {base}.")
        source.named_files += named
    splits = splits.map(resolve, batched=True, desc="Resolving image paths")
    return splits.cast_column("image", ImageFeature())


def drop_empty_rows(splits: DatasetDict, roles: tuple[str, ...]) -> tuple[DatasetDict, dict[str, int]]:
    """Drop rows where a role column is missing (None, NaN, blank text, label -1); count them.

    Images are not decoded here (that is slow, and the image kind reports unreadable files itself).
    """
    checked = [r for r in roles if r != "image"]

    def keep(*columns: list) -> list[bool]:
        flags = []
        for values in zip(*columns):
            ok = True
            for role, value in zip(checked, values):
                ok &= (value is not None and value >= 0) if role == "label" else not is_missing(value)
            flags.append(ok)
        return flags

    dropped: dict[str, int] = {}
    for name in list(splits):
        before = len(splits[name])
        splits[name] = splits[name].filter(keep, batched=True, input_columns=checked,
                                           desc=f"Dropping empty rows ({name})")
        dropped[name] = before - len(splits[name])
        if dropped[name]:
            log.warning("Dropped %d of %d rows of split %r with an empty value.", dropped[name], before, name)
    return splits, dropped
