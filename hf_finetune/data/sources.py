"""Where a data set comes from and how it is read, before any column or split is chosen.

Sources: the template's embedded default, a local file or folder (CSV, TSV, JSON Lines, JSON,
Parquet, a ``save_to_disk`` folder or an image folder), or a Hub data set id through
``datasets.load_dataset``. Reading fails with a message that names the file and the reason, not a
pyarrow traceback; a folder's files become splits by their names; a ``DataSource`` says what was read
in the words the summary and the model card need.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import embedded, hub
from ..config import RunConfig
from ..errors import DataError, OfflineError

if TYPE_CHECKING:
    from datasets import DatasetDict

log = logging.getLogger("hf_finetune")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet",
                 ".txt": "text"}
VALIDATION_NAMES = ("validation", "valid", "val", "dev", "eval")
# beside the data: one name per line, for integer labels 0, 1, ... (label_names.txt is looked for first)
LABEL_NAMES_FILES = ("label_names.txt", "labels.txt")
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
    named_files: list[Path] = field(default_factory=list)   # local files its rows name (image paths), as read

    def split_label(self, split: str) -> str:
        """"validation (dev.tsv)": a split with the files it came from."""
        files = self.split_files.get(split)
        return f"{split} ({', '.join(files)})" if files else split


def content_hash(path: Path) -> str:
    """sha256 over a file's bytes, or over the files of a folder that are read (``files_read``: relative path
    and bytes): a note, a .git/ or a big stray file beside the data is neither read nor part of its identity."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else files_read(path)
    for file in files:
        digest.update(str(file.relative_to(path) if file != path else "").encode("utf-8", "surrogateescape"))
        with file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


# pandas reads "NA", "None", "N/A", "null", "nan", ... as missing by default; in text data those are
# real labels and texts. Only a truly empty cell is missing.
CSV_NA = {"keep_default_na": False, "na_values": [""]}


def _read_files(builder: str, data_files: Any, what: str, **kwargs: Any) -> DatasetDict:
    """load_dataset on local files, with a clear error instead of a pyarrow traceback."""
    import datasets

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


@dataclass
class FolderContents:
    """What a data folder holds, by kind: tables at its top (the data, when there are any), image files
    anywhere under it (an image folder: one sub-folder per class, optionally under train/ validation/ test/),
    plain .txt files at its top, and the rest (a README, .DS_Store, Thumbs.db, ...), which is not data."""

    tables: list[Path]
    images: list[Path]
    texts: list[Path]
    other: list[Path]

    def stray(self, folder: Path, kind: str) -> list[Path]:
        """The files that are left out when the folder is read as ``kind``: for "images", every other file
        under it; for "tables" (only the top of the folder is read), the notes and other files at its top."""
        if kind == "images":
            return sorted(self.other + self.texts)
        return sorted(p for p in self.other + (self.texts if self.tables else []) if p.parent == folder)


def is_hidden(file: Path, folder: Path) -> bool:
    """Hidden files and folders (.env, .git/, .DS_Store, macOS's ._photo.jpg, __MACOSX/) are never data, as in
    `datasets`."""
    return any(part.startswith((".", "__")) for part in file.relative_to(folder).parts)


def survey_folder(path: Path) -> FolderContents:
    """Sort a folder's files by kind (a label names file is none of them: it is read on its own)."""
    contents = FolderContents([], [], [], [])
    for p in sorted(path.rglob("*")):
        if not p.is_file() or (p.parent == path and p.name in LABEL_NAMES_FILES):
            continue
        suffix, top = p.suffix.lower(), p.parent == path
        if is_hidden(p, path):
            contents.other.append(p)
        elif suffix in IMAGE_SUFFIXES:
            contents.images.append(p)
        elif top and suffix in FILE_BUILDERS and suffix != ".txt":
            contents.tables.append(p)
        elif top and suffix == ".txt":
            contents.texts.append(p)
        else:
            contents.other.append(p)
    return contents


