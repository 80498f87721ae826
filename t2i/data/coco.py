"""Microsoft COCO captions at 32x32 (spec 9.2): files -> tf.data pipelines.

`make_coco_datasets(config, tokenizer)` builds the same kind of pipelines as
the MNIST one (`t2i.data.pipeline`): every element is a dict
{"images": float32 [B, H, W, 3] in [0, 1], "tokens": int64 [B, L]} (0 pads),
with H x W the model's image size (32 x 32 for `coco_32`).

Sources (`data.coco_source`):

* "json": the official release under `data.coco_root`:
  `annotations/captions_train2014.json`, `annotations/captions_val2014.json`
  ({"images": [{"id", "file_name", ...}], "annotations": [{"id",
  "image_id", "caption"}, ...]}) and the JPEG folders `train2014/`,
  `val2014/`. Images are decoded and resized inside tf.data
  (`decode_image`); `data.coco_cache` keeps them once as uint8 `.npy` files.
* "npy": the authors' preprocessed files under `data.coco_root`:
  `{train,dev,test}-images-32x32.npy` (N x 3072, channel-major, floats in
  [0, 1]), `{split}-captions.npy` (padded word-index matrix),
  `{split}-captions-len.npy` (last column: the length), `{split}-cap2im.npy`
  (caption -> image row) and `dictionary.pkl` (word -> index). Their word
  indices are turned back into strings through the inverted dictionary, so
  the rest is the same string + image pipeline (their "UNK" becomes the
  ordinary word "unk"; lengths are recounted with our tokenisation). "dev"
  is the validation split; `coco_captions_per_image` does not apply (the
  authors already chose 5 per image).

Examples and splits (json source):

* One example per (caption, image) pair, with the first
  `data.coco_captions_per_image` (5) captions of each image, "first" meaning
  the lowest annotation ids (the paper's "first 5 captions"; COCO lists
  some images with 6 or 7). A caption without words among them is skipped
  and reported, not replaced by the 6th. Images are ordered by id, their
  captions by annotation id, whatever the order inside the JSON.
* Without `data.coco_split_file`: train2014 is the training split; val2014,
  sorted by image id, gives its first `coco_validation_images` (5000) images
  to validation and the next `coco_test_images` (5000) to test; the rest of
  val2014 is not used (the paper trains on the 82,783 train2014 images).
  The split is decided on the JSON's image lists, so a missing file never
  moves an image from one split to another.
* With a Karpathy-style split file (`dataset_coco.json`: {"images":
  [{"filepath", "filename", "split", "cocoid", "sentences": [{"raw"}]}]}):
  "train" and "restval" images train, "val" validates, "test" tests.
  Captions come from the official JSONs (same first-5 rule); only if
  neither of them exists are the split file's "raw" sentences used, the
  first 5 in listed order.

Training (spec section 8):

* keeps captions with `data.min_caption_length` <= tokens <
  `data.max_train_caption_length` (7 <= len < 30, as the original code);
  validation and test keep every length up to `text.max_caption_length`
  (longer ones are skipped and reported).
* `BatchPlan` draws each epoch with `np.random.default_rng([data.seed, e])`:
  with `data.bucketing`, captions are grouped by exact token length,
  shuffled within each bucket, and each batch comes from a bucket picked
  uniformly at random among those not yet exhausted (its next <=
  `train.batch_size` captions); without bucketing, one shuffled pass in
  batches padded to the longest caption. Either way an epoch is one pass
  over the examples, so it has a fixed number of batches
  (`steps_per_epoch`); a nonzero `train.steps_per_epoch` instead takes the
  first that many batches of passes drawn with [seed, e], [seed, e, 1], ...
* the stream is endless over epochs `initial_epoch`, `initial_epoch + 1`,
  ...; batches never straddle epochs, so with `model.fit(train,
  steps_per_epoch=steps_per_epoch, initial_epoch=e)` Keras epoch e sees data
  epoch e, and a resumed run sees the same batches as an uninterrupted one.

Vocabulary: `build_vocabulary` counts the tokens of the training captions
(`t2i.text_numpy.normalize` + whitespace split, the tokens the in-graph
`CaptionTokenizer` produces); `resolve_coco_config(config)` fills an empty
`text.vocabulary` with it, and the run's config.json stores the result.

Bad input never leaves a silent hole. A missing or malformed JSON, pickle or
`.npy` is a `T2IError` naming the file and the problem. Image files that do
not exist, that are not JPEGs, or that fail to decode; captions without words;
captions of unknown images; over-long validation/test captions: these are
skipped, counted in `CocoDatasets.report` (with a few examples) and announced
by a `t2i: warning: COCO: ...` line on stderr. Without a cache, training
JPEGs are checked for existence and a JPEG header before training, but a file
damaged further in (e.g. truncated) is only found when the stream decodes
it, which then stops with TensorFlow's "Invalid JPEG data" error; with
`data.coco_cache` (or `build_cache`), every image is fully decoded once
up front and such files are skipped and reported.

Example:

    config = resolve_coco_config(config)          # fills text.vocabulary
    tokenizer = CaptionTokenizer(config.text)
    data = make_coco_datasets(config, tokenizer)
    model.fit(data.train, steps_per_epoch=data.steps_per_epoch,
              validation_data=data.validation, epochs=config.train.epochs)
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import hashlib
import json
import os
import pickle
import re
import stat
import sys
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import tensorflow as tf

from t2i.config import ExperimentConfig
from t2i.data.pipeline import MAX_EPOCHS, deterministic
from t2i.errors import T2IError
from t2i.text_numpy import normalize

SPLITS = ("train", "validation", "test")
CAPTION_FILES = {"train2014": "annotations/captions_train2014.json",
                 "val2014": "annotations/captions_val2014.json"}
NPY_SPLITS = {"train": "train", "validation": "dev", "test": "test"}
NPY_SIZE = 32
_SPLIT_FILE_SPLITS = {"train": "train", "restval": "train", "val": "validation", "test": "test"}
_CACHE_VERSION = 1  # bump when decode_image changes: old cache files are then ignored
_EXAMPLES = 5  # examples kept per report entry
_JPEG_MAGIC = b"\xff\xd8\xff"

# Report kinds: each is a skip, counted with a few examples and announced on stderr.
SKIPS = {
    "missing_images": "image file(s) that do not exist, with their captions",
    "unreadable_images": "image file(s) that cannot be decoded as JPEG, with their captions",
    "empty_captions": "caption(s) without any word",
    "unknown_image_captions": "caption(s) whose image_id is not among the file's images",
    "split_file_unmatched": "split-file image(s) that have no entry in the COCO captions files",
    "long_captions": "validation/test caption(s) longer than text.max_caption_length tokens",
}


# === Vocabulary ===

def caption_length(caption: str) -> int:
    """Number of tokens of a caption, as the in-graph tokenizer splits it."""
    return len(normalize(caption).split())


def build_vocabulary(captions: Iterable[str], min_count: int = 1) -> tuple[str, ...]:
    """The vocabulary of `captions`: words seen at least `min_count` times.

    Words are the tokens of `t2i.text_numpy.normalize` + whitespace split,
    i.e. the tokens the in-graph `CaptionTokenizer` looks up; rarer words map
    to the OOV token at lookup time.

    Args:
        captions: caption strings.
        min_count: the smallest number of occurrences a word needs.

    Returns:
        The words, by descending count, ties in alphabetical order.
    """
    if min_count < 1:
        raise T2IError(f"min_count must be >= 1, got {min_count}")
    counts = collections.Counter()
    for caption in captions:
        counts.update(normalize(caption).split())
    kept = [(-n, w) for w, n in counts.items() if n >= min_count]
    return tuple(w for _, w in sorted(kept))


def resolve_coco_config(config: ExperimentConfig) -> ExperimentConfig:
    """Returns `config` with `text.vocabulary` built from the training captions.

    The vocabulary counts the captions that training uses: the training
    split's first `data.coco_captions_per_image` captions per (existing)
    image, filtered to `data.min_caption_length` <= tokens <
    `data.max_train_caption_length`; words seen fewer than
    `data.min_word_count` times are left out (they map to the OOV token).
    A config that already has a vocabulary, or whose dataset is not "coco",
    is returned unchanged, so this can be called on every config.

    Raises:
        T2IError: unreadable COCO files, or no training caption at all.
    """
    if config.data.dataset != "coco" or config.text.vocabulary:
        return config
    data = load_coco(config)
    train = _length_filtered(data.splits["train"], config)
    vocabulary = build_vocabulary(train.captions, config.data.min_word_count)
    if not vocabulary:
        raise T2IError(f"{data.source}: no training caption has a word seen "
                       f"{config.data.min_word_count} times (data.min_word_count)")
    return config.override({"text.vocabulary": vocabulary})


# === Images ===

def decode_image(path, height: int, width: int, fit: str = "squash") -> tf.Tensor:
    """Reads a JPEG file and resizes it: a graph function, for tf.data.

    * `tf.io.decode_jpeg(channels=3)`: greyscale JPEGs become RGB (three
      equal channels). The DCT is "INTEGER_ACCURATE" (libjpeg's islow, the
      same pixels as Pillow) rather than TensorFlow's fast default.
    * Big images are decoded at 1/2, 1/4 or 1/8 scale by libjpeg (the
      largest factor that still leaves at least twice the output size in
      both directions), which is a low-pass reduction and cheaper than a full
      decode.
    * `fit` "squash" resizes the whole image to height x width, ignoring the
      aspect ratio, so that everything a caption mentions stays in view;
      "center_crop" first cuts the largest centred square (undistorted, but
      it can cut off objects near the edges).
    * The resize is area averaging (`method="area"`): a COCO image (640 x
      480) shrinks by a factor of 5 to 20, and bilinear or bicubic sampling
      without antialiasing would only read a few source pixels per output
      pixel and alias. For an exact integer factor it is the box average.
    * Rounded to uint8, so that the JPEG path and the cache give identical
      pixels.

    Args:
        path: scalar string tensor, the file.
        height, width: output size.
        fit: "squash" or "center_crop".

    Returns:
        uint8 [height, width, 3].
    """
    if fit not in ("squash", "center_crop"):
        raise T2IError(f"fit must be 'squash' or 'center_crop', got {fit!r}")
    data = tf.io.read_file(path)
    shape = tf.image.extract_jpeg_shape(data)
    src_h, src_w = shape[0], shape[1]
    if fit == "center_crop":
        src_h = src_w = tf.minimum(src_h, src_w)
    # Number of DCT scalings (2, 4, 8) that keep >= 2x the output size.
    scale = tf.add_n([tf.cast((src_h >= 2 * r * height) & (src_w >= 2 * r * width), tf.int32)
                      for r in (2, 4, 8)])

    def decode(ratio):
        return lambda: tf.io.decode_jpeg(data, channels=3, ratio=ratio, dct_method="INTEGER_ACCURATE")

    image = tf.switch_case(scale, [decode(1), decode(2), decode(4), decode(8)])
    if fit == "center_crop":
        h, w = tf.shape(image)[0], tf.shape(image)[1]
        side = tf.minimum(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        image = image[top:top + side, left:left + side]
    image = tf.image.resize(image, [height, width], method="area")  # float32
    return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)


def decode_files(files: Sequence[str], height: int, width: int, fit: str = "squash"):
    """Decodes many JPEGs in parallel with `decode_image`, without stopping at bad ones.

    Args:
        files: image paths.
        height, width, fit: as in `decode_image`.

    Returns:
        (pixels, ok, errors): uint8 [M, height, width, 3] (zeros where
        decoding failed), bool [M], and {row: error message} for the first
        few failed rows.
    """
    m = len(files)
    pixels = np.zeros((m, height, width, 3), np.uint8)
    ok = np.zeros(m, bool)
    if m:
        ds = (tf.data.Dataset.from_tensor_slices((np.arange(m, dtype=np.int64), np.asarray(files, object)))
              .map(lambda i, f: (i, decode_image(f, height, width, fit)),
                   num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
              .ignore_errors()
              .batch(256)
              .prefetch(2))
        for rows, images in ds.as_numpy_iterator():
            pixels[rows] = images
            ok[rows] = True
    errors = {}
    for row in np.flatnonzero(~ok)[:_EXAMPLES]:
        try:
            decode_image(tf.constant(files[row]), height, width, fit)
            errors[int(row)] = "decoding failed"
        except (tf.errors.OpError, ValueError) as e:
            errors[int(row)] = _first_line(getattr(e, "message", str(e)))
    return pixels, ok, errors


# === Splits ===

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


def load_coco(config: ExperimentConfig) -> CocoData:
    """Reads captions and image lists of `config.data` (no image is decoded).

    The result is kept for the next call with the same files and settings
    (within one process), so `resolve_coco_config` followed by
    `make_coco_datasets` reads the files and warns about skips once.

    Raises:
        T2IError: `data.coco_root` unset or missing, a missing or malformed
            JSON / pickle / `.npy` file, a split without examples.
    """
    d = config.data
    if not d.coco_root:
        raise T2IError("data.coco_root is not set: give the COCO directory, e.g. --data.coco_root /data/coco")
    root = Path(d.coco_root).expanduser()
    if not root.is_dir():
        raise T2IError(f"data.coco_root {root}: no such directory")
    key = (str(root.resolve()), d.coco_source, d.coco_split_file, d.coco_captions_per_image,
           d.coco_validation_images, d.coco_test_images, _fingerprint(root, d))
    if _LOADED.get("key") != key:
        data = _load_npy(root) if d.coco_source == "npy" else _load_json(root, d)
        for split in data.splits.values():
            if not len(split.captions):
                raise T2IError(f"{data.source}: the {split.name} split has no usable captions")
        data.stats["images"] = {n: s.num_images for n, s in data.splits.items()}
        data.stats["captions"] = {n: len(s.captions) for n, s in data.splits.items()}
        _warn(data.report, SKIPS)
        _LOADED.clear()
        _LOADED.update(key=key, data=data)
    data = _LOADED["data"]
    return dataclasses.replace(data, splits=dict(data.splits), report=copy.deepcopy(data.report),
                               stats=copy.deepcopy(data.stats))


_LOADED: dict = {}


def _fingerprint(root: Path, d) -> tuple:
    names = ([f"{NPY_SPLITS[s]}-{k}.npy" for s in SPLITS for k in ("images-32x32", "captions", "captions-len",
                                                                      "cap2im")] + ["dictionary.pkl"]
             if d.coco_source == "npy" else list(CAPTION_FILES.values()) + [d.coco_split_file])
    out = []
    for name in names:
        try:
            st = (root / name).stat() if name else None
            out.append((name, st and st.st_mtime_ns, st and st.st_size))
        except OSError:
            out.append((name, None, None))
    return tuple(out)


def _new_report() -> dict:
    return {kind: {"count": 0, "examples": []} for kind in SKIPS}


def _skip(report: dict, kind: str, example: str, count: int = 1) -> None:
    entry = report[kind]
    entry["count"] += count
    if len(entry["examples"]) < _EXAMPLES:
        entry["examples"].append(example)


def _warn(report: dict, kinds: Iterable[str]) -> None:
    for kind in kinds:
        entry = report[kind]
        if entry["count"]:
            more = f" ({entry['captions']} captions)" if "captions" in entry else ""
            print(f"t2i: warning: COCO: skipped {entry['count']} {SKIPS[kind]}{more} "
                  f"(e.g. {', '.join(entry['examples'][:3])}); see the datasets' report",
                  file=sys.stderr)


def _first_line(text: str) -> str:
    """The gist of a TensorFlow error: first line, without the node name and op tag."""
    text = re.sub(r"\{\{[^}]*\}\}|\[Op:[^\]]*\].*", "", text).strip()
    return text.splitlines()[0][:200] if text else "unknown error"


def _read_json(path: Path, what: str):
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except FileNotFoundError:
        raise T2IError(f"COCO {what} {path}: no such file") from None
    except IsADirectoryError:
        raise T2IError(f"COCO {what} {path}: is a directory, not a JSON file") from None
    except OSError as e:
        raise T2IError(f"COCO {what} {path}: cannot be read ({e.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise T2IError(f"COCO {what} {path}: not valid JSON ({e})") from None


def _read_captions_file(path: Path):
    """(images {id: file_name}, annotations [(annotation id, image id, caption)])."""
    d = _read_json(path, "captions file")
    if not (isinstance(d, dict) and isinstance(d.get("images"), list)
            and isinstance(d.get("annotations"), list)):
        raise T2IError(f"COCO captions file {path}: expected an object with the lists \"images\" "
                       "and \"annotations\"")
    images = {}
    for i, im in enumerate(d["images"]):
        if not (isinstance(im, dict) and _is_int(im.get("id")) and isinstance(im.get("file_name"), str)):
            raise T2IError(f"COCO captions file {path}: images[{i}] needs an integer \"id\" and a "
                           "string \"file_name\"")
        if im["id"] in images:
            raise T2IError(f"COCO captions file {path}: image id {im['id']} appears twice")
        images[im["id"]] = im["file_name"]
    annotations = []
    for i, a in enumerate(d["annotations"]):
        if not (isinstance(a, dict) and _is_int(a.get("id")) and _is_int(a.get("image_id"))
                and isinstance(a.get("caption"), str)):
            raise T2IError(f"COCO captions file {path}: annotations[{i}] needs integer \"id\" and "
                           "\"image_id\" and a string \"caption\"")
        annotations.append((a["id"], a["image_id"], a["caption"]))
    return images, annotations


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _first_captions(annotations, images, k: int, report: dict, stats: dict, where: str) -> dict:
    """{image id: its first `k` captions by annotation id, those with words}."""
    by_image = collections.defaultdict(list)
    for ann_id, image_id, caption in annotations:
        if image_id in images:
            by_image[image_id].append((ann_id, caption))
        else:
            _skip(report, "unknown_image_captions", f"{where} annotation {ann_id} (image_id {image_id})")
    out = {}
    for image_id, caps in by_image.items():
        caps.sort(key=lambda c: c[0])
        stats["captions_beyond_first"] = stats.get("captions_beyond_first", 0) + max(0, len(caps) - k)
        kept = []
        for ann_id, caption in caps[:k]:
            if normalize(caption).split():
                kept.append(caption)
            else:
                _skip(report, "empty_captions", f"{where} annotation {ann_id} {caption!r}")
        out[image_id] = kept
    return out


def _make_split(name: str, root: Path, entries, report: dict, stats: dict) -> CocoSplit:
    """Builds a split from [(image id, relative path, captions)], checking that files exist."""
    ids, files, sizes, captions, cap2im = [], [], [], [], []
    no_captions = 0
    for image_id, rel, caps in entries:
        if not caps:
            no_captions += 1
            continue
        path = root / rel
        try:
            st = path.stat()
            if not stat.S_ISREG(st.st_mode):
                raise FileNotFoundError(path)
        except OSError:
            _skip(report, "missing_images", rel)
            report["missing_images"]["captions"] = report["missing_images"].get("captions", 0) + len(caps)
            continue
        row = len(ids)
        ids.append(image_id)
        files.append(str(path))
        sizes.append(st.st_size)
        captions.extend(caps)
        cap2im.extend([row] * len(caps))
    stats["images_without_captions"] = stats.get("images_without_captions", 0) + no_captions
    captions = np.array(captions, dtype=object)
    return CocoSplit(name=name, image_ids=np.array(ids, np.int64), files=tuple(files),
                     file_bytes=np.array(sizes, np.int64), pixels=None, captions=captions,
                     cap2im=np.array(cap2im, np.int64),
                     lengths=np.array([caption_length(c) for c in captions], np.int64))


def _load_json(root: Path, d) -> CocoData:
    report, stats = _new_report(), {}
    k = d.coco_captions_per_image
    split_path = None
    if d.coco_split_file:
        split_path = Path(d.coco_split_file).expanduser()
        split_path = split_path if split_path.is_absolute() else root / split_path
    official = {folder: root / rel for folder, rel in CAPTION_FILES.items()}
    use_sentences = split_path is not None and not any(p.exists() for p in official.values())

    if use_sentences:
        entries_by_split = _split_file_entries(split_path, None, k, report, stats)
        source = f"coco json: {root} (captions and split from {split_path})"
    else:
        images, captions = {}, {}
        for folder, path in official.items():
            imgs, anns = _read_captions_file(path)
            clash = set(imgs) & set(images)
            if clash:
                raise T2IError(f"COCO captions file {path}: image id {min(clash)} is also in the other "
                               "captions file")
            caps = _first_captions(anns, imgs, k, report, stats, path.name)
            for image_id, name in imgs.items():
                images[image_id] = (folder, f"{folder}/{name}")
                captions[image_id] = caps.get(image_id, [])
        if split_path is not None:
            entries_by_split = _split_file_entries(split_path, (images, captions), k, report, stats)
            source = f"coco json: {root} (split from {split_path})"
        else:
            entries_by_split = _default_split(images, captions, d, stats)
            source = f"coco json: {root}"
    splits = {name: _make_split(name, root, entries_by_split[name], report, stats) for name in SPLITS}
    return CocoData(splits=splits, source=source, root=root, report=report, stats=stats)


def _default_split(images, captions, d, stats) -> dict:
    train = sorted(i for i, (folder, _) in images.items() if folder == "train2014")
    val = sorted(i for i, (folder, _) in images.items() if folder == "val2014")
    nv, nt = d.coco_validation_images, d.coco_test_images
    if len(val) < nv + nt:
        raise T2IError(f"{CAPTION_FILES['val2014']} lists {len(val)} images, fewer than "
                       f"data.coco_validation_images + data.coco_test_images = {nv} + {nt}")
    stats["val2014_images_unused"] = len(val) - nv - nt

    def entries(ids):
        return [(i, images[i][1], captions[i]) for i in ids]

    return {"train": entries(train), "validation": entries(val[:nv]), "test": entries(val[nv:nv + nt])}


def _split_file_entries(path: Path, official, k: int, report: dict, stats: dict) -> dict:
    d = _read_json(path, "split file")
    if not (isinstance(d, dict) and isinstance(d.get("images"), list)):
        raise T2IError(f"COCO split file {path}: expected an object with the list \"images\"")
    out = {name: [] for name in SPLITS}
    listed = set()
    for i, im in enumerate(d["images"]):
        if not (isinstance(im, dict) and _is_int(im.get("cocoid")) and isinstance(im.get("split"), str)
                and im["split"] in _SPLIT_FILE_SPLITS):
            raise T2IError(f"COCO split file {path}: images[{i}] needs an integer \"cocoid\" and a "
                           f"\"split\" among {sorted(_SPLIT_FILE_SPLITS)}")
        image_id = im["cocoid"]
        if image_id in listed:
            raise T2IError(f"COCO split file {path}: cocoid {image_id} appears twice")
        listed.add(image_id)
        rel = None
        if isinstance(im.get("filename"), str):
            rel = f"{im['filepath']}/{im['filename']}" if isinstance(im.get("filepath"), str) else im["filename"]
        if official is None:
            sentences = im.get("sentences")
            if rel is None or not isinstance(sentences, list) or not all(
                    isinstance(s, dict) and isinstance(s.get("raw"), str) for s in sentences):
                raise T2IError(f"COCO split file {path}: images[{i}] needs \"filepath\", \"filename\" and "
                               "\"sentences\" with \"raw\" text (there are no COCO captions files to "
                               "take them from)")
            stats["captions_beyond_first"] = stats.get("captions_beyond_first", 0) + max(0, len(sentences) - k)
            caps = []
            for j, s in enumerate(sentences[:k]):
                if normalize(s["raw"]).split():
                    caps.append(s["raw"])
                else:
                    _skip(report, "empty_captions", f"{path.name} cocoid {image_id} sentence {j}")
        else:
            images, captions = official
            if image_id not in images:
                _skip(report, "split_file_unmatched", f"cocoid {image_id}")
                continue
            rel = rel or images[image_id][1]
            caps = captions[image_id]
        out[_SPLIT_FILE_SPLITS[im["split"]]].append((image_id, rel, caps))
    if official is not None:
        stats["images_not_in_split_file"] = len(set(official[0]) - listed)
    for name in SPLITS:
        out[name].sort(key=lambda e: e[0])
    return out


def _load_npy(root: Path) -> CocoData:
    report, stats = _new_report(), {}
    dictionary_path = root / "dictionary.pkl"
    try:
        with open(dictionary_path, "rb") as f:
            dictionary = pickle.load(f, encoding="latin1")  # the authors' files are Python 2 pickles
    except FileNotFoundError:
        raise T2IError(f"COCO dictionary {dictionary_path}: no such file") from None
    except Exception as e:  # UnpicklingError, EOFError, ...
        raise T2IError(f"COCO dictionary {dictionary_path}: cannot be unpickled "
                       f"({type(e).__name__}: {e})") from None
    if not isinstance(dictionary, dict):
        raise T2IError(f"COCO dictionary {dictionary_path}: expected a dict word -> index, "
                       f"got {type(dictionary).__name__}")
    words = {}
    for word, index in dictionary.items():
        if isinstance(word, bytes):
            word = word.decode("utf-8", errors="replace")
        if not isinstance(word, str) or not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise T2IError(f"COCO dictionary {dictionary_path}: entry {word!r}: {index!r} is not word -> index")
        words[int(index)] = word
    splits = {}
    for name, prefix in NPY_SPLITS.items():
        images = _load_array(root / f"{prefix}-images-32x32.npy")
        if images.ndim == 2 and images.shape[1] == 3 * NPY_SIZE * NPY_SIZE:
            images = images.reshape(-1, 3, NPY_SIZE, NPY_SIZE)
        if images.shape[1:] != (3, NPY_SIZE, NPY_SIZE):
            raise T2IError(f"COCO images {root / f'{prefix}-images-32x32.npy'}: shape {images.shape}; "
                           f"expected [N, {3 * NPY_SIZE * NPY_SIZE}] (channel-major 3 x 32 x 32)")
        pixels = _to_uint8(images, root / f"{prefix}-images-32x32.npy")
        matrix = _load_array(root / f"{prefix}-captions.npy")
        lens = _load_array(root / f"{prefix}-captions-len.npy")
        cap2im = _load_array(root / f"{prefix}-cap2im.npy")
        lens = lens[:, -1] if lens.ndim == 2 else lens
        cap2im = cap2im.reshape(len(cap2im), -1)[:, 0] if cap2im.ndim > 1 else cap2im
        n = len(matrix)
        if matrix.ndim != 2 or lens.shape != (n,) or cap2im.shape != (n,):
            raise T2IError(f"COCO {prefix} captions under {root}: captions {matrix.shape}, lengths "
                           f"{lens.shape}, cap2im {cap2im.shape} do not describe the same captions")
        if n and (cap2im.min() < 0 or cap2im.max() >= len(pixels)):
            raise T2IError(f"COCO {root / f'{prefix}-cap2im.npy'}: image rows outside 0..{len(pixels) - 1}")
        if n and (lens.min() < 0 or lens.max() > matrix.shape[1]):
            raise T2IError(f"COCO {root / f'{prefix}-captions-len.npy'}: lengths outside 0..{matrix.shape[1]}")
        captions, keep = [], np.ones(n, bool)
        for i, (row, length) in enumerate(zip(matrix, lens)):
            try:
                caption = " ".join(words[int(t)] for t in row[:int(length)])
            except KeyError as e:
                raise T2IError(f"COCO {root / f'{prefix}-captions.npy'}: caption {i} has word index "
                               f"{e.args[0]}, which is not in {dictionary_path.name}") from None
            if not normalize(caption).split():
                _skip(report, "empty_captions", f"{prefix} caption {i}")
                keep[i] = False
            captions.append(caption)
        captions = np.array(captions, dtype=object)
        split = CocoSplit(name=name, image_ids=np.arange(len(pixels), dtype=np.int64), files=None,
                          file_bytes=None, pixels=pixels, captions=captions,
                          cap2im=cap2im.astype(np.int64),
                          lengths=np.array([caption_length(c) for c in captions], np.int64))
        splits[name] = split.keep_captions(keep)
    return CocoData(splits=splits, source=f"coco npy: {root}", root=root, report=report, stats=stats)


def _load_array(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise T2IError(f"COCO array {path}: no such file") from None
    except Exception as e:  # not an .npy, pickled objects, truncated...
        raise T2IError(f"COCO array {path}: cannot be read as .npy ({type(e).__name__}: {e})") from None


def _to_uint8(images: np.ndarray, path: Path) -> np.ndarray:
    """[N, 3, 32, 32] floats in [0, 1] (or uint8) -> uint8 [N, 32, 32, 3], chunk by chunk."""
    out = np.empty((len(images), NPY_SIZE, NPY_SIZE, 3), np.uint8)
    if images.dtype == np.uint8:
        for s in range(0, len(images), 4096):
            out[s:s + 4096] = np.transpose(images[s:s + 4096], (0, 2, 3, 1))
        return out
    if not np.issubdtype(images.dtype, np.floating):
        raise T2IError(f"COCO images {path}: dtype {images.dtype}; expected floats in [0, 1] or uint8")
    for s in range(0, len(images), 4096):
        chunk = np.asarray(images[s:s + 4096], np.float32)
        if chunk.size and (not np.isfinite(chunk).all() or chunk.min() < 0.0 or chunk.max() > 1.0):
            raise T2IError(f"COCO images {path}: values outside [0, 1] (rows {s}..{s + len(chunk) - 1})")
        out[s:s + 4096] = np.transpose(np.round(chunk * 255.0), (0, 2, 3, 1)).astype(np.uint8)
    return out


# === Cache ===

def _cache_file(cache_dir: Path, split: CocoSplit, root: Path, height: int, width: int, fit: str) -> Path:
    """`<dir>/<split>-<H>x<W>-<fit>-<key>.npy`; the key hashes the image list, sizes and decoder."""
    rel = [os.path.relpath(f, root) for f in split.files]
    blob = json.dumps({"version": _CACHE_VERSION, "size": [height, width], "fit": fit,
                       "files": rel, "bytes": split.file_bytes.tolist()}).encode()
    key = hashlib.sha256(blob).hexdigest()[:16]
    return cache_dir / f"{split.name}-{height}x{width}-{fit}-{key}.npy"


def _cached_pixels(split: CocoSplit, root: Path, cache_dir: Path, height: int, width: int, fit: str):
    """(pixels, ok, errors, info): reuses the split's valid cache file or builds it."""
    path = _cache_file(cache_dir, split, root, height, width, fit)
    meta_path = path.with_suffix(".json")
    info = {"path": str(path)}
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("key") != path.stem:
            raise ValueError("stale")
        pixels = np.load(path, allow_pickle=False)
        if pixels.shape != (split.num_images, height, width, 3) or pixels.dtype != np.uint8:
            raise ValueError("stale")
        ok = np.ones(split.num_images, bool)
        ok[np.asarray(meta["unreadable"], np.int64)] = False
        errors = {int(k): v for k, v in meta.get("errors", {}).items()}
        info["status"] = "reused"
        return pixels, ok, errors, info
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        pass
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise T2IError(f"data.coco_cache {cache_dir}: cannot be created ({e.strerror})") from None
    pixels, ok, errors = decode_files(split.files, height, width, fit)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            np.save(f, pixels)
        os.replace(tmp, path)
        meta = {"key": path.stem, "split": split.name, "images": split.num_images,
                "unreadable": np.flatnonzero(~ok).tolist(), "errors": {str(k): v for k, v in errors.items()}}
        tmp_meta = meta_path.with_name(meta_path.name + f".tmp{os.getpid()}")
        tmp_meta.write_text(json.dumps(meta) + "\n")
        os.replace(tmp_meta, meta_path)  # written last: marks the .npy complete
    except OSError as e:
        raise T2IError(f"data.coco_cache {cache_dir}: cannot write {path.name} ({e.strerror})") from None
    info["status"] = "built"
    return pixels, ok, errors, info


