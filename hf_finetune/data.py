"""Loading a data set from wherever it lives and shaping it into train / validation / test splits.

Sources: the template's embedded default, a local file or folder (CSV, TSV, JSON Lines, JSON,
Parquet, or a ``save_to_disk`` folder), or a Hub data set id through ``datasets.load_dataset``.
Columns are matched by role (``text``, ``label``, ...) from the template's candidate names or
the user's flags. Labels of any simple type become a ``ClassLabel`` so ``id2label`` is real.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import datasets
from datasets import ClassLabel, Dataset, DatasetDict, Value

from . import embedded, hub
from .config import RunConfig
from .errors import DataError, OfflineError, did_you_mean
from .templates import TaskTemplate

log = logging.getLogger("hf_finetune")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet",
                 ".txt": "text"}
VALIDATION_NAMES = ("validation", "valid", "val", "dev", "eval")
LABEL_NAMES_FILE = "label_names.txt"   # beside the data: one name per line, for integer labels 0, 1, ...
TEST_NAMES = ("test", "testing")


@dataclass
class DataSource:
    """Where the data came from, in the words the model card and the summary need."""

    name: str                  # shown to people: "imdb", "reviews.csv", "crowdflower-tweet-sentiment"
    hub_id: str | None = None  # only for Hub data sets; goes into the card's `datasets`
    config: str | None = None
    description: str = ""
    license: str | None = None
    local: bool = False          # a file or folder on this machine (its path is never written into shared files)
    content: str = ""            # what identifies the bytes read: a hash of local files, a Hub fingerprint
    split_files: dict[str, list[str]] = field(default_factory=dict)   # split -> file names it was read from
    label_names_file: str | None = None  # a label_names.txt beside the data, when one names integer labels

    def split_label(self, split: str) -> str:
        """"validation (dev.tsv)": a split with the files it came from."""
        files = self.split_files.get(split)
        return f"{split} ({', '.join(files)})" if files else split


def content_hash(path: Path) -> str:
    """sha256 over a file's bytes, or over every file under a folder (relative path and bytes)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(path) if file != path else "").encode("utf-8", "surrogateescape"))
        with file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@dataclass
class PreparedData:
    splits: DatasetDict                      # train / validation / test, with role-named columns
    labels: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)   # role -> original column name
    source: DataSource = field(default_factory=lambda: DataSource("unknown"))
    split_origin: dict[str, str] = field(default_factory=dict)  # split -> where it came from
    dropped: dict[str, int] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)  # split -> hash of its content

    def fingerprint_splits(self) -> None:
        """A hash per split of exactly what it holds (its rows, as Arrow) and of the bytes it was read
        from (image files are referred to by path): the key of the tokenization cache and of resuming."""
        import pyarrow as pa

        for name, split in self.splits.items():
            digest = hashlib.sha256(self.source.content.encode())
            table = split.with_format("arrow")[:]
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table.combine_chunks())
            digest.update(sink.getvalue().to_pybytes())
            self.fingerprints[name] = digest.hexdigest()

    def label_counts(self, split: str) -> dict[str, int]:
        if "labels" in self.splits[split].column_names:   # multi-label: rows that carry each label
            import numpy as np

            rows = np.asarray(self.splits[split]["labels"]).reshape(-1, len(self.labels))
            return {name: int(rows[:, i].sum()) for i, name in enumerate(self.labels)}
        counts = Counter(self.splits[split]["label"])
        return {name: counts.get(i, 0) for i, name in enumerate(self.labels)}


# ---------------------------------------------------------------------------------------------
# reading


# pandas reads "NA", "None", "N/A", "null", "nan", ... as missing by default; in text data those are
# real labels and texts. Only a truly empty cell is missing.
CSV_NA = {"keep_default_na": False, "na_values": [""]}


def _read_files(builder: str, data_files: Any, what: str, **kwargs: Any) -> DatasetDict:
    """load_dataset on local files, with a clear error instead of a pyarrow traceback."""
    if builder == "csv":
        kwargs = {**CSV_NA, **kwargs}
    try:
        return datasets.load_dataset(builder, data_files=data_files, **kwargs)
    except Exception as err:  # noqa: BLE001 - many unrelated types come up from pyarrow/pandas
        chain = []
        cause: BaseException | None = err
        while cause is not None and len(chain) < 6:
            chain.append(cause)
            cause = cause.__cause__ or cause.__context__
        if any(isinstance(c, UnicodeDecodeError) for c in chain) and "encoding" not in kwargs:
            log.warning("%s is not UTF-8; reading it as Latin-1.", what)
            return _read_files(builder, data_files, what, encoding="latin-1", **kwargs)
        reason = str(chain[-1]).strip().splitlines()[0] if str(chain[-1]).strip() else type(chain[-1]).__name__
        if any("empty" in str(c).lower() or "corresponds to no data" in str(c) for c in chain) or any(
                type(c).__name__ == "EmptyDatasetError" for c in chain):
            reason = "the file holds no rows"
        if builder == "json":
            reason = _first_bad_json_line(data_files) or reason
        raise DataError(f"Could not read {what}: {reason}.",
                        "Check that it is a well-formed CSV / JSON Lines / Parquet file with a header row.") from None


