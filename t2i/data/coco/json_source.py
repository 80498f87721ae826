"""The official COCO release: captions JSONs, JPEG folders, an optional Karpathy split file."""

from __future__ import annotations

import collections
import json
import stat
from pathlib import Path

import numpy as np

from t2i.data.coco.skips import new_report, skip
from t2i.data.coco.splits import SPLITS, CocoData, CocoSplit
from t2i.data.coco.vocabulary import caption_length
from t2i.errors import T2IError
from t2i.text_numpy import normalize

CAPTION_FILES = {"train2014": "annotations/captions_train2014.json",
                 "val2014": "annotations/captions_val2014.json"}
_SPLIT_FILE_SPLITS = {"train": "train", "restval": "train", "val": "validation", "test": "test"}


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
            skip(report, "unknown_image_captions", f"{where} annotation {ann_id} (image_id {image_id})")
    out = {}
    for image_id, caps in by_image.items():
        caps.sort(key=lambda c: c[0])
        stats["captions_beyond_first"] = stats.get("captions_beyond_first", 0) + max(0, len(caps) - k)
        kept = []
        for ann_id, caption in caps[:k]:
            if normalize(caption).split():
                kept.append(caption)
            else:
                skip(report, "empty_captions", f"{where} annotation {ann_id} {caption!r}")
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
            skip(report, "missing_images", rel)
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


def load_json(root: Path, d) -> CocoData:
    report, stats = new_report(), {}
    k = d.coco.captions_per_image
    split_path = None
    if d.coco.split_file:
        split_path = Path(d.coco.split_file).expanduser()
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
    nv, nt = d.coco.validation_images, d.coco.test_images
    if len(val) < nv + nt:
        raise T2IError(f"{CAPTION_FILES['val2014']} lists {len(val)} images, fewer than "
                       f"data.coco.validation_images + data.coco.test_images = {nv} + {nt}")
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
                    skip(report, "empty_captions", f"{path.name} cocoid {image_id} sentence {j}")
        else:
            images, captions = official
            if image_id not in images:
                skip(report, "split_file_unmatched", f"cocoid {image_id}")
                continue
            rel = rel or images[image_id][1]
            caps = captions[image_id]
        out[_SPLIT_FILE_SPLITS[im["split"]]].append((image_id, rel, caps))
    if official is not None:
        stats["images_not_in_split_file"] = len(set(official[0]) - listed)
    for name in SPLITS:
        out[name].sort(key=lambda e: e[0])
    return out
