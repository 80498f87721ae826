"""`BatchPlan`: which training examples form each batch of each epoch."""

from __future__ import annotations

import numpy as np

from t2i.errors import T2IError


class BatchPlan:
    """Which training examples form each batch of each epoch (docs/model.md §12).

    With bucketing (the original code's homogeneous batches): examples are
    grouped by exact token length; each epoch shuffles every bucket, then
    repeatedly picks one of the buckets that still has examples, uniformly at
    random (not in proportion to its size), and takes its next <=
    `batch_size` examples; a bucket drops out once exhausted (`>=`, so an
    exactly divisible bucket yields no empty batch, unlike the original's
    `>`). Without bucketing: one shuffled pass in consecutive batches.

    A pass therefore has a fixed number of batches (`natural_steps`: the sum
    over buckets of ceil(size / batch_size), or ceil(N / batch_size)); only
    their order and content change from epoch to epoch.

    Args:
        lengths: int [N], the token count of every training example.
        batch_size: most examples per batch.
        seed: epoch e is drawn with `np.random.default_rng([seed, e])`.
        bucketing: group batches by length.
        steps_per_epoch: 0: an epoch is one pass. Otherwise the first
            `steps_per_epoch` batches of passes drawn with [seed, e],
            [seed, e, 1], [seed, e, 2], ...
    """

    def __init__(self, lengths, batch_size: int, seed: int = 0, bucketing: bool = True,
                 steps_per_epoch: int = 0):
        self.lengths = np.asarray(lengths, np.int64)
        if self.lengths.ndim != 1 or not len(self.lengths):
            raise T2IError("no training examples to batch")
        if batch_size < 1:
            raise T2IError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size, self.seed, self.bucketing = batch_size, seed, bucketing
        values = np.unique(self.lengths)
        self.buckets = {int(v): np.flatnonzero(self.lengths == v) for v in values}
        if bucketing:
            self.natural_steps = sum(-(-len(ix) // batch_size) for ix in self.buckets.values())
        else:
            self.natural_steps = -(-len(self.lengths) // batch_size)
        self.steps_per_epoch = steps_per_epoch or self.natural_steps

    def epoch(self, epoch: int) -> list[np.ndarray]:
        """The batches of data epoch `epoch`: `steps_per_epoch` int64 index arrays."""
        batches, k = [], 0
        while len(batches) < self.steps_per_epoch:
            key = [self.seed, int(epoch)] + ([k] if k else [])
            batches.extend(self._one_pass(np.random.default_rng(key)))
            k += 1
        return batches[:self.steps_per_epoch]

    def _one_pass(self, rng: np.random.Generator) -> list[np.ndarray]:
        b = self.batch_size
        if not self.bucketing:
            order = rng.permutation(len(self.lengths))
            return [order[s:s + b] for s in range(0, len(order), b)]
        queues = [rng.permutation(ix) for ix in self.buckets.values()]  # ascending length
        position = [0] * len(queues)
        remaining = list(range(len(queues)))
        out = []
        while remaining:
            j = remaining[rng.integers(len(remaining))]
            out.append(queues[j][position[j]:position[j] + b])
            position[j] += b
            if position[j] >= len(queues[j]):
                remaining.remove(j)
        return out
