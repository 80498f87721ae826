"""Tests for t2i.data.coco.cache: the uint8 image cache, built, matched and reused."""

import numpy as np

from t2i.data import coco
from t2i.data.coco import cache as coco_cache
from tests.t2i.data.coco.conftest import take


def test_cache_matches_jpeg_path_and_is_reused(fx, config, tokenizer, data, tmp_path, monkeypatch):
    cached_config = config.override({"data.coco.cache": str(tmp_path / "cache")})
    cached = coco.make_coco_datasets(cached_config, tokenizer)
    assert {s: c["status"] for s, c in cached.cache.items()} == dict.fromkeys(coco.SPLITS, "built")
    n = data.steps_per_epoch
    for a, b in zip(take(data.train, n), take(cached.train, n)):
        np.testing.assert_array_equal(a["images"], b["images"])
        np.testing.assert_array_equal(a["tokens"], b["tokens"])
    for a, b in zip(take(data.validation), take(cached.validation)):
        np.testing.assert_array_equal(a["images"], b["images"])
    train_file = cached.cache["train"]["path"]
    assert np.load(train_file).shape == (24, 32, 32, 3) and np.load(train_file).dtype == np.uint8
    mtime = (tmp_path / "cache" / train_file.split("/")[-1]).stat().st_mtime_ns

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cache should have been reused")

    monkeypatch.setattr(coco_cache, "decode_files", no_decoding)  # where build_cache looks it up
    again = coco.build_cache(cached_config)
    assert {s: c["status"] for s, c in again.items()} == dict.fromkeys(coco.SPLITS, "reused")
    reused = coco.make_coco_datasets(cached_config, tokenizer)
    np.testing.assert_array_equal(take(reused.train, 1)[0]["images"], take(cached.train, 1)[0]["images"])
    assert (tmp_path / "cache" / train_file.split("/")[-1]).stat().st_mtime_ns == mtime
    monkeypatch.undo()

    # Another size or another image list is another cache file.
    small = coco.build_cache(cached_config.override({"model.image_height": 16, "model.image_width": 16}))
    assert all(v["status"] == "built" and "-16x16-" in v["path"] for v in small.values())
    moved = coco.build_cache(cached_config.override({"data.coco.validation_images": 5}))
    assert [moved[s]["status"] for s in coco.SPLITS] == ["reused", "built", "built"]
