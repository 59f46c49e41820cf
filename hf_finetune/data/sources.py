"""Where a data set comes from and how it is read, before any column or split is chosen.

Sources: the template's embedded default, a local file or folder (CSV, TSV, JSON Lines, JSON,
Parquet, a ``save_to_disk`` folder or an image folder), or a Hub data set id through
``datasets.load_dataset``. Reading fails with a message that names the file and the reason, not a
pyarrow traceback; a folder's files become splits by their names; a ``DataSource`` says what was read
in the words the summary and the model card need.
"""

from __future__ import annotations

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


def _is_image_folder(path: Path) -> bool:
    """One sub-folder per class (optionally under train/ validation/ test/) holding image files."""
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.rglob("*") if p.is_file()) and not any(
        p.suffix.lower() in FILE_BUILDERS for p in path.iterdir() if p.is_file())


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
    import datasets
    from datasets import DatasetDict

    offline = hub.go_offline_if_unreachable()
    try:
        loaded = datasets.load_dataset(ref, config.dataset_config)
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
        if path.is_dir() and not _is_image_folder(path):
            source.split_files = {k: [p.name for p in v] for k, v in split_files(_data_files(path)).items()}
        elif path.is_file():
            source.split_files = {"train": [path.name]}
        names_file = (path if path.is_dir() else path.parent) / LABEL_NAMES_FILE
        if names_file.is_file():
            source.label_names_file = LABEL_NAMES_FILE
        return load_local(path), source, {}
    if ref.startswith((".", "/", "~")) or Path(ref).suffix.lower() in FILE_BUILDERS:
        raise DataError(f"Data file or folder {ref} does not exist.")
    raw = _load_hub(ref, config)
    return raw, DataSource(ref, ref, config.dataset_config, content=next(iter(raw.values()))._fingerprint), {}


def read_label_names(ref: str, source: DataSource) -> list[str] | None:
    """The names in the label_names.txt found beside the data, if ``load_raw`` found one."""
    if not source.label_names_file:
        return None
    path = Path(ref).expanduser()
    folder = path if path.is_dir() else path.parent
    names = [line.strip() for line in (folder / source.label_names_file).read_text(encoding="utf-8").splitlines()]
    return [n for n in names if n] or None