def _is_image_folder(path: Path) -> bool:
    """Image files under it and no tables at its top: stray files (a README, notes, .DS_Store) don't count."""
    contents = survey_folder(path)
    return bool(contents.images) and not contents.tables


def _say_stray(path: Path, stray: list[Path], kind: str) -> None:
    """Name, once, the files of a data folder that are left out (notes, system files)."""
    if not stray:
        return
    names = [str(p.relative_to(path)) for p in stray]
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    log.warning("Ignoring %d file(s) of %s that are not %s: %s.", len(names), path.name, kind, shown)


def _image_class_folders(path: Path, images: list[Path]) -> list[str]:
    """The sub-folders that hold images directly, when there are two or more (one per class)."""
    folders = sorted({str(p.parent.relative_to(path)) for p in images if p.parent != path})
    return folders if len(folders) > 1 else []


def _refers_to_images(splits: DatasetDict) -> bool:
    """Some text column of the tables holds image file names (a CSV of image paths beside its images)."""
    for split in splits.values():
        head = split.select(range(min(len(split), 20)))
        for column in head.column_names:
            if any(isinstance(v, str) and Path(v.strip()).suffix.lower() in IMAGE_SUFFIXES for v in head[column]):
                return True
    return False


def _load_sklearn_digits() -> DatasetDict:
    """scikit-learn's bundled digits: 1,797 real 8x8 grey-level scans of handwritten digits, labels 0-9."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image as ImageFeature
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = [Image.fromarray((img * (255 / 16)).astype("uint8"), mode="L") for img in digits.images]
    names = [str(n) for n in digits.target_names]
    features = Features({"image": ImageFeature(), "label": ClassLabel(names=names)})
    return DatasetDict(train=Dataset.from_dict({"image": images, "label": [int(t) for t in digits.target]},
                                               features=features))


def load_local(path: Path) -> DatasetDict:
    """A local file or folder as training reads it (predict reads its input tables so too)."""
    import datasets
    from datasets import DatasetDict

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
    if _is_saved_dataset(path):
        loaded = datasets.load_from_disk(str(path))
        return loaded if isinstance(loaded, DatasetDict) else DatasetDict(train=loaded)
    contents = survey_folder(path)
    if contents.images and not contents.tables:
        _say_stray(path, contents.stray(path, "images"), "images")
        return _read_files("imagefolder", None, str(path), data_dir=str(path))
    files = contents.tables or contents.texts
    if not files:
        raise DataError(f"{path} holds no .csv / .tsv / .jsonl / .json / .parquet files and no images.")
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
    _check_one_kind(path, contents, splits)
    _say_stray(path, contents.stray(path, "tables"), "data tables")
    return splits


def files_read(path: Path) -> list[Path]:
    """The files that reading a local data file or folder reads (``load_local``, and the label names file
    beside the data), never hidden ones: what a Job ships of it. The files its rows name (image paths) are
    known once they are read (``DataSource.named_files``)."""
    folder = path if path.is_dir() else path.parent
    names_file = _label_names_file(folder)
    files = [folder / names_file] if names_file else []
    if path.is_file():
        files.append(path)
    elif _is_saved_dataset(path):
        files += [p for p in path.rglob("*") if p.is_file() and not is_hidden(p, path)]
    elif _is_image_folder(path):
        import datasets

        builder = datasets.load_dataset_builder("imagefolder", data_dir=str(path))   # as load_local reads it
        files += [Path(f) for group in builder.config.data_files.values() for f in group]
    else:
        files += [p for group in split_files(data_files(path)).values() for p in group]
    return sorted(set(files))


def _is_saved_dataset(path: Path) -> bool:
    """A folder written by ``save_to_disk``."""
    return (path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists()


def _check_one_kind(path: Path, contents: FolderContents, splits: DatasetDict) -> None:
    """Tables beside class folders of images that the tables don't name: two data sets in one folder."""
    classes = _image_class_folders(path, contents.images)
    if classes and not _refers_to_images(splits):
        shown = ", ".join(f"{c}/" for c in classes[:5]) + (" ..." if len(classes) > 5 else "")
        tables = ", ".join(p.name for p in contents.tables[:5])
        raise DataError(f"{path} holds two kinds of data: tables ({tables}) and folders of images ({shown}), "
                        "and the tables don't name the images.",
                        "Give the image folder or the tables, each in a folder of its own (or the table file itself "
                        "with --dataset).")


