"""The authors' preprocessed COCO arrays: 32x32 images, word-index captions, a dictionary."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from t2i.data.coco.skips import new_report, skip
from t2i.data.coco.splits import CocoData, CocoSplit
from t2i.data.coco.vocabulary import caption_length
from t2i.errors import T2IError
from t2i.text_numpy import normalize

NPY_SPLITS = {"train": "train", "validation": "dev", "test": "test"}
NPY_SIZE = 32


def load_npy(root: Path) -> CocoData:
    report, stats = new_report(), {}
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
                skip(report, "empty_captions", f"{prefix} caption {i}")
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
