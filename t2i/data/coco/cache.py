"""The uint8 image cache of the json source: every image decoded once, reused by key."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from t2i.config import ExperimentConfig
from t2i.data.coco.images import decode_files
from t2i.data.coco.splits import SPLITS, CocoSplit
from t2i.errors import T2IError

_CACHE_VERSION = 1  # bump when decode_image changes: old cache files are then ignored


def _cache_file(cache_dir: Path, split: CocoSplit, root: Path, height: int, width: int, fit: str) -> Path:
    """`<dir>/<split>-<H>x<W>-<fit>-<key>.npy`; the key hashes the image list, sizes and decoder."""
    rel = [os.path.relpath(f, root) for f in split.files]
    blob = json.dumps({"version": _CACHE_VERSION, "size": [height, width], "fit": fit,
                       "files": rel, "bytes": split.file_bytes.tolist()}).encode()
    key = hashlib.sha256(blob).hexdigest()[:16]
    return cache_dir / f"{split.name}-{height}x{width}-{fit}-{key}.npy"


def cached_pixels(split: CocoSplit, root: Path, cache_dir: Path, height: int, width: int, fit: str):
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
        raise T2IError(f"data.coco.cache {cache_dir}: cannot be created ({e.strerror})") from None
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
        raise T2IError(f"data.coco.cache {cache_dir}: cannot write {path.name} ({e.strerror})") from None
    info["status"] = "built"
    return pixels, ok, errors, info


def build_cache(config: ExperimentConfig) -> dict:
    """Builds (or checks) the uint8 image cache of every split.

    Every image is decoded once with `decode_image` at the model's size and
    `data.coco.image_fit`, into `<data.coco.cache>/<split>-<H>x<W>-<fit>-<key>.npy`
    (uint8 [M, H, W, 3]) plus a `.json` beside it listing the images that
    failed to decode. The key hashes the split's image list (paths relative
    to `data.coco.root`, file sizes), the size, the fit and the decoder
    version, so a different image list or size gets a new file; a file with
    the right key is reused without decoding anything.

    Returns:
        {split: {"path", "status" ("built" or "reused"), "images",
        "unreadable"}}.

    Raises:
        T2IError: no `data.coco.cache`, the "npy" source (already 32x32),
            unreadable COCO files, an unwritable cache directory.
    """
    if not config.data.coco.cache:
        raise T2IError("data.coco.cache is not set: give a directory for the image cache")
    if config.data.coco.source != "json":
        raise T2IError("the image cache is for data.coco.source 'json'; the 'npy' source is already 32x32")
    from t2i.data.coco.loading import load_coco

    data = load_coco(config)
    m = config.model
    out = {}
    for name in SPLITS:
        _, ok, _, info = cached_pixels(data.splits[name], data.root, Path(config.data.coco.cache).expanduser(),
                                        m.image_height, m.image_width, config.data.coco.image_fit)
        out[name] = dict(info, images=len(ok), unreadable=int((~ok).sum()))
    return out