def data_files(folder: Path) -> list[Path]:
    """The files of a folder that are read as tables (not a label names file, a note or a system file)."""
    contents = survey_folder(folder)
    return contents.tables or contents.texts


def split_files(files: list[Path]) -> dict[str, list[Path]]:
    """Which split each file of a folder is, by the file-name patterns of `datasets`
    (``datasets.data_files.DEFAULT_PATTERNS_SPLIT_IN_FILENAME``): train.csv, sst2-train.tsv, data_dev.csv,
    eval.csv (test, as in `datasets`), my_test.jsonl. When no name matches, every file is train; when some do,
    a file that matches none (which `datasets` would silently leave out) or several is an error."""
    from datasets.data_files import DEFAULT_PATTERNS_SPLIT_IN_FILENAME

    def splits_of(name: str) -> list[str]:
        return [str(split) for split, patterns in DEFAULT_PATTERNS_SPLIT_IN_FILENAME.items()
                if any(fnmatch.fnmatchcase(name.lower(), pattern.removeprefix("**/")) for pattern in patterns)]

    matched = {p: splits_of(p.name) for p in files}
    if not any(matched.values()):
        return {"train": list(files)} if files else {}
    unmatched = [p.name for p, splits in matched.items() if not splits]
    if unmatched:
        named = ", ".join(f"{p.name} ({s[0]})" for p, s in matched.items() if s)
        raise DataError(f"Which split is {', '.join(unmatched)}? The other files of the folder are named by split "
                        f"({named}), so a file named otherwise could be trained on by mistake.",
                        "Rename it with a split word (train, validation / valid / dev / val, test / eval), e.g. "
                        f"train-{unmatched[0]}, or move it out of the folder.")
    several = next(((p.name, s) for p, s in matched.items() if len(s) > 1), None)
    if several:
        raise DataError(f"The file name {several[0]} names two splits ({' and '.join(several[1])}).",
                        "Rename it so that it names one split.")
    by_split: dict[str, list[Path]] = {}
    for split in ("train", "validation", "test"):
        members = [p for p, s in matched.items() if s == [split]]
        if members:
            by_split[split] = members
    return by_split


SPLIT_COLUMN = "split"   # a table's column that says which split each row belongs to


def split_by_column(raw: DatasetDict, source: DataSource) -> DatasetDict:
    """One table with a ``split`` column: its rows become the splits that column names, by the split words of
    `datasets` (``datasets.data_files.SPLIT_KEYWORDS``: train / training, validation / valid / dev / val,
    test / testing / eval / evaluation), and the column is dropped (it is no input of the model). The
    splits say where they came from ("validation (data.csv, rows with split = dev)")."""
    from datasets import DatasetDict
    from datasets.data_files import SPLIT_KEYWORDS

    if len(raw) != 1:
        return raw
    (name, table), = raw.items()
    column = next((c for c in table.column_names if c.strip().lower() == SPLIT_COLUMN), None)
    if column is None:
        return raw
    canonical = {word: str(split) for split, words in SPLIT_KEYWORDS.items() for word in words}
    values = ["" if v is None else str(v).strip() for v in table[column]]
    unknown = sorted({v for v in values if v.lower() not in canonical}, key=lambda v: (not v, v))
    what = ", ".join(source.split_files.get(name, [source.name]))
    if unknown:
        shown = ", ".join(repr(v) if v else "empty cells" for v in unknown[:5])
        raise DataError(f"Column {column!r} of {what} says which split each row is, but holds {shown}, which names "
                        "no split.", "Use train, validation (or dev / valid / val) and test (or eval) in it, or "
                        "rename the column if it is not the split.")
    out, files = DatasetDict(), {}
    for split in ("train", "validation", "test"):
        rows = [i for i, v in enumerate(values) if canonical[v.lower()] == split]
        if rows:
            out[split] = table.select(rows).remove_columns(column)
            words = sorted({values[i] for i in rows})
            files[split] = [f"{what}, rows with {column} = {' / '.join(words)}"]
    if "train" not in out:
        raise DataError(f"Column {column!r} of {what} names no training rows ({', '.join(out)} only).",
                        "Mark the rows to train on with train in that column.")
    source.split_files = files
    return out


