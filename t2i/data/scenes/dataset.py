"""The examples of a scenes run, before any input pipeline (`prepare_scenes`).

* training: `data.examples_per_epoch` scenes rendered once (into a cache, keyed by
  everything that decides them) with their three captions each; data epoch e is all
  of them in the order of `default_rng([seed, e])`, each with one of its captions
  drawn by the same generator;
* validation: `data.validation_examples` seen scenes, first caption each, fixed;
* test: `data.test_examples` scenes, two thirds seen and one third held-out
  compositions in one shuffled order (the test rows say which), every caption kept
  (`image_ids`).

The pipelines (`t2i.data.pipeline`, `t2i.data.arrays`) take the same object for every
dataset: `epoch(e)` -> `Examples`, `validation`, `test`, `steps_per_epoch`,
`batch_size`, `datasets(train, validation, test)`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from t2i.data.datasets import Datasets, TestExamples
from t2i.errors import T2IError

CACHE_VERSION = 1
# Seed-sequence spawn keys, as for MNIST: splits never share a generator.
_TRAIN_KEY, _VALIDATION_KEY, _TEST_KEY = 4, 1, 2


@dataclasses.dataclass
class Examples:
    """uint8 images [n, H, W, C] and one caption each (str array [n])."""

    images: np.ndarray
    captions: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


def cache_dir() -> Path:
    """$T2I_SCENES_CACHE, else ~/.cache/t2i/scenes."""
    return Path(os.environ.get("T2I_SCENES_CACHE") or Path.home() / ".cache" / "t2i" / "scenes")


@dataclasses.dataclass
class ScenesData:
    """The examples of one scenes run (module docstring)."""

    held_out: tuple[str, ...]
    train_images: np.ndarray
    train_captions: np.ndarray  # str [n, CAPTIONS_PER_IMAGE]
    validation: Examples
    test: Examples
    test_held_out: np.ndarray
    test_attributes: dict
    steps_per_epoch: int
    batch_size: int
    seed: int
    source: str = "scenes"

    def epoch(self, epoch: int) -> Examples:
        rng = np.random.default_rng([self.seed, int(epoch)])
        n = self.steps_per_epoch * self.batch_size
        order = np.concatenate([rng.permutation(len(self.train_images))
                                for _ in range(-(-n // len(self.train_images)))])[:n]
        pick = rng.integers(0, self.train_captions.shape[1], n)
        return Examples(self.train_images[order], self.train_captions[order, pick])

    def datasets(self, train, validation, test) -> Datasets:
        examples = TestExamples(images=self.test.images, captions=[str(c) for c in self.test.captions],
                                image_ids=np.arange(len(self.test), dtype=np.int64),
                                held_out=self.test_held_out, layouts=None)
        seen = [str(c) for c in self.test.captions[~self.test_held_out][:4]]
        held = [str(c) for c in self.test.captions[self.test_held_out][:4]]
        return Datasets(train=train, validation=validation, test=test, test_examples=examples,
                        steps_per_epoch=self.steps_per_epoch, held_out=self.held_out, source=self.source,
                        grid_captions=(seen, held), stats={"train_images": len(self.train_images)})


def _render_cached(sampler, n: int, seed: int, held_out, styles) -> tuple[np.ndarray, np.ndarray]:
    key = json.dumps({"v": CACHE_VERSION, "n": n, "seed": seed, "held_out": list(held_out),
                      "styles": list(styles)}, sort_keys=True)
    path = cache_dir() / f"train-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if path.is_file():
        try:
            with np.load(path) as f:
                return f["images"], f["captions"]
        except (OSError, ValueError, KeyError):
            pass  # a broken cache is rendered again
    scenes = sampler.sample(n, np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_TRAIN_KEY,))))
    images, captions = scenes.images, np.array(scenes.captions, dtype=str)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(partial, images=images, captions=captions)
    os.replace(partial, path)
    return images, captions


def prepare_scenes(config) -> ScenesData:
    """Renders (or loads) the run's scenes.

    Raises:
        T2IError: the art is not installed (naming the install command), bad held-out
            text, an epoch without batches.
    """
    from t2i.data.scenes.sampler import DEFAULT_HELD_OUT, SceneSampler

    data, batch_size = config.data, config.train.batch_size
    if data.dataset != "scenes":
        raise T2IError(f"data.dataset {data.dataset!r}: this is the scenes pipeline")
    shape = (config.model.image_height, config.model.image_width, config.model.channels)
    if shape != (32, 32, 3):
        raise T2IError(f"scenes are 32x32x3 images; the model is configured for {shape}")
    steps_per_epoch = config.train.steps_per_epoch or data.examples_per_epoch // batch_size
    if steps_per_epoch < 1:
        raise T2IError(f"data.examples_per_epoch ({data.examples_per_epoch}) is smaller than "
                       f"train.batch_size ({batch_size}): an epoch would have no batches")
    sampler = SceneSampler(data.held_out if data.held_out else DEFAULT_HELD_OUT)
    held_out = tuple(str(c) for c in sampler.held_out)
    train_images, train_captions = _render_cached(sampler, data.examples_per_epoch, data.seed, held_out,
                                                  sampler.styles)
    fixed = lambda key: np.random.default_rng(np.random.SeedSequence(data.seed, spawn_key=(key,)))  # noqa: E731
    val = sampler.sample(data.validation_examples, fixed(_VALIDATION_KEY), "seen")
    test_rng = fixed(_TEST_KEY)
    n_held = data.test_examples // 3 if held_out else 0
    seen = sampler.sample(data.test_examples - n_held, test_rng, "seen")
    parts = [seen] + ([sampler.sample(n_held, test_rng, "held_out")] if n_held else [])
    # Seen and held-out scenes in one shuffled order, so that the first n (an evaluation of
    # fewer than all of them) hold both in the same proportion.
    order = test_rng.permutation(data.test_examples)
    test_images = np.concatenate([p.images for p in parts])[order]
    test_captions = np.array([c[0] for p in parts for c in p.captions], dtype=str)[order]
    test_held_out = np.concatenate([p.held_out for p in parts])[order]
    attributes = {k: np.concatenate([p.attributes[k] for p in parts])[order] for k in seen.attributes}
    return ScenesData(
        held_out=held_out, train_images=train_images, train_captions=train_captions,
        validation=Examples(val.images, np.array([c[0] for c in val.captions], dtype=str)),
        test=Examples(test_images, test_captions), test_held_out=test_held_out,
        test_attributes=attributes, steps_per_epoch=steps_per_epoch, batch_size=batch_size, seed=data.seed)
