"""Tests for t2i.data.coco.skips: bad input is skipped, counted in the report and announced."""

import json

import pytest
import tensorflow as tf

from t2i import config as configs
from t2i.data import coco
from t2i.text import CaptionTokenizer
from tests.fixtures.coco import make_coco_fixture
from tests.t2i.data.coco.conftest import decode, first_five, take, words


@pytest.fixture(scope="module")
def bad_fixture(tmp_path_factory):
    fx = make_coco_fixture(
        tmp_path_factory.mktemp("bad-coco"), n_train=8, n_val=4,
        missing=[("train2014", 1)], corrupt=[("train2014", 2), ("val2014", 0)],
        truncated=[("train2014", 5)], empty_captions=[("train2014", 0, 4), ("val2014", 3, 1)])
    path = fx.root / "annotations/captions_train2014.json"
    doc = json.loads(path.read_text())
    doc["annotations"].append({"id": 9999, "image_id": 424242, "caption": "a caption of no image ."})
    path.write_text(json.dumps(doc))
    return fx


def test_bad_input_is_reported_not_dropped_silently(bad_fixture, capsys, tmp_path):
    fx = bad_fixture
    cfg = coco.resolve_coco_config(configs.coco_32().override({
        "data.coco.root": str(fx.root), "data.coco.validation_images": 2, "data.coco.test_images": 2,
        "train.batch_size": 4, "text.max_caption_length": 30}))
    tokenizer = CaptionTokenizer(cfg.text)
    data = coco.make_coco_datasets(cfg, tokenizer)
    r = data.report
    train = fx.in_folder("train2014")
    assert r["missing_images"]["count"] == 1 and r["missing_images"]["examples"] == [train[1].file]
    assert r["missing_images"]["captions"] == 5
    assert r["empty_captions"]["count"] == 2
    assert r["unknown_image_captions"]["count"] == 1 and "424242" in r["unknown_image_captions"]["examples"][0]
    # Without a cache: the non-JPEG training file is caught by its header, the validation one by decoding.
    assert r["unreadable_images"]["count"] == 2
    assert {e.split(" ")[0] for e in r["unreadable_images"]["examples"]} == {
        train[2].file, fx.in_folder("val2014")[0].file}
    assert r["long_captions"]["count"] == 3  # the 36-token caption of each readable validation/test image
    err = capsys.readouterr().err
    for kind in ("missing_images", "empty_captions", "unknown_image_captions", "unreadable_images",
                 "long_captions"):
        assert f"t2i: warning: COCO: skipped {r[kind]['count']} {coco.SKIPS[kind]}" in err
    assert train[1].file in err
    # The truncated JPEG passes the header check and stops the stream loudly when decoded.
    with pytest.raises(tf.errors.InvalidArgumentError, match="JPEG"):
        take(data.train, data.steps_per_epoch)

    # With the cache every image is decoded once up front: the truncated one is reported too.
    cached = coco.make_coco_datasets(cfg.override({"data.coco.cache": str(tmp_path / "cache")}), tokenizer)
    r = cached.report
    assert r["unreadable_images"]["count"] == 3 and r["unreadable_images"]["captions"] == 15
    assert any(e.startswith(train[5].file) for e in r["unreadable_images"]["examples"])
    good = [im for i, im in enumerate(train) if i not in (1, 2, 5)]
    expected = [c for im in good for c in first_five(im) if 7 <= len(words(c)) < 30]
    seen = [c for b in take(cached.train, cached.steps_per_epoch) for c in decode(tokenizer, b["tokens"])]
    assert sorted(seen) == sorted(" ".join(words(c)) for c in expected)
    assert cached.stats["images"]["train"] == 5
    # Reused cache still reports the unreadable images.
    assert coco.make_coco_datasets(cfg.override({"data.coco.cache": str(tmp_path / "cache")}),
                                   tokenizer).report["unreadable_images"]["count"] == 3