def _load_hub(ref: str, config: RunConfig, streaming: bool = False) -> DatasetDict:
    import datasets
    from datasets import DatasetDict, IterableDatasetDict

    offline = hub.go_offline_if_unreachable()
    try:
        loaded = datasets.load_dataset(ref, config.dataset_config, streaming=streaming)
    except Exception as err:  # noqa: BLE001
        text = str(err)
        if offline or isinstance(err, ConnectionError):
            raise OfflineError(
                f"The data set {ref!r} is not a local path, so it must come from the Hugging Face Hub "
                f"({hub.shown_endpoint()}), which can't be reached from here, and it is not in the local cache.",
                hub.OFFLINE_ADVICE,
            ) from None
        if "config" in text.lower() and ("available" in text.lower() or "missing" in text.lower()):
            raise DataError(f"Data set {ref!r} needs a configuration: {text.splitlines()[0]}",
                            "Pass one with --dataset-config NAME.") from None
        raise DataError(f"Could not load data set {ref!r} from the Hub: {text.splitlines()[0] if text else err!r}",
                        "Check the id (e.g. 'stanfordnlp/imdb'), or give a local file with --dataset.") from None
    if not isinstance(loaded, (DatasetDict, IterableDatasetDict)):
        loaded = (IterableDatasetDict if streaming else DatasetDict)(train=loaded)
    return loaded


def load_stream(ref: str, config: RunConfig) -> tuple[Any, DataSource]:
    """--streaming: the data set as an ``IterableDatasetDict`` (nothing downloaded or copied; rows are read as
    they are drawn), and its description. Tables only: a Hub data set, a CSV / TSV / JSON Lines / JSON / Parquet
    file, or a folder of them whose file names say their splits."""
    import datasets

    if embedded.is_embedded(ref):
        raise DataError(f"--streaming reads a Hub data set or a large local file; the embedded data set {ref} is "
                        "small and comes with hf-finetune.", "Leave out --streaming, or pass --dataset.")
    path = Path(ref).expanduser()
    if not path.exists():
        if ref.startswith((".", "/", "~")) or Path(ref).suffix.lower() in FILE_BUILDERS:
            raise DataError(f"Data file or folder {ref} does not exist.")
        raw = _load_hub(ref, config, streaming=True)
        return raw, DataSource(ref, ref, config.dataset_config, content=_hub_revision(ref, config))
    if not os.access(path, os.R_OK):
        raise DataError(f"{path} can't be read (permission denied).")
    if path.is_dir() and (_is_saved_dataset(path) or _is_image_folder(path)):
        raise DataError(f"--streaming reads tables (CSV / TSV / JSON Lines / JSON / Parquet files); {path} is "
                        f"{'a saved data set' if _is_saved_dataset(path) else 'an image folder'}.",
                        "Leave out --streaming for it.")
    files = {"train": [path]} if path.is_file() else split_files(data_files(path))
    suffixes = {p.suffix.lower() for group in files.values() for p in group}
    builders = {FILE_BUILDERS.get(suffix) for suffix in suffixes}
    if not files or len(builders) != 1 or None in builders or "text" in builders:
        raise DataError(f"--streaming reads CSV / TSV / JSON Lines / JSON / Parquet files of one format; {path} is "
                        f"{', '.join(sorted(suffixes)) or 'no such file'}.")
    builder = builders.pop()
    kwargs: dict[str, Any] = dict(CSV_NA) if builder == "csv" else {}
    if suffixes == {".tsv"}:
        kwargs["delimiter"] = "\t"
    name = os.fsencode(path.resolve().name).decode("utf-8", "replace")
    source = DataSource(name, local=True, content=content_hash(path),
                        split_files={k: [p.name for p in v] for k, v in files.items()},
                        label_names_file=_label_names_file(path if path.is_dir() else path.parent))
    raw = datasets.load_dataset(builder, data_files={k: [str(p) for p in v] for k, v in files.items()},
                                streaming=True, **kwargs)
    return raw, source


