"""Tests for t2i.data.coco.json_source: a Karpathy-style split file, with and without the captions JSONs."""

import shutil

import numpy as np

from t2i.data import coco
from tests.fixtures.coco import write_split_file
from tests.t2i.data.coco.conftest import first_five


def test_split_file(fx, config, tmp_path):
    write_split_file(fx, tmp_path / "karpathy.json", n_val=4, n_test=3)
    cfg = config.override({"data.coco.split_file": str(tmp_path / "karpathy.json")})
    loaded = coco.load_coco(cfg)
    val_ids = [im.image_id for im in fx.in_folder("val2014")]
    assert loaded.splits["validation"].image_ids.tolist() == val_ids[:4]
    assert loaded.splits["test"].image_ids.tolist() == val_ids[4:7]
    train_ids = [im.image_id for im in fx.in_folder("train2014")] + val_ids[7:]  # restval trains
    assert loaded.splits["train"].image_ids.tolist() == sorted(train_ids)
    assert list(loaded.splits["test"].captions) == [c for i in val_ids[4:7] for c in first_five(fx.by_id(i))]
    assert "karpathy.json" in loaded.source
    # Without the official captions files, the split file's own sentences are used (first 5).
    root = tmp_path / "only-split-file"
    shutil.copytree(fx.root, root)
    shutil.rmtree(root / "annotations")
    write_split_file(fx, root / "dataset_coco.json", n_val=4, n_test=3)
    alone = coco.load_coco(cfg.override({"data.coco.root": str(root),
                                         "data.coco.split_file": "dataset_coco.json"}))
    for name in coco.SPLITS:
        np.testing.assert_array_equal(alone.splits[name].captions, loaded.splits[name].captions)
        np.testing.assert_array_equal(alone.splits[name].cap2im, loaded.splits[name].cap2im)