def build_cache(config: ExperimentConfig) -> dict:
    """Builds (or checks) the uint8 image cache of every split.

    Every image is decoded once with `decode_image` at the model's size and
    `data.coco_image_fit`, into `<data.coco_cache>/<split>-<H>x<W>-<fit>-<key>.npy`
    (uint8 [M, H, W, 3]) plus a `.json` beside it listing the images that
    failed to decode. The key hashes the split's image list (paths relative
    to `data.coco_root`, file sizes), the size, the fit and the decoder
    version, so a different image list or size gets a new file; a file with
    the right key is reused without decoding anything.

    Returns:
        {split: {"path", "status" ("built" or "reused"), "images",
        "unreadable"}}.

    Raises:
        T2IError: no `data.coco_cache`, the "npy" source (already 32x32),
            unreadable COCO files, an unwritable cache directory.
    """
    if not config.data.coco_cache:
        raise T2IError("data.coco_cache is not set: give a directory for the image cache")
    if config.data.coco_source != "json":
        raise T2IError("the image cache is for data.coco_source 'json'; the 'npy' source is already 32x32")
    data = load_coco(config)
    m = config.model
    out = {}
    for name in SPLITS:
        _, ok, _, info = _cached_pixels(data.splits[name], data.root, Path(config.data.coco_cache).expanduser(),
                                        m.image_height, m.image_width, config.data.coco_image_fit)
        out[name] = dict(info, images=len(ok), unreadable=int((~ok).sum()))
    return out


