"""`load_coco`: a config's COCO source read once per process (the memo lives here)."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

from t2i.config import ExperimentConfig
from t2i.data.coco.json_source import CAPTION_FILES, load_json
from t2i.data.coco.npy_source import NPY_SPLITS, load_npy
from t2i.data.coco.skips import SKIPS, warn
from t2i.data.coco.splits import SPLITS, CocoData
from t2i.errors import T2IError


def load_coco(config: ExperimentConfig) -> CocoData:
    """Reads captions and image lists of `config.data` (no image is decoded).

    The result is kept for the next call with the same files and settings
    (within one process), so `resolve_coco_config` followed by
    `make_coco_datasets` reads the files and warns about skips once.

    Raises:
        T2IError: `data.coco.root` unset or missing, a missing or malformed
            JSON / pickle / `.npy` file, a split without examples.
    """
    d = config.data
    if not d.coco.root:
        raise T2IError("data.coco.root is not set: give the COCO directory, e.g. --data.coco.root /data/coco")
    root = Path(d.coco.root).expanduser()
    if not root.is_dir():
        raise T2IError(f"data.coco.root {root}: no such directory")
    key = (str(root.resolve()), d.coco.source, d.coco.split_file, d.coco.captions_per_image,
           d.coco.validation_images, d.coco.test_images, _fingerprint(root, d))
    if _LOADED.get("key") != key:
        data = load_npy(root) if d.coco.source == "npy" else load_json(root, d)
        for split in data.splits.values():
            if not len(split.captions):
                raise T2IError(f"{data.source}: the {split.name} split has no usable captions")
        data.stats["images"] = {n: s.num_images for n, s in data.splits.items()}
        data.stats["captions"] = {n: len(s.captions) for n, s in data.splits.items()}
        warn(data.report, SKIPS)
        _LOADED.clear()
        _LOADED.update(key=key, data=data)
    data = _LOADED["data"]
    return dataclasses.replace(data, splits=dict(data.splits), report=copy.deepcopy(data.report),
                               stats=copy.deepcopy(data.stats))


_LOADED: dict = {}


def _fingerprint(root: Path, d) -> tuple:
    names = ([f"{NPY_SPLITS[s]}-{k}.npy" for s in SPLITS for k in ("images-32x32", "captions", "captions-len",
                                                                      "cap2im")] + ["dictionary.pkl"]
             if d.coco.source == "npy" else list(CAPTION_FILES.values()) + [d.coco.split_file])
    out = []
    for name in names:
        try:
            st = (root / name).stat() if name else None
            out.append((name, st and st.st_mtime_ns, st and st.st_size))
        except OSError:
            out.append((name, None, None))
    return tuple(out)