def _first_bad_json_line(data_files: Any) -> str | None:
    """Where a JSON Lines file breaks, as "file line N: what" (pyarrow only gives a byte position)."""
    files = data_files.values() if isinstance(data_files, dict) else [data_files]
    for group in files:
        for name in ([group] if isinstance(group, str) else group):
            if not str(name).endswith(".jsonl"):
                continue
            with open(name, encoding="utf-8", errors="replace") as f:
                for number, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as err:
                        return f"{Path(name).name} line {number} is not valid JSON ({err.msg})"
                    if not isinstance(record, dict):
                        return f"{Path(name).name} line {number} is not a JSON object"
    return None


def _is_image_folder(path: Path) -> bool:
    """One sub-folder per class (optionally under train/ validation/ test/) holding image files."""
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.rglob("*") if p.is_file()) and not any(
        p.suffix.lower() in FILE_BUILDERS for p in path.iterdir() if p.is_file())


def _load_sklearn_digits() -> DatasetDict:
    """scikit-learn's bundled digits: 1,797 real 8x8 grey-level scans of handwritten digits, labels 0-9."""
    from datasets import Features, Image as ImageFeature
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = [Image.fromarray((img * (255 / 16)).astype("uint8"), mode="L") for img in digits.images]
    names = [str(n) for n in digits.target_names]
    features = Features({"image": ImageFeature(), "label": ClassLabel(names=names)})
    return DatasetDict(train=Dataset.from_dict({"image": images, "label": [int(t) for t in digits.target]},
                                               features=features))


def read_local(path: Path) -> DatasetDict:
    """A local file or folder as the data loader reads it for training (predict reads inputs so too)."""
    return _load_local(path)