# === Batches ===

class BatchPlan:
    """Which training examples form each batch of each epoch (spec section 8).

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


# === Pipelines ===

@dataclasses.dataclass
class CocoExamples:
    """Test examples as NumPy arrays, one row per (caption, image) pair.

    Attributes:
        images: uint8 [N, H, W, 3].
        captions: N caption strings.
        image_ids: int64 [N], the COCO image id of each row (npy source: the
            image row), so that per-image metrics can de-duplicate the 5
            captions of an image.
    """

    images: np.ndarray
    captions: list
    image_ids: np.ndarray


@dataclasses.dataclass
class CocoDatasets:
    """The COCO pipelines of one run (the counterpart of `t2i.data.pipeline.Datasets`).

    Attributes:
        train: endless dataset of {"images", "tokens"} batches of at most
            `train.batch_size` (bucketed batches share one caption length);
            `steps_per_epoch` batches per epoch.
        validation: finite dataset over every validation caption, in order
            (image id, then annotation id), the same batches every pass.
        test: finite dataset over the test captions, in the order of
            `test_examples`.
        test_examples: the test examples as NumPy arrays (`CocoExamples`).
        steps_per_epoch: batches per training epoch.
        source: where the data came from, e.g. "coco json: /data/coco".
        report: skipped input, {kind: {"count", "examples"[, "captions"]}}
            for every kind of `SKIPS` (count 0 when nothing was skipped).
        stats: counts for information: images and captions per split,
            "train_examples" (after the length filter),
            "train_captions_outside_lengths", "length_buckets",
            "captions_beyond_first", ...
        cache: {split: {"path", "status"}} where `data.coco_cache` is used.
        held_out: () (COCO has no held-out compositions).
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    test_examples: CocoExamples
    steps_per_epoch: int
    source: str
    report: dict
    stats: dict
    cache: dict
    held_out: tuple = ()

    def sample_captions(self, n: int = 8) -> list[str]:
        """The first caption of `n` test images spread over the test split (for sample grids)."""
        ids, first = np.unique(self.test_examples.image_ids, return_index=True)
        first = np.sort(first)
        rows = first[np.linspace(0, len(first) - 1, min(n, len(first))).round().astype(int)]
        return [self.test_examples.captions[r] for r in rows]


