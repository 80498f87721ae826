"""A COCO source's splits, before any pipeline: captions, image rows, files or pixels."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from t2i.config import ExperimentConfig

SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class CocoSplit:
    """One split: its images and its (caption, image) examples.

    Attributes:
        name: "train", "validation" or "test".
        image_ids: int64 [M], COCO image ids (npy source: row numbers).
        files: M image paths (json source), else None.
        file_bytes: int64 [M] file sizes (json source), else None.
        pixels: uint8 [M, H, W, 3] when the images are in memory (npy
            source, the cache, or decoded validation/test images), else None.
        captions: object [N], caption strings.
        cap2im: int64 [N], the image row of each caption.
        lengths: int64 [N], token counts (`caption_length`).
    """

    name: str
    image_ids: np.ndarray
    files: tuple[str, ...] | None
    file_bytes: np.ndarray | None
    pixels: np.ndarray | None
    captions: np.ndarray
    cap2im: np.ndarray
    lengths: np.ndarray

    @property
    def num_images(self) -> int:
        return len(self.image_ids)

    def keep_captions(self, keep: np.ndarray) -> "CocoSplit":
        """The split with only the captions where `keep` (bool [N]) holds."""
        return dataclasses.replace(self, captions=self.captions[keep], cap2im=self.cap2im[keep],
                                   lengths=self.lengths[keep])

    def keep_images(self, keep: np.ndarray) -> "CocoSplit":
        """The split with only the images where `keep` (bool [M]) holds, and their captions."""
        keep = np.asarray(keep, bool)
        new_row = np.cumsum(keep) - 1
        kept_captions = keep[self.cap2im]
        return dataclasses.replace(
            self, image_ids=self.image_ids[keep],
            files=None if self.files is None else tuple(f for f, k in zip(self.files, keep) if k),
            file_bytes=None if self.file_bytes is None else self.file_bytes[keep],
            pixels=None if self.pixels is None else self.pixels[keep],
            captions=self.captions[kept_captions], cap2im=new_row[self.cap2im[kept_captions]],
            lengths=self.lengths[kept_captions])


@dataclasses.dataclass
class CocoData:
    """The three splits of a COCO source, before any pipeline.

    Attributes:
        splits: {"train", "validation", "test"} -> `CocoSplit`.
        source: e.g. "coco json: /data/coco".
        root: the COCO directory.
        report: skips so far, {kind: {"count", "examples"[, "captions"]}}
            with a kind for every entry of `SKIPS`.
        stats: counts for information (images and captions per split,
            captions beyond the first 5, unused val2014 images, ...).
    """

    splits: dict
    source: str
    root: Path
    report: dict
    stats: dict


def length_filtered(split: CocoSplit, config: ExperimentConfig) -> CocoSplit:
    """The training length filter: `data.coco.min_caption_length` <= tokens < `data.coco.max_train_caption_length`."""
    d = config.data
    return split.keep_captions((split.lengths >= d.coco.min_caption_length)
                               & (split.lengths < d.coco.max_train_caption_length))