def _hub_revision(ref: str, config: RunConfig) -> str:
    """What identifies a streamed Hub data set's bytes: its commit (the stream reads that revision's files)."""
    from huggingface_hub import HfApi

    try:
        return f"{ref}@{HfApi().dataset_info(ref).sha}:{config.dataset_config}"
    except Exception:  # noqa: BLE001 - the rows read first still fingerprint the run
        return f"{ref}:{config.dataset_config}"


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
        raw = (load_local(path) if path.is_dir() else
               _read_files(asset.format or "csv", str(path), f"embedded data set {asset.name}", **kwargs))
        return raw, DataSource(asset.name, None, None, asset.source, asset.license, content=asset.name), \
            dict(asset.columns)
    path = Path(ref).expanduser()
    if path.exists():
        if not os.access(path, os.R_OK):
            raise DataError(f"{path} can't be read (permission denied).")
        name = os.fsencode(path.resolve().name).decode("utf-8", "replace")   # shown in cards: valid UTF-8
        source = DataSource(name, local=True, content=content_hash(path))
        if path.is_dir() and not _is_saved_dataset(path) and not _is_image_folder(path):
            source.split_files = {k: [p.name for p in v] for k, v in split_files(data_files(path)).items()}
        elif path.is_file():
            source.split_files = {"train": [path.name]}
        source.label_names_file = _label_names_file(path if path.is_dir() else path.parent)
        return split_by_column(load_local(path), source), source, {}
    if ref.startswith((".", "/", "~")) or Path(ref).suffix.lower() in FILE_BUILDERS:
        raise DataError(f"Data file or folder {ref} does not exist.")
    raw = _load_hub(ref, config)
    return raw, DataSource(ref, ref, config.dataset_config, content=next(iter(raw.values()))._fingerprint), {}


def _label_names_file(folder: Path) -> str | None:
    """The label names file beside the data: label_names.txt, else labels.txt."""
    return next((name for name in LABEL_NAMES_FILES if (folder / name).is_file()), None)


def read_label_names(ref: str, source: DataSource) -> list[str] | None:
    """The names in the label names file found beside the data (label_names.txt or labels.txt), if
    ``load_raw`` found one; a file that repeats a name is not a list of label names (it may hold one label
    per row of the data), and is refused."""
    if not source.label_names_file:
        return None
    path = Path(ref).expanduser()
    folder = path if path.is_dir() else path.parent
    names = [line.strip() for line in (folder / source.label_names_file).read_text(encoding="utf-8").splitlines()]
    names = [n for n in names if n]
    repeated = next((n for n in names if names.count(n) > 1), None)
    if repeated is not None:
        raise DataError(f"{source.label_names_file} beside the data repeats the name {repeated!r}: a label names file "
                        "holds each label's name once, one per line, in id order (0, 1, ...).",
                        f"Fix {source.label_names_file}, or move it away from the data if it is not a list of "
                        "label names.")
    return names or None