def _load_local(path: Path) -> DatasetDict:
    if not path.is_file() and not path.is_dir():
        raise DataError(f"{path} is neither a regular file nor a folder (a device, FIFO or socket).",
                        "Give a CSV / TSV / JSON Lines / Parquet file or a folder of them.")
    if path.is_file():
        builder = FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise DataError(f"Don't know how to read {path}: use a .csv, .tsv, .jsonl, .json or .parquet file.")
        if path.stat().st_size == 0:
            raise DataError(f"{path} is empty.", "Give a file with a header row and at least a few rows per label.")
        kwargs = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
        return _read_files(builder, str(path), str(path), **kwargs)
    if _is_image_folder(path):
        return _read_files("imagefolder", None, str(path), data_dir=str(path))
    if (path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists():
        loaded = datasets.load_from_disk(str(path))
        return loaded if isinstance(loaded, DatasetDict) else DatasetDict(train=loaded)
    files = _data_files(path)
    if not files:
        raise DataError(f"{path} holds no .csv / .tsv / .jsonl / .json / .parquet files.")
    builders = {FILE_BUILDERS[p.suffix.lower()] for p in files}
    if len(builders) > 1:
        raise DataError(f"{path} mixes file formats ({', '.join(sorted(builders))}); keep one format per folder.")
    builder = builders.pop()
    kwargs = {"delimiter": "\t"} if all(p.suffix.lower() == ".tsv" for p in files) else {}
    splits = DatasetDict()
    for split, members in split_files(files).items():
        for p in members:
            if p.stat().st_size == 0:
                raise DataError(f"{p} is empty.")
        # each split on its own: the splits of a benchmark folder need not share columns (a test file
        # without labels), which one load_dataset call over all of them would refuse
        what = ", ".join(p.name for p in members)
        splits[split] = _read_files(builder, [str(p) for p in members], what, **kwargs)["train"]
    return splits


def _data_files(folder: Path) -> list[Path]:
    """The data files of a folder (not its label_names.txt)."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in FILE_BUILDERS and p.is_file()
                  and p.name != LABEL_NAMES_FILE)


def split_files(files: list[Path]) -> dict[str, list[Path]]:
    """Which split each file of a folder is: train*, dev*/valid*/val*/eval*/validation*, test*; others train."""
    by_split: dict[str, list[Path]] = {}
    for p in files:
        stem = p.stem.lower()
        split = ("train" if stem.startswith("train") else
                 "validation" if stem.startswith(VALIDATION_NAMES) else
                 "test" if stem.startswith(TEST_NAMES) else "train")
        by_split.setdefault(split, []).append(p)
    return by_split


def _load_hub(ref: str, config: RunConfig) -> DatasetDict:
    offline = hub.go_offline_if_unreachable()
    try:
        loaded = datasets.load_dataset(ref, config.dataset_config)
    except Exception as err:  # noqa: BLE001
        text = str(err)
        if offline or isinstance(err, ConnectionError):
            raise OfflineError(
                f"The data set {ref!r} is not a local path, so it must come from the Hugging Face Hub "
                f"({hub.endpoint()}), which can't be reached from here, and it is not in the local cache.",
                hub.OFFLINE_ADVICE,
            ) from None
        if "config" in text.lower() and ("available" in text.lower() or "missing" in text.lower()):
            raise DataError(f"Data set {ref!r} needs a configuration: {text.splitlines()[0]}",
                            "Pass one with --dataset-config NAME.") from None
        raise DataError(f"Could not load data set {ref!r} from the Hub: {text.splitlines()[0] if text else err!r}",
                        "Check the id (e.g. 'stanfordnlp/imdb'), or give a local file with --dataset.") from None
    if not isinstance(loaded, DatasetDict):
        loaded = DatasetDict(train=loaded)
    return loaded


def load_raw(ref: str, config: RunConfig) -> tuple[DatasetDict, DataSource, dict[str, str]]:
    """Read the data set; return it, its description and any column roles it declares."""
    if embedded.is_embedded(ref):
        asset = embedded.dataset(ref)
        if asset.format == "sklearn-digits":
            asset.locate()
            return _load_sklearn_digits(), DataSource(asset.name, None, None, asset.source, asset.license,
                                                      content=asset.name), {}
        path = asset.locate()
        kwargs = {"encoding": asset.encoding} if asset.encoding else {}
        raw = (_load_local(path) if path.is_dir() else
               _read_files(asset.format or "csv", str(path), f"embedded data set {asset.name}", **kwargs))
        return raw, DataSource(asset.name, None, None, asset.source, asset.license, content=asset.name), \
            dict(asset.columns)
    path = Path(ref).expanduser()
    if path.exists():
        if not os.access(path, os.R_OK):
            raise DataError(f"{path} can't be read (permission denied).")
        name = os.fsencode(path.resolve().name).decode("utf-8", "replace")   # shown in cards: valid UTF-8
        source = DataSource(name, local=True, content=content_hash(path))
        if path.is_dir() and not _is_image_folder(path):
            source.split_files = {k: [p.name for p in v] for k, v in split_files(_data_files(path)).items()}
        elif path.is_file():
            source.split_files = {"train": [path.name]}
        names_file = (path if path.is_dir() else path.parent) / LABEL_NAMES_FILE
        if names_file.is_file():
            source.label_names_file = LABEL_NAMES_FILE
        return _load_local(path), source, {}
    if ref.startswith((".", "/", "~")) or Path(ref).suffix.lower() in FILE_BUILDERS:
        raise DataError(f"Data file or folder {ref} does not exist.")
    raw = _load_hub(ref, config)
    return raw, DataSource(ref, ref, config.dataset_config, content=next(iter(raw.values()))._fingerprint), {}


# ---------------------------------------------------------------------------------------------
# shaping


def _pick_split(raw: DatasetDict, wanted: str | None, candidates: tuple[str, ...], role: str,
                source: DataSource | None = None) -> str | None:
    """The split to use for ``role``: the one asked for (by split name, or by the name of its file:
    ``dev`` for the split read from dev.tsv), else the first candidate name present."""
    if wanted:
        if wanted in raw:
            return wanted
        for split, files in (source.split_files if source else {}).items():
            if split in raw and any(Path(f).stem.lower() == wanted.lower() or f.lower() == wanted.lower()
                                    for f in files):
                return split
        listing = ", ".join(source.split_label(n) if source else n for n in raw)
        raise DataError(f"The data set has no split {wanted!r} for {role}; its splits: {listing}. "
                        f"{did_you_mean(wanted, list(raw)).split(' Available')[0]}".strip(),
                        f"Choose one with --{'train' if role == 'training' else role}-split.")
    return next((name for name in candidates if name in raw), None)


def resolve_column(columns: list[str], role: str, given: str | None, candidates: list[str], flag: str) -> str:
    """The column that plays ``role``: the user's choice (checked) or the first common name present."""
    if given:
        if given in columns:
            return given
        raise DataError(f"There is no {role} column {given!r}. {did_you_mean(given, columns)}",
                        f"Pass the right name with {flag}.")
    lowered = {c.lower(): c for c in columns}
    for name in candidates:
        if name.lower() in lowered:
            return lowered[name.lower()]
    raise DataError(f"Could not find the {role} column among {', '.join(repr(c) for c in columns)}.",
                    f"Name it with {flag} COLUMN.")


TEXT_ROLES = ("text", "summary")
COLUMN_FLAGS = {"labels": "label", "target": "label"}   # roles named by --label-column too


def _plain_columns(splits: DatasetDict, mapping: dict[str, str]) -> DatasetDict:
    """Text roles hold strings (numbers are turned into text, with a note); nested values (lists,
    structs) in a text or label role are refused: they need another template."""
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


def _label_names(values: list[Any], column: str) -> list[Any]:
    """Sorted distinct label values, after checking they are class labels."""
    kinds = {type(v) for v in values}
    if kinds <= {bool}:
        return sorted(set(values))
    if kinds <= {int, float, bool}:
        for v in values:
            if isinstance(v, float) and (math.isinf(v) or not v.is_integer()):
                raise DataError(
                    f"Label column {column!r} holds non-integer numbers (e.g. {v}); it looks like a regression target.",
                    "This template classifies: give class labels (strings or whole numbers), or predict the number "
                    "with the regression template: `hf-finetune regression` (the same --dataset and columns).")
        return sorted({int(v) for v in values})
    if kinds <= {str}:
        distinct = sorted(set(values))
        if len(distinct) > 2 and all(_is_number(v) for v in distinct) and any(
                not float(v).is_integer() for v in distinct):
            raise DataError(f"Label column {column!r} holds numbers with fractions as text (e.g. {distinct[0]!r}); "
                            "it looks like a regression target.",
                            "Predict the number with the regression template: `hf-finetune regression`.")
        return distinct
    return sorted({str(v) for v in values})  # mixed types: compare as text


def _is_number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip())


