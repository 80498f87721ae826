"""The datasets t2i trains on, and what the code around the model asks of each.

The pipelines, training, evaluation, samplers, export, the command line and the
demo ask `dataset_of(config)` (or the helpers below) instead of branching on
`config.data.dataset`. A dataset is one `DatasetEntry` in `DATASETS`; its pieces
live in its own modules, named here as "module:attribute" and imported when first
used, so this module (read by `t2i.config` to validate a config) stays light.
Adding a dataset adds its modules and one entry.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any


@dataclasses.dataclass(frozen=True)
class WordGroup:
    """Caption words that replace each other in same-layout negatives (`t2i.samplers`).

    Attributes:
        words: the words of the group; a caption's word is swapped for each other one.
        before: if given, a word is swapped only where the next word is one of these
            (a colour before a noun, not the "green" of "green grass").
    """

    words: tuple[str, ...]
    before: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
    """One dataset: its images, its captions' words, and where its pieces are.

    Attributes:
        name: the value of `data.dataset`.
        image_shape: (height, width, channels) of its images, which the model
            must have; None: any (images are resized to the model's size).
        presets: presets that train on it, named in a config error.
        words: words every caption of it may use, which `text.vocabulary`
            must hold (MNIST's fixed vocabulary); () when the vocabulary is
            built from the data (COCO) or open.
        min_caption_tokens: the longest caption it produces, in tokens, which
            `text.max_caption_length` must allow.
        fresh_examples: training examples are drawn afresh every epoch, so a
            short epoch (`train.steps_per_epoch`) validates on a tenth of what
            it trains on (`training.train.short_run_validation`).
        prepare: "module:function", config -> its examples before any pipeline
            (the interface of `t2i.data.arrays.MnistCaptionsData`: `epoch(e)`,
            `validation`, `test`, `datasets(...)`), which the tf.data and the
            NumPy pipelines both take; "" when it has its own pipelines.
        pipelines: "module:function", (config, initial_epoch) -> (config,
            tokenizer, `Datasets`), for a dataset with its own (COCO: tf.data
            only); "" otherwise.
        held_out_captions: "module:function", config -> one caption per
            held-out composition; "" for none.
        seen_examples: "module:function", config -> captions of compositions
            seen in training, for the demo and figures; "" for none.
        swap_groups: "module:attribute", a tuple of `WordGroup`s: the words that
            same-layout negatives (`t2i.samplers`) swap, each only within its own
            group (MNIST: the ten digits; scenes: colours, nouns); "" for none.
        reader: "module:class" built with `config.text` that reads the words a
            caption names back from an image with the model (`rejection`
            sampling); "" for none.
    """

    name: str
    image_shape: tuple[int, int, int] | None = None
    presets: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    min_caption_tokens: int = 1
    fresh_examples: bool = False
    prepare: str = ""
    pipelines: str = ""
    held_out_captions: str = ""
    seen_examples: str = ""
    swap_groups: str = ""
    reader: str = ""

    def load(self, field: str) -> Any:
        """The function or class that the "module:attribute" `field` names (None if empty)."""
        target = getattr(self, field)
        if not target:
            return None
        module, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module), attribute)


DIGITS = tuple(str(d) for d in range(10))
# The 22 words of MNIST with captions (docs/model.md §11), in the order of the
# original dictionary. Index 0 of the lookup is padding and index 1 the
# out-of-vocabulary token, so word ids are shifted by 2.
MNIST_CAPTION_WORDS: tuple[str, ...] = DIGITS + (
    "the", "digit", "is", "on", "at", "left", "right", "bottom", "top",
    "of", "image", ".",
)

DATASETS: dict[str, DatasetEntry] = {e.name: e for e in (
    DatasetEntry(
        name="mnist_captions", image_shape=(60, 60, 1), presets=("mnist_captions", "tiny"),
        words=MNIST_CAPTION_WORDS, min_caption_tokens=12, fresh_examples=True,
        prepare="t2i.data.arrays:prepare_mnist_captions",
        held_out_captions="t2i.data.mnist_captions:held_out_captions",
        seen_examples="t2i.data.mnist_captions:seen_examples",
        swap_groups="t2i.data.mnist_captions:SWAP_GROUPS", reader="t2i.samplers:DigitReader"),
    DatasetEntry(
        name="scenes", image_shape=(32, 32, 3), presets=("scenes_32", "scenes_tiny"),
        prepare="t2i.data.scenes.dataset:prepare_scenes",
        held_out_captions="t2i.data.scenes.sampler:held_out_captions",
        seen_examples="t2i.data.scenes.sampler:seen_examples",
        swap_groups="t2i.data.scenes.captions:SWAP_GROUPS"),
    DatasetEntry(name="coco", presets=("coco_32",), pipelines="t2i.data.coco:open_coco"),
)}


def dataset_of(config) -> DatasetEntry:
    """The `DatasetEntry` of a config's `data.dataset` (a validated config always has one)."""
    return DATASETS[config.data.dataset]


def held_out_captions(config) -> list[str]:
    """One caption per held-out composition of a run, in its dataset's words: "the digit 2
    is on the left of the digit 9 ." (MNIST with captions), "a stop sign flying in blue
    skies" (scenes); none for COCO."""
    captions = dataset_of(config).load("held_out_captions")
    return list(captions(config)) if captions else []


def example_captions(config) -> tuple[list[str], list[str]]:
    """(seen, held-out) example captions of a run, for the demo and sample figures:
    compositions in and out of training; ([], []) for COCO."""
    seen = dataset_of(config).load("seen_examples")
    return (list(seen(config)) if seen else []), held_out_captions(config)
