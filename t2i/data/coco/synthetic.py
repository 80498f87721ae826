"""Tiny Microsoft COCO look-alikes on disk: try the COCO pipeline without COCO (tests, benchmarks).

`make_coco_fixture(root)` writes the official layout (`annotations/captions_
{train,val}2014.json`, `train2014/*.jpg`, `val2014/*.jpg`): every image is a
flat background of a named colour with a white shape in the middle, and
its captions name that colour and shape, so a test can check that an image
and its caption belong together by looking at the pixels. Images come in
several sizes and aspect ratios, one of them a greyscale ('L') JPEG, and
some have 6 or 7 captions whose extra ones (higher annotation ids, written
first in the file) must never be used. Bad cases are planted on request.

`write_split_file` adds a Karpathy-style `dataset_coco.json`;
`make_npy_fixture` writes the authors' preprocessed `.npy` layout.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {
    "red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 40, 220), "yellow": (235, 220, 40),
    "purple": (130, 40, 170), "orange": (245, 140, 20), "cyan": (40, 200, 210), "pink": (240, 120, 180),
}
GREY = ("gray", (128, 128, 128))
SHAPES = ("square", "circle", "triangle")
# (width, height): square, wide, tall, small, big (decoded at 1/4 scale), odd sizes.
SIZES = ((64, 64), (96, 72), (120, 48), (40, 40), (256, 256), (50, 70), (33, 33), (128, 96))
EXTRA_WORDS = ("zebra", "giraffe")  # only in captions beyond the first five
GREY_INDEX = 3  # train2014 image 3 and the last val2014 image are greyscale JPEGs


@dataclasses.dataclass
class FixtureImage:
    """One image of the fixture and the truth about it."""

    image_id: int
    folder: str  # "train2014" or "val2014"
    file: str  # relative to the root
    colour: str
    rgb: tuple
    shape: str
    size: tuple  # (width, height)
    mode: str  # "RGB" or "L"
    captions: list  # in annotation-id order, the extra ones (beyond 5) last
    annotation_ids: list


@dataclasses.dataclass
class CocoFixture:
    root: Path
    images: list

    def in_folder(self, folder: str) -> list:
        return sorted((im for im in self.images if im.folder == folder), key=lambda im: im.image_id)

    def by_id(self, image_id: int) -> FixtureImage:
        return next(im for im in self.images if im.image_id == image_id)


def captions_for(colour: str, shape: str, index: int) -> list[str]:
    """The five captions of an image (token counts 7, 10/11, 6, 36, 10) and two extra ones."""
    size = ("small", "big", "")[index % 3]
    return [
        f"a {shape} on a {colour} background .",
        f"A {size + ' ' if size else ''}white {shape.upper()} in the middle of a {colour} picture",
        f"{colour.capitalize()} background, white {shape}.",
        f"this is a very simple picture that shows one white {shape} drawn right in the middle of an "
        f"otherwise completely empty and flat {colour} background with nothing else in it at all , "
        "really nothing .",
        f"the {shape} is white and the background is {colour} .",
        f"a {EXTRA_WORDS[0]} caption that must never be used .",
        f"a {EXTRA_WORDS[1]} too .",
    ]


def draw_image(rgb, shape: str, size, mode: str = "RGB", noise: float = 0.0,
               rng: np.random.Generator | None = None) -> Image.Image:
    """A flat background with a white shape over the middle 40%."""
    w, h = size
    image = Image.new("RGB", size, tuple(rgb))
    draw = ImageDraw.Draw(image)
    box = (int(w * 0.3), int(h * 0.3), int(w * 0.7) - 1, int(h * 0.7) - 1)
    if shape == "square":
        draw.rectangle(box, fill=(255, 255, 255))
    elif shape == "circle":
        draw.ellipse(box, fill=(255, 255, 255))
    else:
        apex = ((box[0] + box[2]) // 2, box[1])
        draw.polygon([(box[0], box[3]), (box[2], box[3]), apex], fill=(255, 255, 255))
    if noise:
        a = np.asarray(image, np.float32) + (rng or np.random.default_rng(0)).normal(0, noise, (h, w, 3))
        image = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    return image.convert("L") if mode == "L" else image


def make_coco_fixture(root, n_train: int = 24, n_val: int = 12, *, extra_captions: tuple = (1, 2, 5),
                      missing: tuple = (), corrupt: tuple = (), truncated: tuple = (),
                      empty_captions: tuple = (), sizes=SIZES, quality: int = 95,
                      noise: float = 0.0, seed: int = 0) -> CocoFixture:
    """Writes a COCO-layout fixture under `root`.

    Args:
        root: directory to write into (created).
        n_train, n_val: images in train2014 and val2014.
        extra_captions: train2014 image indices with 6 (odd index) or 7 (even
            index) captions instead of 5.
        missing: (folder, index) pairs whose JPEG is not written.
        corrupt: (folder, index) pairs whose file holds bytes that are not a JPEG.
        truncated: (folder, index) pairs whose JPEG is cut in half (a valid
            header, undecodable data).
        empty_captions: (folder, index, caption number) triples whose caption
            is blank.
        sizes: image sizes (width, height), used in turn.
        quality: JPEG quality.
        noise: standard deviation of Gaussian pixel noise (0: flat images);
            the benchmark uses it to make JPEGs that cost a realistic decode.
            Images of the same colour, shape, size and mode share one
            encoding, so large fixtures are quick to write.
        seed: seed of the noise and of the JSON order.

    Returns:
        A `CocoFixture` with the truth about every image.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    names = list(COLOURS)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    images = []
    next_annotation = 1
    encoded_cache = {}
    for folder, count, first_id, step in (("train2014", n_train, 9, 13), ("val2014", n_val, 10**9, 7)):
        (root / folder).mkdir(exist_ok=True)
        json_images, annotations = [], []
        for i in range(count):
            image_id = first_id + step * i
            grey = (folder == "train2014" and i == GREY_INDEX) or (folder == "val2014" and i == count - 1)
            colour, rgb = GREY if grey else (names[(i * 3 + (folder == "val2014")) % len(names)],
                                            COLOURS[names[(i * 3 + (folder == "val2014")) % len(names)]])
            shape = SHAPES[i % len(SHAPES)]
            size = sizes[i % len(sizes)]
            file = f"{folder}/COCO_{folder}_{image_id:012d}.jpg"
            caps = captions_for(colour, shape, i)
            n_caps = 5 + ((2 if i % 2 == 0 else 1) if folder == "train2014" and i in extra_captions else 0)
            caps = caps[:n_caps]
            for f, j, k in empty_captions:
                if (f, j) == (folder, i):
                    caps[k] = "   "
            # Annotation ids rise with the caption number; the JSON lists them shuffled.
            ids = list(range(next_annotation, next_annotation + n_caps))
            next_annotation += n_caps + 3
            annotations += [{"id": a, "image_id": image_id, "caption": c} for a, c in zip(ids, caps)]
            images.append(FixtureImage(image_id, folder, file, colour, rgb, shape, size, "L" if grey else "RGB",
                                       caps, ids))
            json_images.append({"id": image_id, "file_name": Path(file).name, "width": size[0],
                                "height": size[1], "license": 1})
            if (folder, i) in missing:
                continue
            path = root / file
            if (folder, i) in corrupt:
                path.write_bytes(b"GIF89a this is not a JPEG " + rng.bytes(200))
                continue
            key = (colour, shape, size, grey)  # images that look alike share their JPEG bytes
            data = encoded_cache.get(key)
            if data is None:
                image = draw_image(rgb, shape, size, "L" if grey else "RGB", noise, rng)
                buf = io.BytesIO()
                image.save(buf, format="JPEG", quality=quality)
                data = encoded_cache[key] = buf.getvalue()
            path.write_bytes(data[:len(data) // 2] if (folder, i) in truncated else data)
        order = rng.permutation(len(annotations))
        doc = {"info": {"description": "t2i COCO fixture"}, "images": json_images[::-1],
               "annotations": [annotations[j] for j in order]}
        (root / f"annotations/captions_{folder}.json").write_text(json.dumps(doc))
    return CocoFixture(root=root, images=images)


def write_split_file(fixture: CocoFixture, path=None, n_val: int = 4, n_test: int = 4) -> Path:
    """A Karpathy-style `dataset_coco.json`: train2014 -> "train"; val2014 by id: first
    `n_val` "val", next `n_test` "test", the rest "restval"."""
    path = Path(path) if path else fixture.root / "dataset_coco.json"
    entries = []
    for folder in ("train2014", "val2014"):
        for j, im in enumerate(fixture.in_folder(folder)):
            split = "train" if folder == "train2014" else (
                "val" if j < n_val else "test" if j < n_val + n_test else "restval")
            entries.append({"filepath": folder, "filename": Path(im.file).name, "split": split,
                            "cocoid": im.image_id, "imgid": len(entries),
                            "sentences": [{"raw": c, "tokens": c.split()} for c in im.captions]})
    path.write_text(json.dumps({"images": entries[::-1], "dataset": "coco"}))
    return path


def make_npy_fixture(root, counts=(10, 4, 4), seed: int = 0) -> dict:
    """Writes the authors' preprocessed layout; returns the truth per split.

    Word index 0 is the word "the", as in a dictionary that numbers words
    from 0, so a caption read past its length would gain "the"s.
    The dictionary pickle has bytes keys, like a Python 2 pickle read back.

    Returns:
        {"train" | "validation" | "test": {"captions": [str], "cap2im": int [C],
        "images": uint8 [N, 32, 32, 3]}}.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    words = ["the", ".", "a", "red", "blue", "cat", "dog", "sits", "on", "mat", "table", "UNK", "big", "small"]
    with open(root / "dictionary.pkl", "wb") as f:
        pickle.dump({w.encode(): i for i, w in enumerate(words)}, f, protocol=2)
    truth = {}
    for name, prefix, n in zip(("train", "validation", "test"), ("train", "dev", "test"), counts):
        pixels = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        channel_major = np.transpose(pixels, (0, 3, 1, 2)).reshape(n, 3072).astype(np.float32) / 255.0
        np.save(root / f"{prefix}-images-32x32.npy", channel_major)
        cap2im = np.repeat(np.arange(n), 2)
        lengths = rng.integers(3, 12, len(cap2im))
        lengths[0] = 8
        matrix = np.zeros((len(cap2im), 14), np.int64)
        for r, length in enumerate(lengths):
            matrix[r, :length] = rng.integers(0, len(words), length)
        np.save(root / f"{prefix}-captions.npy", matrix)
        np.save(root / f"{prefix}-captions-len.npy", np.stack([np.arange(len(cap2im)), lengths], 1))
        np.save(root / f"{prefix}-cap2im.npy", cap2im)
        captions = [" ".join(words[t] for t in row[:length]) for row, length in zip(matrix, lengths)]
        truth[name] = {"captions": captions,
                       "cap2im": cap2im, "images": pixels}
    return truth
