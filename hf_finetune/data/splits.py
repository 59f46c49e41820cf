"""Choosing and making the train / validation / test splits of a run.

The data's own splits are used when it has them (asked for by split or file name, else found by the
usual names); a test split without labels is set aside; what is missing is held out of train, as the
task kind stratifies it (so that both parts keep the label shares). Every split's origin is said in
words, for the output and the model card.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..config import RunConfig
from ..errors import DataError, did_you_mean
from .sources import TEST_NAMES, VALIDATION_NAMES, DataSource

if TYPE_CHECKING:
    from datasets import DatasetDict

    from ..kinds.base import TaskKind


def pick_split(raw: DatasetDict, wanted: str | None, candidates: tuple[str, ...], role: str,
               source: DataSource) -> str | None:
    """The split to use for ``role``: the one asked for (by split name, or by the name of its file:
    ``dev`` for the split read from dev.tsv), else the first candidate name present."""
    if wanted:
        if wanted in raw:
            return wanted
        for split, files in source.split_files.items():
            if split in raw and any(Path(f).stem.lower() == wanted.lower() or f.lower() == wanted.lower()
                                    for f in files):
                return split
        listing = ", ".join(source.split_label(n) for n in raw)
        raise DataError(f"The data set has no split {wanted!r} for {role}; its splits: {listing}. "
                        f"{did_you_mean(wanted, list(raw)).split(' Available')[0]}".strip(),
                        f"Choose one with --{'train' if role == 'training' else role}-split.")
    return next((name for name in candidates if name in raw), None)


def own_splits(raw: DatasetDict, train_name: str, config: RunConfig, mapping: dict[str, str],
               source: DataSource) -> tuple[DatasetDict, dict[str, str], str | None]:
    """The data's own train / validation / test splits (what is missing is held out later), with their
    origin, and the name of a test split that has no labels (set aside), if any."""
    from datasets import DatasetDict

    val_name = pick_split(raw, config.validation_split, VALIDATION_NAMES, "validation", source)
    test_name = pick_split(raw, config.test_split, TEST_NAMES, "test", source)
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


def hold_out(splits: DatasetDict, origin: dict[str, str], config: RunConfig,
             kind: type[TaskKind]) -> tuple[DatasetDict, dict[str, str]]:
    """Hold the missing test, then validation split out of train, as the kind stratifies it."""
    for role, fraction in (("test", config.test_size), ("validation", config.validation_size)):
        if role in splits:
            continue
        train = splits["train"]
        if len(train) < 4:
            raise DataError(f"The training split has only {len(train)} rows; too few to hold out a {role} split.")
        splits["train"], splits[role], how = kind.hold_out(train, fraction, config.seed)
        origin[role] = how.format(share=f"{fraction:.0%}", source=origin["train"], seed=config.seed)
    return splits, origin


def cap_samples(splits: DatasetDict, config: RunConfig) -> DatasetDict:
    """--max-train/eval/test-samples: a seeded random subset of each split that holds more rows."""
    for role, limit in (("train", config.max_train_samples), ("validation", config.max_eval_samples),
                        ("test", config.max_test_samples)):
        if role in splits and limit is not None and limit < len(splits[role]):
            splits[role] = splits[role].shuffle(seed=config.seed).select(range(limit))
    return splits