def encode_labels(ds: DatasetDict, column: str, names: list[str] | None = None,
                  strict: bool = False) -> tuple[DatasetDict, list[str]]:
    """Turn the label column of every split into one ClassLabel shared by all splits.

    ``names`` fix the label names and their order: integer labels 0, 1, ... are read as indices into
    them (``--label-names negative,positive``, a label_names.txt, a trained model's id2label); other
    labels must be among them. With ``strict`` (names the user gave) a label that is not is an error;
    otherwise (a trained model's names) its rows are dropped with a count.
    """
    feature = next(iter(ds.values())).features[column]
    if isinstance(feature, ClassLabel) and (not names or list(feature.names) == list(names)):
        ds = ds.rename_column(column, "label") if column != "label" else ds
        return ds, list(feature.names)
    if isinstance(feature, ClassLabel):   # names of the data vs names asked for: map by name
        own = list(feature.names)
        ds = ds.map(lambda batch: {column: [own[i] if i is not None and i >= 0 else None for i in batch[column]]},
                    batched=True, features=_with(next(iter(ds.values())).features, column, Value("string")), desc="Label names")
    values = [v for split in ds.values() for v in split[column] if not _is_missing(v)]
    distinct = _label_names(values, column)
    as_key = (lambda v: str(int(v)) if isinstance(v, float) else str(v))
    # integer labels are indices into the names, unless the names are those integers themselves (a model
    # trained on labels 1 and 5 has the names "1" and "5")
    as_index = bool(names) and bool(distinct) and all(isinstance(v, int) and not isinstance(v, bool)
                                                      for v in distinct) and not {str(v) for v in distinct} <= set(names)
    if as_index:
        outside = [v for v in distinct if not 0 <= v < len(names)]
        if outside:
            raise DataError(f"Label column {column!r} holds {outside[0]}, but only {len(names)} label names were given "
                            f"({', '.join(names)}); integer labels are read as their indices.",
                            "Give one name per label 0, 1, ... in order.")
        as_key = (lambda v: names[int(v)])
    label_names = list(names) if names else [as_key(v) for v in distinct]
    index = {name: i for i, name in enumerate(label_names)}
    unknown = sorted({as_key(v) for v in distinct} - set(index), key=str)
    if unknown and strict:
        raise DataError(f"Label column {column!r} holds {', '.join(map(repr, unknown[:5]))}, which the label names "
                        f"given ({', '.join(label_names)}) lack.", "Name every label, or leave the names out.")
    if unknown:
        log.warning("Dropping rows whose label the model does not know: %s", ", ".join(map(repr, unknown[:5])))

    def to_ids(batch: dict[str, list]) -> dict[str, list]:
        return {"label": [index.get(as_key(v), -1) if not _is_missing(v) else -1 for v in batch[column]]}

    # The features are given, not inferred: inferred, datasets keeps a same-named column's string type and
    # stores the ids as strings, which a ClassLabel then reads as label *names* ("1" -> the label named "1").
    features = _with(next(iter(ds.values())).features, column, None)
    features["label"] = ClassLabel(names=label_names)
    ds = ds.map(to_ids, batched=True, remove_columns=[column], features=features, desc="Encoding labels")
    return ds, label_names


LABEL_SETS = "__label_set__"   # the column that --label-columns are joined into


def join_label_columns(raw: DatasetDict, config: RunConfig, roles: tuple[str, ...]) -> DatasetDict:
    """Multi-label data as several 0/1 columns (``--label-columns a,b,c``): one column holding each row's
    list of label names, which the label role then reads (a split without those columns, an unlabelled
    test file, is left as it is)."""
    columns = config.label_columns
    if not columns or "labels" not in roles:
        return raw
    if config.label_column:
        raise DataError("--label-column and --label-columns both name the labels.",
                        "Give a column of label lists with --label-column, or several 0/1 columns with "
                        "--label-columns, not both.")
    out = DatasetDict()
    for name, split in raw.items():
        present = [c for c in columns if c in split.column_names]
        if not present:
            out[name] = split
            continue
        if len(present) < len(columns):
            missing = next(c for c in columns if c not in split.column_names)
            raise DataError(f"Split {name!r} has no column {missing!r} (--label-columns). "
                            f"{did_you_mean(missing, split.column_names)}")
        for column in columns:
            bad = next((v for v in split[column] if not _is_missing(v) and str(v).strip().lower() not in
                        ("0", "1", "0.0", "1.0", "true", "false")), None)
            if bad is not None:
                raise DataError(f"Column {column!r} (--label-columns) holds {bad!r}; each of those columns must be "
                                "0 or 1 (the label is absent or present).",
                                "Give a column of label lists with --label-column instead.")

        def join(batch: dict[str, list]) -> dict[str, list]:
            rows = zip(*(batch[c] for c in columns))
            return {LABEL_SETS: [None if any(_is_missing(v) for v in row) else
                                 [c for c, v in zip(columns, row) if str(v).strip().lower() in ("1", "1.0", "true")]
                                 for row in rows]}

        out[name] = split.map(join, batched=True, remove_columns=columns, desc="Joining label columns")
    return out


