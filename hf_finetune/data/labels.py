"""Labels as a model trains on them: one label per row becomes a ``ClassLabel`` shared by all splits (so
``id2label`` is real), the same way in every split; values that are not class labels are refused with
the column and the value named; missing values stay missing, for the empty-row count. The task kinds
encode their targets with this (single-label kinds) or in their own module (label sets, numbers).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from ..errors import DataError

if TYPE_CHECKING:
    from datasets import DatasetDict

log = logging.getLogger("hf_finetune")


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


def is_missing(value: Any) -> bool:
    """None, NaN or blank text: a cell that holds no value, whatever its column's type."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip())


def check_known(unknown: list[Any], strict: bool, column: str, label_names: list[str], left_out: str) -> None:
    """Labels the names lack: an error when the user gave the names (``strict``); with a trained model's
    names, left out as ``left_out`` says, with a warning."""
    if unknown and strict:
        raise DataError(f"Label column {column!r} holds {', '.join(map(repr, unknown[:5]))}, which the label names "
                        f"given ({', '.join(label_names)}) lack.", "Name every label, or leave the names out.")
    if unknown:
        log.warning("%s: %s", left_out, ", ".join(map(repr, unknown[:5])))


def check_all_occur(label_names: list[str], present: set[str], column: str) -> None:
    """Names the user gave (``--label-names``, a label_names.txt) that no row of the data has are refused: each
    would be a class of the model that never sees an example, never predicted on purpose, and counted in
    the card and the metrics as if it had been learned."""
    never = [name for name in label_names if name not in present]
    if never:
        raise DataError(f"The label names given ({', '.join(label_names)}) include {', '.join(map(repr, never))}, "
                        f"which no row of label column {column!r} holds: a class without examples can't be learned.",
                        "Leave them out of --label-names (or label_names.txt), or add rows that have them.")


def integer_labels_are_indices(labels: list[Any], names: list[str] | None) -> bool:
    """Whether ``labels`` (present values, no missing ones) are indices into ``names``: integers, unless the
    names are those integers themselves (a model trained on labels 1 and 5 has the names "1" and "5")."""
    return bool(names) and bool(labels) and all(isinstance(v, int) and not isinstance(v, bool) for v in labels) \
        and not {str(v) for v in labels} <= set(names)


def encode_labels(ds: DatasetDict, column: str, names: list[str] | None = None,
                  strict: bool = False, all_occur: bool = True) -> tuple[DatasetDict, list[str]]:
    """Turn the label column of every split into one ClassLabel shared by all splits.

    ``names`` fix the label names and their order: integer labels 0, 1, ... are read as indices into
    them (``--label-names negative,positive``, a label_names.txt, a trained model's id2label); other
    labels must be among them. With ``strict`` (names the user gave) a label that is not is an error;
    otherwise (a trained model's names) its rows are dropped with a count. ``all_occur``: refuse names no row
    holds (not for a stream's first rows, which need not hold every label).
    """
    from datasets import ClassLabel, Value

    feature = next(iter(ds.values())).features[column]
    if isinstance(feature, ClassLabel) and (not names or list(feature.names) == list(names)):
        ds = ds.rename_column(column, "label") if column != "label" else ds
        return ds, list(feature.names)
    if isinstance(feature, ClassLabel):   # names of the data vs names asked for: map by name
        own = list(feature.names)
        ds = ds.map(lambda batch: {column: [own[i] if i is not None and i >= 0 else None for i in batch[column]]},
                    batched=True, features=replace_feature(next(iter(ds.values())).features, column, Value("string")), desc="Label names")
    values = [v for split in ds.values() for v in split[column] if not is_missing(v)]
    distinct = _label_names(values, column)
    as_key = (lambda v: str(int(v)) if isinstance(v, float) else str(v))
    as_index = integer_labels_are_indices(distinct, names)
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
    check_known(unknown, strict, column, label_names, "Dropping rows whose label the model does not know")
    if strict and all_occur:
        check_all_occur(label_names, {as_key(v) for v in distinct}, column)

    def to_ids(batch: dict[str, list]) -> dict[str, list]:
        return {"label": [index.get(as_key(v), -1) if not is_missing(v) else -1 for v in batch[column]]}

    # The features are given, not inferred: inferred, datasets keeps a same-named column's string type and
    # stores the ids as strings, which a ClassLabel then reads as label *names* ("1" -> the label named "1").
    features = replace_feature(next(iter(ds.values())).features, column, None)
    features["label"] = ClassLabel(names=label_names)
    ds = ds.map(to_ids, batched=True, remove_columns=[column], features=features, desc="Encoding labels")
    return ds, label_names


def replace_feature(features: Any, column: str, feature: Any) -> Any:
    """A copy of ``features`` with ``column`` set to ``feature`` (or removed, for None)."""
    features = features.copy()
    del features[column]
    if feature is not None:
        features[column] = feature
    return features
