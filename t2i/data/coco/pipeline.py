"""`make_coco_datasets`: a COCO source's splits as tf.data pipelines (a `t2i.data.datasets.Datasets`)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from t2i.config import ExperimentConfig
from t2i.data.coco.batches import BatchPlan
from t2i.data.coco.cache import cached_pixels
from t2i.data.coco.images import decode_files, decode_image, looks_like_jpeg
from t2i.data.coco.loading import load_coco
from t2i.data.coco.npy_source import NPY_SIZE
from t2i.data.coco.skips import EXAMPLES, skip, warn
from t2i.data.coco.splits import CocoData, CocoSplit, length_filtered
from t2i.data.datasets import Datasets, TestExamples
from t2i.data.pipeline import MAX_EPOCHS, deterministic
from t2i.errors import T2IError


def spread_captions(examples: TestExamples, n: int = 8) -> list[str]:
    """The first caption of `n` test images spread over the test split (for sample grids)."""
    first = examples.first_per_image()
    rows = first[np.linspace(0, len(first) - 1, min(n, len(first))).round().astype(int)]
    return [examples.captions[r] for r in rows]


def make_coco_datasets(config: ExperimentConfig, tokenizer, initial_epoch: int = 0) -> Datasets:
    """Builds the COCO train / validation / test pipelines of `config`.

    Args:
        config: the experiment, with `data.dataset` "coco" and a vocabulary
            (`resolve_coco_config` fills an empty one).
        tokenizer: a `t2i.text.CaptionTokenizer`; maps caption strings to
            ids inside the tf.data graph.
        initial_epoch: the first data epoch of the train stream (resuming).

    Returns:
        `Datasets`: `train` is an endless dataset of {"images", "tokens"}
        batches of at most `train.batch_size` (bucketed batches share one
        caption length), `steps_per_epoch` per epoch; `validation` every
        validation caption in order (image id, then annotation id), the same
        batches every pass; `test` the test captions in the order of
        `test_examples` (uint8 images, `image_ids` the COCO image id of each
        row (npy source: the image row), so that per-image metrics can
        de-duplicate the 5 captions of an image; no `layouts`). `report`
        holds skipped input, {kind: {"count", "examples"[, "captions"]}} for
        every kind of `SKIPS` (count 0 when nothing was skipped); `stats`
        counts for information: images and captions per split,
        "train_examples" (after the length filter),
        "train_captions_outside_lengths", "length_buckets",
        "captions_beyond_first", ...; `cache` {split: {"path", "status"}}
        where `data.coco.cache` is used; `grid_captions` the first caption
        of 8 test images spread over the split, and no held-out ones.

    Raises:
        T2IError: a config that does not describe COCO, unreadable COCO
            files, a split left without examples.
    """
    d, m = config.data, config.model
    if d.dataset != "coco":
        raise T2IError(f"make_coco_datasets needs data.dataset 'coco', got {d.dataset!r}")
    if initial_epoch < 0:
        raise T2IError(f"initial_epoch must be >= 0, got {initial_epoch}")
    if m.channels != 3:
        raise T2IError(f"COCO images are RGB: set model.channels to 3 (got {m.channels})")
    if not config.text.vocabulary:
        raise T2IError("text.vocabulary is empty: build it from the training captions with "
                       "t2i.data.coco.resolve_coco_config(config) first")
    if config.text.max_caption_length < d.coco.max_train_caption_length - 1:
        raise T2IError(f"text.max_caption_length ({config.text.max_caption_length}) must be at least "
                       f"data.coco.max_train_caption_length - 1 ({d.coco.max_train_caption_length - 1})")
    height, width = m.image_height, m.image_width
    data = load_coco(config)
    report, stats = data.report, data.stats
    splits, cache = _attach_pixels(data, config, height, width)

    # Training: the length filter of the original code.
    train = length_filtered(splits["train"], config)
    stats["train_examples"] = len(train.captions)
    stats["train_captions_outside_lengths"] = len(splits["train"].captions) - len(train.captions)
    if not len(train.captions):
        raise T2IError(f"{data.source}: no training caption has {d.coco.min_caption_length} to "
                       f"{d.coco.max_train_caption_length - 1} tokens")
    # Validation and test: every length the model takes.
    for name in ("validation", "test"):
        split = splits[name]
        long = split.lengths > config.text.max_caption_length
        for i in np.flatnonzero(long):
            skip(report, "long_captions",
                  f"{name} image {split.image_ids[split.cap2im[i]]}: {split.lengths[i]} tokens")
        splits[name] = split.keep_captions(~long)
        if not len(splits[name].captions):
            raise T2IError(f"{data.source}: the {name} split has no usable captions")
    warn(report, ("unreadable_images", "long_captions"))
    stats["images"] = {n: s.num_images for n, s in splits.items()}
    stats["captions"] = {n: len(s.captions) for n, s in splits.items()}

    plan = BatchPlan(train.lengths, config.train.batch_size, seed=d.seed, bucketing=d.coco.bucketing,
                     steps_per_epoch=config.train.steps_per_epoch)
    stats["length_buckets"] = len(plan.buckets)

    def finish(images, captions):
        images = tf.cast(images, tf.float32) / 255.0  # the same division as the MNIST pipeline
        return {"images": images, "tokens": tokenizer(captions)}

    train_ds = (tf.data.Dataset.range(initial_epoch, MAX_EPOCHS)
                .flat_map(lambda e: _batches(train, plan.epoch, height, width, e)))
    if train.pixels is None:
        def decode_batch(files, captions):
            images = tf.map_fn(lambda f: decode_image(f, height, width, d.coco.image_fit), files,
                               fn_output_signature=tf.TensorSpec([height, width, 3], tf.uint8))
            return images, captions

        train_ds = train_ds.map(decode_batch, num_parallel_calls=tf.data.AUTOTUNE)
    train_ds = train_ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def finite(split: CocoSplit) -> tf.data.Dataset:
        b, n = config.train.batch_size, len(split.captions)
        in_order = [np.arange(s, min(s + b, n)) for s in range(0, n, b)]
        # A known cardinality lets Keras end validation without a warning.
        return (_batches(split, lambda _: in_order, height, width, 0)
                .apply(tf.data.experimental.assert_cardinality(len(in_order)))
                .map(finish, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))

    test = splits["test"]
    test_examples = TestExamples(images=test.pixels[test.cap2im], captions=list(test.captions),
                                 image_ids=test.image_ids[test.cap2im],
                                 held_out=np.zeros(len(test.captions), bool))
    return Datasets(
        train=deterministic(train_ds), validation=deterministic(finite(splits["validation"])),
        test=deterministic(finite(test)), test_examples=test_examples,
        steps_per_epoch=plan.steps_per_epoch, held_out=(), source=data.source,
        grid_captions=(spread_captions(test_examples, 8), []), report=report, stats=stats, cache=cache)


def _attach_pixels(data: CocoData, config: ExperimentConfig, height: int, width: int):
    """Puts images in memory where they will be (cache, npy, decoded validation/test).

    Returns (splits, cache info); drops and reports unreadable images.
    """
    splits, cache = dict(data.splits), {}
    d = config.data
    if d.coco.source == "npy":
        if (height, width) != (NPY_SIZE, NPY_SIZE):
            raise T2IError(f"the 'npy' COCO source holds 32x32 images; the model is {height}x{width}")
        return splits, cache
    cache_dir = Path(d.coco.cache).expanduser() if d.coco.cache else None
    for name, split in splits.items():
        if cache_dir is not None:
            pixels, ok, errors, cache[name] = cached_pixels(split, data.root, cache_dir, height, width,
                                                             d.coco.image_fit)
        elif name != "train":
            pixels, ok, errors = decode_files(split.files, height, width, d.coco.image_fit)
        else:
            # Streamed from JPEGs: check each header now rather than fail mid-epoch.
            pixels, ok = None, np.array([looks_like_jpeg(f) for f in split.files], bool)
            errors = {int(r): "not a JPEG file" for r in np.flatnonzero(~ok)[:EXAMPLES]}
        split = dataclasses.replace(split, pixels=pixels)
        bad = np.flatnonzero(~ok)
        if len(bad):
            entry = data.report["unreadable_images"]
            entry["captions"] = entry.get("captions", 0) + int(np.isin(split.cap2im, bad).sum())
            for row in bad:
                why = errors.get(int(row), "decoding failed")
                skip(data.report, "unreadable_images", f"{os.path.relpath(split.files[row], data.root)} ({why})")
            split = split.keep_images(ok)
        splits[name] = split
    return splits, cache


@tf.autograph.experimental.do_not_convert  # called while flat_map traces; holds a Python generator
def _batches(split: CocoSplit, batches_of_epoch, height: int, width: int, epoch) -> tf.data.Dataset:
    """(images uint8 [b, H, W, 3] or file names [b], captions [b]) per index batch."""
    captions = np.array([c.encode("utf-8") for c in split.captions], dtype=object)
    cap2im = split.cap2im
    if split.pixels is not None:
        source = split.pixels
        spec = tf.TensorSpec([None, height, width, 3], tf.uint8)
    else:
        source = np.array(split.files, dtype=object)
        spec = tf.TensorSpec([None], tf.string)

    def generate(e):
        for idx in batches_of_epoch(int(e)):
            yield source[cap2im[idx]], captions[idx]

    return tf.data.Dataset.from_generator(
        generate, args=(epoch,), output_signature=(spec, tf.TensorSpec([None], tf.string)))


def open_coco(config: ExperimentConfig, initial_epoch: int = 0):
    """COCO's pipelines for `t2i.data.datasets.open_datasets` (its entry in `t2i.data.catalog`):
    (the config with its vocabulary built from the training captions, its tokenizer, the
    `Datasets`).

    Raises:
        T2IError: what `resolve_coco_config` and `make_coco_datasets` raise.
    """
    from t2i.data.coco.vocabulary import resolve_coco_config
    from t2i.text import CaptionTokenizer

    config = resolve_coco_config(config)
    tokenizer = CaptionTokenizer(config.text)
    return config, tokenizer, make_coco_datasets(config, tokenizer, initial_epoch=initial_epoch)