def encode_label_sets(ds: DatasetDict, column: str, names: list[str] | None = None, strict: bool = False,
                      separator: str = ",") -> tuple[DatasetDict, list[str]]:
    """Multi-label: a column of label lists (or of labels joined by ``separator``) becomes ``labels``, one
    float 0/1 per label name (what BCEWithLogitsLoss takes), in the order of ``names`` or sorted."""
    from datasets import Sequence

    feature = next(iter(ds.values())).features[column]
    inner = getattr(feature, "feature", None)
    names_of_ids = list(inner.names) if isinstance(inner, ClassLabel) else None
    is_list = type(feature).__name__ in ("List", "Sequence", "LargeList")
    if not is_list and not (isinstance(feature, Value) and feature.dtype in ("string", "large_string")):
        raise DataError(f"The label column {column!r} holds {feature}; multi-label needs a list of labels per row, "
                        f"labels joined by {separator!r}, or several 0/1 columns.",
                        "Name the columns with --label-columns a,b,c, or the separator with --label-separator.")

    def as_set(value: Any) -> list[str] | None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if isinstance(value, str):
            return [part.strip() for part in value.split(separator) if part.strip()]
        return [names_of_ids[v] if names_of_ids else str(v) for v in value]

    seen = sorted({label for split in ds.values() for value in split[column] for label in (as_set(value) or [])})
    label_names = list(names) if names else seen
    index = {name: i for i, name in enumerate(label_names)}
    unknown = [label for label in seen if label not in index]
    if unknown and strict:
        raise DataError(f"Label column {column!r} holds {', '.join(map(repr, unknown[:5]))}, which the label names "
                        f"given ({', '.join(label_names)}) lack.", "Name every label, or leave the names out.")
    if unknown:
        log.warning("Ignoring labels the model does not know: %s", ", ".join(map(repr, unknown[:5])))

    def to_rows(batch: dict[str, list]) -> dict[str, list]:
        rows = []
        for value in batch[column]:
            labels = as_set(value)
            if labels is None:
                rows.append(None)
                continue
            row = [0.0] * len(label_names)
            for label in labels:
                if label in index:
                    row[index[label]] = 1.0
            rows.append(row)
        return {"labels": rows}

    features = _with(next(iter(ds.values())).features, column, None)
    features["labels"] = Sequence(Value("float32"))
    ds = ds.map(to_rows, batched=True, remove_columns=[column], features=features, desc="Encoding label sets")
    return ds, label_names


def encode_target(ds: DatasetDict, column: str) -> DatasetDict:
    """Regression: the target column as float64 ``target``; text that is not a number is an error naming it."""
    feature = next(iter(ds.values())).features[column]
    if isinstance(feature, ClassLabel):
        raise DataError(f"The target column {column!r} holds classes ({', '.join(feature.names[:5])}), not numbers.",
                        "Classify them with `hf-finetune sentiment`, or name a numeric column with --label-column.")
    for name, split in ds.items():
        for value in split[column]:
            if _is_missing(value) or isinstance(value, bool):
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise DataError(f"The target column {column!r} of split {name!r} holds {value!r}, not a number.",
                                "Regression predicts one number per text: name a numeric column with "
                                "--label-column, or classify with `hf-finetune sentiment`.") from None
            if not math.isfinite(number):
                raise DataError(f"The target column {column!r} of split {name!r} holds {value!r}.",
                                "Give finite numbers (an empty cell drops the row).")

    def to_float(batch: dict[str, list]) -> dict[str, list]:
        return {"target": [None if _is_missing(v) else float(v) for v in batch[column]]}

    features = _with(next(iter(ds.values())).features, column, None)
    features["target"] = Value("float64")
    return ds.map(to_float, batched=True, remove_columns=[column], features=features, desc="Reading the target")


