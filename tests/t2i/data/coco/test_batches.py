"""Tests for t2i.data.coco.batches: BatchPlan's buckets, epochs and step counts."""

import math

import numpy as np

from t2i.data import coco


def test_batch_plan_buckets_uniform_pick_and_determinism():
    rng = np.random.default_rng(0)
    lengths = np.concatenate([np.full(n, length) for length, n in ((7, 16), (9, 13), (12, 4), (20, 1))])
    lengths = lengths[rng.permutation(len(lengths))]
    plan = coco.BatchPlan(lengths, batch_size=4, seed=11)
    assert plan.steps_per_epoch == plan.natural_steps == 4 + 4 + 1 + 1
    epochs = [plan.epoch(e) for e in range(6)]
    for batches in epochs:
        assert len(batches) == 10 and all(1 <= len(b) <= 4 for b in batches)  # no empty batch (>=)
        assert all(len(set(lengths[b])) == 1 for b in batches)
        assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    again = coco.BatchPlan(lengths, batch_size=4, seed=11).epoch(3)
    assert all(np.array_equal(a, b) for a, b in zip(epochs[3], again))
    assert len({tuple(np.concatenate(b)) for b in epochs}) == 6  # every epoch differs
    assert not all(np.array_equal(a, b) for a, b in zip(epochs[0], coco.BatchPlan(lengths, 4, seed=12).epoch(0)))

    # Buckets are picked uniformly, not in proportion to their size.
    skewed = np.array([5] * 200 + [6] * 4)
    firsts = [len(set(skewed[coco.BatchPlan(skewed, 4, seed=s).epoch(0)[0]]) & {6}) for s in range(300)]
    assert 0.38 < np.mean(firsts) < 0.62

    # Without bucketing: one shuffled pass in full batches, mixed lengths.
    flat = coco.BatchPlan(lengths, batch_size=4, seed=11, bucketing=False)
    batches = flat.epoch(0)
    assert flat.steps_per_epoch == math.ceil(34 / 4) and [len(b) for b in batches] == [4] * 8 + [2]
    assert any(len(set(lengths[b])) > 1 for b in batches)
    # A fixed step count extends an epoch with further passes, deterministically.
    longer = coco.BatchPlan(lengths, batch_size=4, seed=11, steps_per_epoch=13).epoch(2)
    assert len(longer) == 13 and all(np.array_equal(a, b) for a, b in zip(longer, epochs[2]))
    assert len(coco.BatchPlan(lengths, batch_size=4, seed=11, steps_per_epoch=3).epoch(2)) == 3
