"""Length buckets: every batch is padded to one of a few fixed lengths.

Dynamic padding makes a new tensor shape for almost every batch; on a GPU that defeats kernel
autotuning caches and makes ``torch.compile`` recompile without end, and padding everything to
``max_length`` wastes most of the compute on short texts. Buckets sit between the two: the
boundaries are chosen from the training lengths to waste the least padding with at most
``n`` shapes, batches are formed inside one bucket, and the collator pads a batch to its
bucket's boundary.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterator, Sequence

import numpy as np
import torch

MULTIPLE = 8   # tensor-core friendly widths


def boundaries(lengths: Sequence[int], n: int, multiple: int = MULTIPLE) -> list[int]:
    """At most ``n`` padded widths (multiples of ``multiple``) that minimise the total padding.

    Dynamic programming over the candidate widths: the cost of a bucket (a, b] is the padding of
    every example in it up to b.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size == 0:
        return [multiple]
    top = int(math.ceil(max(int(lengths.max()), 1) / multiple) * multiple)
    widths = np.arange(multiple, top + 1, multiple)
    counts = np.array([np.count_nonzero(lengths <= w) for w in widths])
    sums = np.array([lengths[lengths <= w].sum() for w in widths])
    count_between = lambda i, j: counts[j] - (counts[i] if i >= 0 else 0)  # noqa: E731
    sum_between = lambda i, j: sums[j] - (sums[i] if i >= 0 else 0)  # noqa: E731
    last = len(widths) - 1
    n = max(1, min(n, len(widths)))
    # best[k][j]: least padding for lengths <= widths[j] using k buckets, the top one ending at widths[j]
    best = np.full((n + 1, len(widths)), np.inf)
    choice = np.full((n + 1, len(widths)), -1, dtype=np.int64)
    for j in range(len(widths)):
        best[1][j] = count_between(-1, j) * widths[j] - sum_between(-1, j)
    for k in range(2, n + 1):
        for j in range(len(widths)):
            for i in range(j):
                cost = best[k - 1][i] + count_between(i, j) * widths[j] - sum_between(i, j)
                if cost < best[k][j]:
                    best[k][j], choice[k][j] = cost, i
    k = int(np.argmin(best[:, last]))
    chosen, j = [], last
    while k >= 1 and j >= 0:
        chosen.append(int(widths[j]))
        j, k = int(choice[k][j]), k - 1
    # drop widths that no example needs (a bucket that ended up empty)
    chosen = sorted(chosen)
    used = [w for i, w in enumerate(chosen) if np.any((lengths <= w) & (lengths > (chosen[i - 1] if i else 0)))]
    return used or [top]


def width_for(length: int, widths: Sequence[int], multiple: int = MULTIPLE) -> int:
    for w in widths:
        if length <= w:
            return w
    return int(math.ceil(length / multiple) * multiple)   # longer than any training example (eval only)


class BucketSampler(torch.utils.data.Sampler):
    """Indices in an order where every run of ``batch_size`` lies in one bucket.

    Per epoch: shuffle each bucket, cut it into full batches, pool the remainders (sorted by
    length, so they stay tight) into batches of their own, shuffle the batches, and keep the one
    short batch last so that batch boundaries stay aligned. Deterministic in (seed, epoch), so a
    resumed run sees the same order and every process of a distributed run the same batches.
    """

    def __init__(self, lengths: Sequence[int], widths: Sequence[int], batch_size: int, seed: int = 0):
        self.lengths = np.asarray(lengths)
        self.widths = list(widths)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self.bucket_of = np.searchsorted(np.asarray(self.widths), self.lengths, side="left")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def batches(self) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch])
        full, rest = [], []
        for bucket in np.unique(self.bucket_of):
            members = rng.permutation(np.flatnonzero(self.bucket_of == bucket))
            cut = len(members) - len(members) % self.batch_size
            full.extend(np.split(members[:cut], cut // self.batch_size) if cut else [])
            rest.extend(members[cut:].tolist())
        rest = np.array(sorted(rest, key=lambda i: self.lengths[i]), dtype=np.int64)
        cut = len(rest) - len(rest) % self.batch_size
        full.extend(np.split(rest[:cut], cut // self.batch_size) if cut else [])
        order = [full[i] for i in rng.permutation(len(full))]
        if cut < len(rest):
            order.append(rest[cut:])
        return order

    def __iter__(self) -> Iterator[int]:
        for batch in self.batches():
            yield from (int(i) for i in batch)


@dataclasses.dataclass
class PadToBucket:
    """Wraps a padding collator (a dataclass with ``padding`` and ``max_length``, such as
    ``DataCollatorWithPadding``) so that a batch is padded to its bucket's width instead of its own
    longest example."""

    collator: Any
    widths: list[int]
    input_name: str = "input_ids"

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        longest = max(len(f[self.input_name]) for f in features)
        width = width_for(longest, self.widths)
        return dataclasses.replace(self.collator, padding="max_length", max_length=width)(features)


def pads_to_width(collator: Any) -> bool:
    """Whether ``PadToBucket`` can wrap this collator."""
    return dataclasses.is_dataclass(collator) and {"padding", "max_length"} <= {
        f.name for f in dataclasses.fields(collator)}


def with_length_buckets(trainer_class: type, lengths: Sequence[int], widths: Sequence[int], seed: int) -> type:
    """The template's Trainer class, with training batches drawn by a ``BucketSampler``."""

    class BucketedTrainer(trainer_class):
        def _get_train_sampler(self, train_dataset=None):
            return BucketSampler(lengths, widths, self.args.train_batch_size, seed)

    BucketedTrainer.__name__ = BucketedTrainer.__qualname__ = trainer_class.__name__
    return BucketedTrainer


def prediction_order(trainer: Any, dataset: Any) -> np.ndarray:
    """The rows of ``dataset`` in the order ``trainer.predict`` returns them: its evaluation sampler's (seeded
    length groups with 'group_by_length', drawn afresh, the same each time), else the rows' own."""
    sampler = trainer._get_eval_sampler(dataset)
    if sampler is None or isinstance(sampler, torch.utils.data.SequentialSampler):
        return np.arange(len(dataset))
    return np.fromiter(iter(sampler), dtype=np.int64, count=len(dataset))


def in_row_order(values: Any, order: np.ndarray) -> Any:
    """Prediction outputs (arrays, or tuples, lists and dicts of them) whose first axis follows ``order``, put
    back in row order, so that entry i is the dataset's row i."""
    if values is None:
        return None
    if isinstance(values, dict):
        return {k: in_row_order(v, order) for k, v in values.items()}
    if isinstance(values, (tuple, list)):
        return type(values)(in_row_order(v, order) for v in values)
    restored = np.empty_like(values)
    restored[order] = values
    return restored


def padding_stats(lengths: Sequence[int], widths: Sequence[int]) -> dict[str, float]:
    """How much of the padded compute is real tokens, with these widths."""
    lengths = np.asarray(lengths)
    padded = sum(width_for(int(n), widths) for n in lengths)
    return {"buckets": list(widths), "real_token_fraction": round(float(lengths.sum()) / max(padded, 1), 4)}