def iterative_stratification(rows: Any, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split multi-label rows into (rest, held out) keeping each label's share in both, by iterative
    stratification (Sechidis, Tsoumakas & Vlahavas, ECML 2011): the rarest label's rows are placed first,
    each where that label is most wanted, ties by the fold size still wanted, then at random."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y = np.asarray(rows, dtype=np.int64).reshape(len(rows), -1)
    shares = np.array([1 - fraction, fraction])
    wanted = shares * len(y)
    wanted_per_label = np.outer(shares, y.sum(axis=0)).astype(np.float64)
    fold = np.full(len(y), -1)
    left = np.ones(len(y), dtype=bool)

    def place(i: int, candidates: np.ndarray) -> None:
        if len(candidates) > 1:
            candidates = candidates[wanted[candidates] == wanted[candidates].max()]
        f = int(rng.choice(candidates))
        fold[i], left[i] = f, False
        wanted[f] -= 1
        wanted_per_label[f] -= y[i]

    while left.any():
        counts = y[left].sum(axis=0)
        if not counts.any():   # rows without any label: by fold size alone
            for i in rng.permutation(np.flatnonzero(left)):
                place(int(i), np.array([0, 1]))
            break
        label = int(np.where(counts > 0, counts, np.iinfo(np.int64).max).argmin())
        for i in rng.permutation(np.flatnonzero(left & (y[:, label] > 0))):
            need = wanted_per_label[:, label]
            place(int(i), np.flatnonzero(need == need.max()))
    return np.flatnonzero(fold == 0).tolist(), np.flatnonzero(fold == 1).tolist()


def _with(features: Any, column: str, feature: Any) -> Any:
    """A copy of ``features`` with ``column`` set to ``feature`` (or removed, for None)."""
    features = features.copy()
    del features[column]
    if feature is not None:
        features[column] = feature
    return features


def _as_images(splits: DatasetDict, base: Path) -> DatasetDict:
    """An image column of file paths (CSV / JSON Lines) becomes an Image feature; relative paths
    are taken from the data file's folder."""
    from datasets import Image as ImageFeature

    feature = next(iter(splits.values())).features["image"]
    if isinstance(feature, ImageFeature):
        return splits
    if not (isinstance(feature, Value) and feature.dtype in ("string", "large_string")):
        raise DataError(f"The image column holds {feature}, not images or image file paths.")

    def resolve(batch: dict[str, list]) -> dict[str, list]:
        return {"image": [None if _is_missing(p) else str(p if Path(p).is_absolute() else base / p)
                          for p in batch["image"]]}

    for name in splits:
        missing = [p for p in splits[name]["image"] if not _is_missing(p) and not (
            Path(p) if Path(p).is_absolute() else base / p).exists()]
        if missing:
            raise DataError(f"{len(missing)} image file(s) of split {name!r} do not exist, e.g. {missing[0]!r}.",
                            f"Paths are taken relative to {base}.")
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
                ok &= (value is not None and value >= 0) if role == "label" else not _is_missing(value)
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


def prepare(template: TaskTemplate, config: RunConfig, roles: tuple[str, ...] = ("text", "label"),
            labels: list[str] | None = None) -> PreparedData:
    """Load the data set and return clean train / validation / test splits whose columns are the roles.

    ``roles`` come from the task kind: ("text", "label"), ("text", "summary"), ("image", "label").
    A ``label`` role becomes a ClassLabel shared by all splits, and held-out splits are stratified by it;
    ``labels`` fixes the label names and order (a trained model's id2label) instead of reading them
    from the data. The data's own validation and test splits are used when it has them (a test split
    without labels is set aside, and the final metrics are taken on the validation split); what is
    missing is held out of train, and every split's origin is recorded for the output and the card.
    """
    ref = config.dataset or template.default_dataset
    if not ref:
        raise DataError(f"Task {template.name!r} has no default data set; pass --dataset.")
    raw, source, declared = load_raw(ref, config)
    raw = join_label_columns(raw, config, roles)
    if config.label_columns and "labels" in roles:
        declared = {**declared, "labels": LABEL_SETS}
    train_name = _pick_split(raw, config.train_split, (), "training", source) or config.train_split
    mapping = _map_columns(raw[train_name], roles, config, template, declared, source)
    splits, origin, unlabelled = _data_splits(raw, train_name, config, mapping, source)
    names, strict = labels, False
    if not names and ("label" in roles or "labels" in roles):
        names, strict = config.label_names or config.label_columns or _label_names_file(ref, source), True
    splits, labels, dropped = _clean(splits, mapping, roles, names, strict, ref, origin, config.label_separator)
    if "test" in splits and len(splits["test"]) == 0 and "label" in roles:
        del splits["test"]   # every test label empty: e.g. a Hub benchmark's test split with label -1
        unlabelled = origin.pop("test")
    if "label" in roles:
        present = set(splits["train"]["label"])
        if len(present) < 2:
            only = labels[present.pop()] if present else "none"
            raise DataError(f"The training data holds a single class ({only!r}); a classifier needs at least two.",
                            f"Check the label column {mapping['label']!r}, or the split/sample options.")
    if unlabelled and "validation" in splits and "test" not in splits:
        splits["test"] = splits["validation"]
        origin["test"] = (f"{origin['validation']}: split {unlabelled} has no labels, so the final "
                          "metrics are taken on the validation split, which also chose the best checkpoint")
    if "labels" in roles and len(labels) < 2:
        raise DataError(f"The label column {mapping['labels']!r} holds {len(labels)} distinct label(s); multi-label "
                        "classification needs at least two.", "Check the label column and --label-separator.")
    splits, origin = _hold_out(splits, origin, config, roles)
    for role, limit in (("train", config.max_train_samples), ("validation", config.max_eval_samples),
                        ("test", config.max_test_samples)):
        if limit is not None and limit < len(splits[role]):
            splits[role] = splits[role].shuffle(seed=config.seed).select(range(limit))
    splits = DatasetDict({k: splits[k] for k in ("train", "validation", "test")})
    prepared = PreparedData(splits, labels, mapping, source, origin, dropped)
    prepared.fingerprint_splits()
    return prepared


def prepare_split(template: TaskTemplate, config: RunConfig, roles: tuple[str, ...], labels: list[str] | None,
                  split: str | None) -> PreparedData:
    """One split to score a trained model on (``evaluate``), as its ``test`` split, whole: the named
    split, else the data's test split, else its only split (a single file is scored whole), else its
    validation split. Labels map onto the model's ``labels``; rows with labels it doesn't know are
    dropped with a count."""
    ref = config.dataset
    raw, source, declared = load_raw(ref, config)
    raw = join_label_columns(raw, config, roles)
    if config.label_columns and "labels" in roles:
        declared = {**declared, "labels": LABEL_SETS}
    name = _pick_split(raw, split, (), "evaluation", source)
    if name is None:
        name = next((n for n in ("test",) if n in raw), None) or (next(iter(raw)) if len(raw) == 1 else None) \
            or next((n for n in VALIDATION_NAMES if n in raw), None)
    if name is None:
        raise DataError(f"Which split to score? The data set has {', '.join(map(source.split_label, raw))}.",
                        "Name one with --split.")
    mapping = _map_columns(raw[name], roles, config, template, declared, source)
    origin = {"test": source.split_label(name)}
    splits, labels, dropped = _clean(DatasetDict(test=raw[name]), mapping, roles, labels, False, ref, origin,
                                     config.label_separator)
    if len(splits["test"]) == 0:
        raise DataError(f"Split {origin['test']!r} has no rows with every column ({', '.join(mapping.values())}) "
                        "filled" + (" with a label the model knows." if "label" in roles else "."))
    if config.max_test_samples is not None and config.max_test_samples < len(splits["test"]):
        splits["test"] = splits["test"].shuffle(seed=config.seed).select(range(config.max_test_samples))
    prepared = PreparedData(splits, labels, mapping, source, origin, dropped)
    prepared.fingerprint_splits()
    return prepared


def _map_columns(split: Dataset, roles: tuple[str, ...], config: RunConfig, template: TaskTemplate,
                 declared: dict[str, str], source: DataSource) -> dict[str, str]:
    """role -> column of the data, from the flags, the data's declaration or the template's candidates."""
    columns = split.column_names
    mapping: dict[str, str] = {}
    for role in roles:
        flag = COLUMN_FLAGS.get(role, role)
        given = getattr(config, f"{flag}_column", None) or declared.get(role)
        try:
            mapping[role] = resolve_column(columns, role, given, template.columns.get(role, []),
                                           f"--{flag}-column")
        except DataError as err:
            if not given and looks_headerless(columns):
                raise DataError(f"Could not find the {role} column: the file seems to have no header row, so its "
                                f"first line was read as the column names ({', '.join(repr(c) for c in columns)}).",
                                "Add a header line naming the columns (e.g. `sentence<TAB>label`).") from None
            raise err
    if len(set(mapping.values())) < len(mapping):
        raise DataError(f"Two roles map to the same column ({mapping}); name them with the --*-column flags.")
    return mapping


def looks_headerless(columns: list[str]) -> bool:
    """Column names that look like a row of data: numbers, or long text with spaces."""
    def is_number(name: str) -> bool:
        try:
            float(name)
            return True
        except ValueError:
            return False

    return any(is_number(c) or (" " in c and len(c) > 25) for c in columns)


def _data_splits(raw: DatasetDict, train_name: str, config: RunConfig, mapping: dict[str, str],
                 source: DataSource) -> tuple[DatasetDict, dict[str, str], str | None]:
    """The data's own train / validation / test splits (what is missing is held out later), with their
    origin, and the name of a test split that has no labels (set aside), if any."""
    val_name = _pick_split(raw, config.validation_split, VALIDATION_NAMES, "validation", source)
    test_name = _pick_split(raw, config.test_split, TEST_NAMES, "test", source)
    if val_name and val_name == test_name:
        if config.validation_split and config.test_split:
            raise DataError(f"--validation-split and --test-split both name {source.split_label(val_name)}.",
                            "Choosing the best checkpoint and measuring it need two splits; leave one out and it "
                            "is held out of the training split.")
        if config.test_split:       # the test split asked for wins; validation is held out of train
            val_name = None
        else:
            test_name = None
    splits = DatasetDict(train=raw[train_name])
    origin = {"train": source.split_label(train_name)}
    for role, name in (("validation", val_name), ("test", test_name)):
        if name:
            splits[role], origin[role] = raw[name], source.split_label(name)
    unlabelled = None
    for name, split in list(splits.items()):
        missing = [c for c in mapping.values() if c not in split.column_names]
        target = mapping.get("label") or mapping.get("labels") or mapping.get("target")
        if name == "test" and missing == [target]:
            unlabelled = origin.pop("test")     # a benchmark's test file without labels: set aside
            del splits["test"]
            continue
        if missing:
            raise DataError(f"Split {origin[name]!r} lacks column {missing[0]!r}; its columns are "
                            f"{', '.join(split.column_names)}.")
        if len(split) == 0:
            raise DataError(f"Split {origin[name]!r} is empty.", "Give a data set with rows in every split.")
    return splits, origin, unlabelled


def _clean(splits: DatasetDict, mapping: dict[str, str], roles: tuple[str, ...], names: list[str] | None,
           strict: bool, ref: str, origin: dict[str, str],
           separator: str = ",") -> tuple[DatasetDict, list[str], dict[str, int]]:
    """Role-named plain columns, labels as one ClassLabel, images decoded lazily, empty rows dropped."""
    splits = DatasetDict({k: v.select_columns(list(mapping.values())) for k, v in splits.items()})
    splits = _plain_columns(splits, mapping)
    labels: list[str] = []
    if "label" in roles:
        splits, labels = encode_labels(splits, mapping["label"], names, strict)
    if "labels" in roles:
        splits, labels = encode_label_sets(splits, mapping["labels"], names, strict, separator)
    if "target" in roles:
        splits = encode_target(splits, mapping["target"])
    renames = {col: role for role, col in mapping.items() if col != role and role not in ("label", "labels", "target")}
    if renames:
        splits = splits.rename_columns(renames)
    if "image" in roles:
        splits = _as_images(splits, Path(ref).parent if Path(ref).is_file() else Path(ref))
    splits, dropped = drop_empty_rows(splits, roles)
    for name in list(splits):
        if len(splits[name]) == 0 and name != "test":
            raise DataError(f"Split {origin[name]!r} has no rows with every column "
                            f"({', '.join(mapping.values())}) filled.")
    return splits, labels, dropped


def _hold_out(splits: DatasetDict, origin: dict[str, str], config: RunConfig,
              roles: tuple[str, ...]) -> tuple[DatasetDict, dict[str, str]]:
    """Hold the missing test, then validation split out of train (stratified by label when possible)."""
    for role, fraction in (("test", config.test_size), ("validation", config.validation_size)):
        if role in splits:
            continue
        train = splits["train"]
        if len(train) < 4:
            raise DataError(f"The training split has only {len(train)} rows; too few to hold out a {role} split.")
        how = "random"
        if "labels" in roles:
            rest, held = iterative_stratification(train["labels"], fraction, config.seed)
            splits["train"], splits[role] = train.select(rest), train.select(held)
            origin[role] = (f"{fraction:.0%} hold-out of {origin['train']} by iterative stratification of the label "
                            f"sets, seed {config.seed}")
            continue
        if "target" in roles:
            parts, how = _hold_out_by_quantiles(train, fraction, config.seed)
        elif "label" in roles:
            try:
                parts = train.train_test_split(test_size=fraction, seed=config.seed, stratify_by_column="label")
                how = "stratified"
            except ValueError:
                log.warning("Some class has too few rows for a stratified split; splitting %s at random.", role)
                parts = train.train_test_split(test_size=fraction, seed=config.seed)
        else:
            parts = train.train_test_split(test_size=fraction, seed=config.seed)
        splits["train"], splits[role] = parts["train"], parts["test"]
        origin[role] = f"{how} {fraction:.0%} hold-out of {origin['train']}, seed {config.seed}"
    return splits, origin


def _hold_out_by_quantiles(train: Dataset, fraction: float, seed: int) -> tuple[DatasetDict, str]:
    """Regression: a hold-out stratified by the target's deciles, so both parts span its range."""
    import numpy as np

    values = np.asarray(train["target"], dtype=np.float64)
    edges = np.unique(np.quantile(values, np.linspace(0, 1, 11)[1:-1]))
    binned = train.add_column("_bin", np.searchsorted(edges, values, side="right").tolist())
    binned = binned.cast_column("_bin", ClassLabel(num_classes=len(edges) + 1))
    try:
        parts = binned.train_test_split(test_size=fraction, seed=seed, stratify_by_column="_bin")
        how = "target-decile stratified"
    except ValueError:
        parts, how = binned.train_test_split(test_size=fraction, seed=seed), "random"
    return DatasetDict({k: v.remove_columns("_bin") for k, v in parts.items()}), how


def _label_names_file(ref: str, source: DataSource) -> list[str] | None:
    if not source.label_names_file:
        return None
    path = Path(ref).expanduser()
    folder = path if path.is_dir() else path.parent
    names = [line.strip() for line in (folder / source.label_names_file).read_text(encoding="utf-8").splitlines()]
    return [n for n in names if n] or None


# ---------------------------------------------------------------------------------------------
# tokenization, cached across runs


def cache_dir() -> Path:
    return embedded.cache_root() / "tokenized"


CHARS_PER_TOKEN = 64   # texts are cut to max_length x this before tokenizing (a token rarely spans more)


def bounded(texts: list[str], max_tokens: int) -> list[str]:
    """Cut texts to a length no tokenization of ``max_tokens`` tokens reaches in practice, so that a
    multi-megabyte line costs no gigabytes of token ids that truncation throws away."""
    limit = max_tokens * CHARS_PER_TOKEN
    return [t if len(t) <= limit else t[:limit] for t in texts]


def processor_identity(processor: Any) -> str:
    """A hash of everything that decides a processor's output: for a fast tokenizer its whole serialised
    state (normaliser, pre-tokeniser, vocabulary, post-processor) and its settings; otherwise what
    ``save_pretrained`` writes."""
    import tempfile

    digest = hashlib.sha256(type(processor).__name__.encode())
    backend = getattr(processor, "backend_tokenizer", None)
    if backend is not None:
        state = json.loads(backend.to_str())
        # truncation / padding are set on the backend by each call (max_length=...): call state, not identity
        state.pop("truncation", None)
        state.pop("padding", None)
        digest.update(json.dumps(state, sort_keys=True).encode())
        settings = {k: getattr(processor, k, None) for k in ("model_max_length", "padding_side", "truncation_side")}
        digest.update(json.dumps([processor.init_kwargs, settings, processor.all_special_tokens], sort_keys=True,
                                 default=str).encode())
        return digest.hexdigest()
    with tempfile.TemporaryDirectory() as tmp:
        processor.save_pretrained(tmp)
        for file in sorted(Path(tmp).rglob("*")):
            if file.is_file():
                digest.update(file.name.encode() + file.read_bytes())
    return digest.hexdigest()


def _clean_stale_temp(folder: Path) -> None:
    """Temp dirs of processes that died while tokenizing (kill -9)."""
    for tmp in folder.glob(".tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def map_cached(ds: Dataset, fn: Callable[[dict], dict], key_parts: list[Any], split: str, desc: str) -> tuple[Dataset, bool]:
    """``Dataset.map`` whose result is kept on disk under a key of everything that decides it (the
    split's content fingerprint, the processor's identity and the options, in ``key_parts``).

    ``datasets`` only caches maps of file-backed data sets and re-hashes the function each time;
    an explicit key makes a second run of the same data and tokenizer skip tokenization entirely.
    The map writes into a temp dir of this process, renamed into place when complete.
    Returns the mapped data set and whether it came from the cache.
    """
    key = hashlib.sha256(json.dumps(key_parts, default=str).encode()).hexdigest()[:24]
    path = cache_dir() / key / f"{split}.arrow"
    if path.parent.is_dir():
        _clean_stale_temp(path.parent)
    if path.exists():
        try:
            return Dataset.from_file(str(path)), True
        except Exception:  # noqa: BLE001 - a damaged cache file is simply rebuilt
            path.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    try:
        ds.map(fn, batched=True, remove_columns=ds.column_names, cache_file_name=str(tmp / path.name),
               load_from_cache_file=False, desc=desc)
        os.replace(tmp / path.name, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Dataset.from_file(str(path)), False