def make_coco_datasets(config: ExperimentConfig, tokenizer, initial_epoch: int = 0) -> CocoDatasets:
    """Builds the COCO train / validation / test pipelines of `config`.

    Args:
        config: the experiment, with `data.dataset` "coco" and a vocabulary
            (`resolve_coco_config` fills an empty one).
        tokenizer: a `t2i.text.CaptionTokenizer`; maps caption strings to
            ids inside the tf.data graph.
        initial_epoch: the first data epoch of the train stream (resuming).

    Returns:
        `CocoDatasets`.

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
    if config.text.max_caption_length < d.max_train_caption_length - 1:
        raise T2IError(f"text.max_caption_length ({config.text.max_caption_length}) must be at least "
                       f"data.max_train_caption_length - 1 ({d.max_train_caption_length - 1})")
    height, width = m.image_height, m.image_width
    data = load_coco(config)
    report, stats = data.report, data.stats
    splits, cache = _attach_pixels(data, config, height, width)

    # Training: the length filter of the original code.
    train = _length_filtered(splits["train"], config)
    stats["train_examples"] = len(train.captions)
    stats["train_captions_outside_lengths"] = len(splits["train"].captions) - len(train.captions)
    if not len(train.captions):
        raise T2IError(f"{data.source}: no training caption has {d.min_caption_length} to "
                       f"{d.max_train_caption_length - 1} tokens")
    # Validation and test: every length the model takes.
    for name in ("validation", "test"):
        split = splits[name]
        long = split.lengths > config.text.max_caption_length
        for i in np.flatnonzero(long):
            _skip(report, "long_captions",
                  f"{name} image {split.image_ids[split.cap2im[i]]}: {split.lengths[i]} tokens")
        splits[name] = split.keep_captions(~long)
        if not len(splits[name].captions):
            raise T2IError(f"{data.source}: the {name} split has no usable captions")
    _warn(report, ("unreadable_images", "long_captions"))
    stats["images"] = {n: s.num_images for n, s in splits.items()}
    stats["captions"] = {n: len(s.captions) for n, s in splits.items()}

    plan = BatchPlan(train.lengths, config.train.batch_size, seed=d.seed, bucketing=d.bucketing,
                     steps_per_epoch=config.train.steps_per_epoch)
    stats["length_buckets"] = len(plan.buckets)

    def finish(images, captions):
        images = tf.cast(images, tf.float32) / 255.0  # the same division as the MNIST pipeline
        return {"images": images, "tokens": tokenizer(captions)}

    train_ds = (tf.data.Dataset.range(initial_epoch, MAX_EPOCHS)
                .flat_map(lambda e: _batches(train, plan.epoch, height, width, e)))
    if train.pixels is None:
        def decode_batch(files, captions):
            images = tf.map_fn(lambda f: decode_image(f, height, width, d.coco_image_fit), files,
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
    test_examples = CocoExamples(images=test.pixels[test.cap2im], captions=list(test.captions),
                                 image_ids=test.image_ids[test.cap2im])
    return CocoDatasets(
        train=deterministic(train_ds), validation=deterministic(finite(splits["validation"])),
        test=deterministic(finite(test)), test_examples=test_examples,
        steps_per_epoch=plan.steps_per_epoch, source=data.source, report=report, stats=stats,
        cache=cache)


def _length_filtered(split: CocoSplit, config: ExperimentConfig) -> CocoSplit:
    d = config.data
    return split.keep_captions((split.lengths >= d.min_caption_length)
                               & (split.lengths < d.max_train_caption_length))


def _attach_pixels(data: CocoData, config: ExperimentConfig, height: int, width: int):
    """Puts images in memory where they will be (cache, npy, decoded validation/test).

    Returns (splits, cache info); drops and reports unreadable images.
    """
    splits, cache = dict(data.splits), {}
    d = config.data
    if d.coco_source == "npy":
        if (height, width) != (NPY_SIZE, NPY_SIZE):
            raise T2IError(f"the 'npy' COCO source holds 32x32 images; the model is {height}x{width}")
        return splits, cache
    cache_dir = Path(d.coco_cache).expanduser() if d.coco_cache else None
    for name, split in splits.items():
        if cache_dir is not None:
            pixels, ok, errors, cache[name] = _cached_pixels(split, data.root, cache_dir, height, width,
                                                             d.coco_image_fit)
        elif name != "train":
            pixels, ok, errors = decode_files(split.files, height, width, d.coco_image_fit)
        else:
            # Streamed from JPEGs: check each header now rather than fail mid-epoch.
            pixels, ok = None, np.array([_looks_like_jpeg(f) for f in split.files], bool)
            errors = {int(r): "not a JPEG file" for r in np.flatnonzero(~ok)[:_EXAMPLES]}
        split = dataclasses.replace(split, pixels=pixels)
        bad = np.flatnonzero(~ok)
        if len(bad):
            entry = data.report["unreadable_images"]
            entry["captions"] = entry.get("captions", 0) + int(np.isin(split.cap2im, bad).sum())
            for row in bad:
                why = errors.get(int(row), "decoding failed")
                _skip(data.report, "unreadable_images", f"{os.path.relpath(split.files[row], data.root)} ({why})")
            split = split.keep_images(ok)
        splits[name] = split
    return splits, cache


def _looks_like_jpeg(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(3) == _JPEG_MAGIC
    except OSError:
        return False


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
