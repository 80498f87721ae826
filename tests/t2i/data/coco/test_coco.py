"""Tests for t2i.data.coco on tiny COCO look-alikes written by t2i.data.coco.synthetic.

Truth comes from the fixture (which image has which colour, shape and
captions) and from independent computations here (a regex tokeniser, Counter
vocabularies, NumPy box averages of Pillow decodes), not from the library.
"""

import collections
import json
import math
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from t2i import config as configs
from t2i.data import coco
from t2i.data.coco import cache as coco_cache
from t2i.errors import T2IError
from t2i.text import CaptionTokenizer
from t2i.data.coco.synthetic import (COLOURS, GREY, GREY_INDEX, EXTRA_WORDS, make_coco_fixture,
                                     make_npy_fixture, write_split_file)

BATCH = 8
PALETTE = dict(COLOURS, **{GREY[0]: GREY[1]})


def words(caption):
    """Independent tokeniser for the fixture's ASCII captions."""
    return re.findall(r"[a-z0-9]+|[^\sa-z0-9]", caption.lower())


def first_five(image):
    return [c for c in image.captions[:5] if words(c)]


def colour_of(pixel):
    pixel = np.asarray(pixel, float)
    return min(PALETTE, key=lambda name: np.sum((np.asarray(PALETTE[name]) - pixel) ** 2))


def take(ds, n=None):
    ds = ds if n is None else ds.take(n)
    return [{k: v.numpy() for k, v in batch.items()} for batch in ds]


def decode(tokenizer, tokens):
    vocab = tokenizer.vocabulary
    return [" ".join(vocab[t] for t in row if t != 0) for row in tokens]


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return make_coco_fixture(tmp_path_factory.mktemp("coco"), n_train=24, n_val=12)


@pytest.fixture(scope="module")
def config(fx):
    cfg = configs.coco_32().override({
        "data.coco_root": str(fx.root), "data.coco_validation_images": 6, "data.coco_test_images": 6,
        "train.batch_size": BATCH, "data.seed": 3})
    return coco.resolve_coco_config(cfg)


@pytest.fixture(scope="module")
def tokenizer(config):
    return CaptionTokenizer(config.text)


@pytest.fixture(scope="module")
def data(config, tokenizer):
    return coco.make_coco_datasets(config, tokenizer)


def expected_train_captions(fx, low=7, high=30):
    return [c for im in fx.in_folder("train2014") for c in first_five(im) if low <= len(words(c)) < high]


def test_train_epoch_pairs_shapes_and_buckets(fx, data, tokenizer):
    spec = data.train.element_spec
    assert set(spec) == {"images", "tokens"}
    assert spec["images"].shape.as_list() == [None, 32, 32, 3] and spec["images"].dtype == tf.float32
    assert spec["tokens"].shape.as_list() == [None, None] and spec["tokens"].dtype == tf.int64
    expected = expected_train_captions(fx)
    by_length = collections.Counter(len(words(c)) for c in expected)
    assert sorted(by_length) == [7, 10, 11]  # the 6- and 36-token captions are filtered out
    assert data.steps_per_epoch == sum(math.ceil(n / BATCH) for n in by_length.values()) == 9
    assert data.held_out == () and data.source == f"coco json: {fx.root}"

    seen = []
    for batch in take(data.train, data.steps_per_epoch):
        images, tokens = batch["images"], batch["tokens"]
        assert images.dtype == np.float32 and images.shape[1:] == (32, 32, 3) and 1 <= len(images) <= BATCH
        assert 0.0 <= images.min() and images.max() <= 1.0
        assert tokens.dtype == np.int64 and (tokens > 0).all()  # one length per bucket: no padding
        for image, caption in zip(images, decode(tokenizer, tokens)):
            colour = next(w for w in caption.split() if w in PALETTE)
            assert colour_of(image[:2, :2].mean((0, 1)) * 255) == colour, caption
            assert (image[15:17, 15:17] > 0.8).all(), caption  # the white shape in the middle
            seen.append(caption)
    assert collections.Counter(seen) == collections.Counter(" ".join(words(c)) for c in expected)
    assert not any(w in s for s in seen for w in EXTRA_WORDS)  # captions beyond the first five


def test_epochs_are_deterministic_different_and_resumable(config, tokenizer, data):
    n = data.steps_per_epoch
    stream = take(data.train, 2 * n)
    epoch0, epoch1 = stream[:n], stream[n:]
    again = take(coco.make_coco_datasets(config, tokenizer).train, n)
    resumed = take(coco.make_coco_datasets(config, tokenizer, initial_epoch=1).train, n)
    for a, b in zip(epoch0, again):
        np.testing.assert_array_equal(a["tokens"], b["tokens"])
        np.testing.assert_array_equal(a["images"], b["images"])
    for a, b in zip(epoch1, resumed):
        np.testing.assert_array_equal(a["tokens"], b["tokens"])
        np.testing.assert_array_equal(a["images"], b["images"])
    assert [b["tokens"].tolist() for b in epoch0] != [b["tokens"].tolist() for b in epoch1]
    # Each epoch is a full pass: the same examples in another order.
    flat = lambda e: sorted(map(tuple, np.concatenate([b["tokens"].ravel() for b in e]).reshape(-1, 1)))
    assert len(flat(epoch0)) == len(flat(epoch1))


def test_batch_plan_buckets_uniform_pick_and_determinism():
    rng = np.random.default_rng(0)
    lengths = np.concatenate([np.full(n, length) for length, n in ((7, 16), (9, 13), (12, 4), (20, 1))])
    lengths = lengths[rng.permutation(len(lengths))]
    plan = coco.BatchPlan(lengths, batch_size=4, seed=11)
    assert plan.steps_per_epoch == plan.natural_steps == 4 + 4 + 1 + 1
    epochs = [plan.epoch(e) for e in range(6)]
    for batches in epochs:
        assert len(batches) == 10 and all(1 <= len(b) <= 4 for b in batches)  # no empty batch (>=)
        assert all(len(set(lengths[b])) == 1 for b in batches)
        assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    again = coco.BatchPlan(lengths, batch_size=4, seed=11).epoch(3)
    assert all(np.array_equal(a, b) for a, b in zip(epochs[3], again))
    assert len({tuple(np.concatenate(b)) for b in epochs}) == 6  # every epoch differs
    assert not all(np.array_equal(a, b) for a, b in zip(epochs[0], coco.BatchPlan(lengths, 4, seed=12).epoch(0)))

    # Buckets are picked uniformly, not in proportion to their size.
    skewed = np.array([5] * 200 + [6] * 4)
    firsts = [len(set(skewed[coco.BatchPlan(skewed, 4, seed=s).epoch(0)[0]]) & {6}) for s in range(300)]
    assert 0.38 < np.mean(firsts) < 0.62

    # Without bucketing: one shuffled pass in full batches, mixed lengths.
    flat = coco.BatchPlan(lengths, batch_size=4, seed=11, bucketing=False)
    batches = flat.epoch(0)
    assert flat.steps_per_epoch == math.ceil(34 / 4) and [len(b) for b in batches] == [4] * 8 + [2]
    assert any(len(set(lengths[b])) > 1 for b in batches)
    # A fixed step count extends an epoch with further passes, deterministically.
    longer = coco.BatchPlan(lengths, batch_size=4, seed=11, steps_per_epoch=13).epoch(2)
    assert len(longer) == 13 and all(np.array_equal(a, b) for a, b in zip(longer, epochs[2]))
    assert len(coco.BatchPlan(lengths, batch_size=4, seed=11, steps_per_epoch=3).epoch(2)) == 3


def test_length_filter_validation_and_test_examples(fx, config, tokenizer):
    cfg = config.override({"data.min_caption_length": 8, "data.max_train_caption_length": 11,
                           "data.bucketing": False})
    data = coco.make_coco_datasets(cfg, tokenizer)
    expected = expected_train_captions(fx, 8, 11)
    assert data.stats["train_examples"] == len(expected) == 24 + 8  # the 10-token captions only
    assert data.steps_per_epoch == math.ceil(len(expected) / BATCH)
    seen = [c for b in take(data.train, data.steps_per_epoch) for c in decode(tokenizer, b["tokens"])]
    assert sorted(seen) == sorted(" ".join(words(c)) for c in expected)

    # Validation keeps every length (6 and 36 tokens too); unknown words read as OOV.
    vocab = set(config.text.vocabulary)
    val_images = fx.in_folder("val2014")[:6]
    expected_val = [" ".join(w if w in vocab else "[UNK]" for w in words(c)) for im in val_images
                    for c in first_five(im)]
    val = take(data.validation)
    assert [c for b in val for c in decode(tokenizer, b["tokens"])] == expected_val
    assert [len(b["tokens"]) for b in val] == [8, 8, 8, 6]

    test_images = fx.in_folder("val2014")[6:]
    ex = data.test_examples
    assert ex.images.dtype == np.uint8 and ex.images.shape == (30, 32, 32, 3)
    assert ex.captions == [c for im in test_images for c in first_five(im)]
    assert ex.image_ids.tolist() == [im.image_id for im in test_images for _ in range(5)]
    for image, image_id in zip(ex.images, ex.image_ids):
        assert colour_of(image[:2, :2].mean((0, 1))) == fx.by_id(image_id).colour
    assert coco.spread_captions(data.test_examples, 3) == [first_five(test_images[k])[0] for k in (0, 2, 5)]
    test = np.concatenate([b["images"] for b in take(data.test)])
    np.testing.assert_array_equal(test, ex.images.astype(np.float32) / 255.0)


def box_average(image, factor):
    h, w, c = image.shape
    return image.reshape(h // factor, factor, w // factor, factor, c).astype(np.float64).mean((1, 3))


def test_resize_is_area_average_and_fits(fx, tmp_path):
    # 64x64 -> 32x32: decoded in full, then exactly the 2x2 box average.
    im = fx.in_folder("train2014")[0]
    assert im.size == (64, 64)
    out = coco.decode_image(str(fx.root / im.file), 32, 32).numpy()
    full = np.asarray(Image.open(fx.root / im.file).convert("RGB"))
    reference = np.round(box_average(full, 2))
    assert (np.abs(out - reference) <= 0.5 + 1e-9).all()
    assert np.abs(reference[8:24, 8:24] - reference[0, 0]).max() > 100  # the shape is there
    # 96x96 noise -> 32x32: the 3x3 box average (bilinear would read ~1 pixel in 9).
    noise = np.random.default_rng(1).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.jpg", quality=100)
    out = coco.decode_image(str(tmp_path / "noise.jpg"), 32, 32).numpy()
    reference = np.round(box_average(np.asarray(Image.open(tmp_path / "noise.jpg")), 3))
    np.testing.assert_array_equal(out, reference)
    # 256x256 is decoded at 1/4 scale by libjpeg, then area-averaged: close to the 8x8 box average.
    big = fx.in_folder("train2014")[4]
    assert big.size == (256, 256)
    out = coco.decode_image(str(fx.root / big.file), 32, 32).numpy().astype(float)
    reference = box_average(np.asarray(Image.open(fx.root / big.file).convert("RGB")), 8)
    assert np.abs(out - reference).max() <= 10 and np.abs(out - reference).mean() < 0.5  # bilinear: 69, 1.06
    # Greyscale JPEGs become RGB.
    grey = fx.in_folder("train2014")[GREY_INDEX]
    assert grey.mode == "L" and Image.open(fx.root / grey.file).mode == "L"
    out = coco.decode_image(str(fx.root / grey.file), 32, 32).numpy()
    assert out.shape == (32, 32, 3) and (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert abs(int(out[0, 0, 0]) - 128) <= 3
    # A 96x32 image, red | green | blue thirds: squash keeps all three, center_crop only green.
    thirds = np.zeros((32, 96, 3), np.uint8)
    thirds[:, :32, 0], thirds[:, 32:64, 1], thirds[:, 64:, 2] = 255, 255, 255
    Image.fromarray(thirds).save(tmp_path / "thirds.jpg", quality=100)
    squash = coco.decode_image(str(tmp_path / "thirds.jpg"), 16, 16).numpy().astype(int)
    crop = coco.decode_image(str(tmp_path / "thirds.jpg"), 16, 16, fit="center_crop").numpy().astype(int)
    assert squash[8, 0, 0] > 200 and squash[8, 8, 1] > 200 and squash[8, 15, 2] > 200
    assert (crop[2:-2, 2:-2, 1] > 200).all() and (crop[2:-2, 2:-2, [0, 2]] < 40).all()


def test_vocabulary(fx, config):
    assert coco.build_vocabulary(["b a a", "c b a", "C!"]) == ("a", "b", "c", "!")
    assert coco.build_vocabulary(["b a a", "c b a", "C!"], min_count=2) == ("a", "b", "c")
    # The module config: every word of the training captions (min_word_count 1).
    counts = collections.Counter(w for c in expected_train_captions(fx) for w in words(c))
    assert config.text.vocabulary == tuple(sorted(counts, key=lambda w: (-counts[w], w)))
    assert not set(EXTRA_WORDS) & set(config.text.vocabulary)
    assert "really" not in config.text.vocabulary  # only in the 36-token captions
    assert coco.resolve_coco_config(config) is config  # a vocabulary is kept
    assert configs.ExperimentConfig.from_json(config.to_json()) == config
    # min_word_count 10: colour words (9 uses each) become OOV.
    cfg = coco.resolve_coco_config(config.override({"text.vocabulary": (), "data.min_word_count": 10}))
    assert cfg.text.vocabulary == tuple(w for w in config.text.vocabulary if counts[w] >= 10)
    assert "red" not in cfg.text.vocabulary and "square" in cfg.text.vocabulary
    tokenizer = CaptionTokenizer(cfg.text)
    batch = take(coco.make_coco_datasets(cfg, tokenizer).train, 1)[0]
    for row in decode(tokenizer, batch["tokens"]):
        assert "[UNK]" in row.split() and not set(row.split()) & set(PALETTE)


def test_cache_matches_jpeg_path_and_is_reused(fx, config, tokenizer, data, tmp_path, monkeypatch):
    cached_config = config.override({"data.coco_cache": str(tmp_path / "cache")})
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
    moved = coco.build_cache(cached_config.override({"data.coco_validation_images": 5}))
    assert [moved[s]["status"] for s in coco.SPLITS] == ["reused", "built", "built"]


def test_split_file(fx, config, tmp_path):
    write_split_file(fx, tmp_path / "karpathy.json", n_val=4, n_test=3)
    cfg = config.override({"data.coco_split_file": str(tmp_path / "karpathy.json")})
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
    alone = coco.load_coco(cfg.override({"data.coco_root": str(root),
                                         "data.coco_split_file": "dataset_coco.json"}))
    for name in coco.SPLITS:
        np.testing.assert_array_equal(alone.splits[name].captions, loaded.splits[name].captions)
        np.testing.assert_array_equal(alone.splits[name].cap2im, loaded.splits[name].cap2im)


def test_npy_source(tmp_path):
    truth = make_npy_fixture(tmp_path / "npy", counts=(10, 4, 4))
    cfg = configs.coco_32().override({"data.coco_root": str(tmp_path / "npy"), "data.coco_source": "npy",
                                      "train.batch_size": 4, "data.min_caption_length": 3})
    cfg = coco.resolve_coco_config(cfg)
    assert "unk" in cfg.text.vocabulary or "unk" not in " ".join(truth["train"]["captions"]).lower()
    tokenizer = CaptionTokenizer(cfg.text)
    data = coco.make_coco_datasets(cfg, tokenizer)
    ex, t = data.test_examples, truth["test"]
    assert ex.captions == t["captions"]
    np.testing.assert_array_equal(ex.images, t["images"][t["cap2im"]])
    # Every training pair: the image is the one its caption belongs to (images are unique noise).
    train = truth["train"]
    owner = {" ".join(words(c)): set() for c in train["captions"]}
    for c, i in zip(train["captions"], train["cap2im"]):
        owner[" ".join(words(c))].add(i)
    count = 0
    for batch in take(data.train, data.steps_per_epoch):
        for image, caption in zip(batch["images"], decode(tokenizer, batch["tokens"])):
            row = int(np.argmin(np.abs(train["images"].astype(float) / 255 - image).sum((1, 2, 3))))
            np.testing.assert_allclose(image, train["images"][row] / 255.0, atol=1e-6)
            assert row in owner[caption]
            count += 1
    assert count == len(train["captions"]) == data.stats["train_examples"]
    with pytest.raises(T2IError, match="32x32"):
        coco.make_coco_datasets(cfg.override({"model.image_height": 16}), tokenizer)


def test_bad_files_are_clear_errors(fx, config, tmp_path):
    cfg = config.override({"data.coco_root": str(tmp_path)})
    with pytest.raises(T2IError, match="captions_train2014.json: no such file"):
        coco.load_coco(cfg)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations/captions_train2014.json").write_text("{not json")
    with pytest.raises(T2IError, match="captions_train2014.json: not valid JSON"):
        coco.load_coco(cfg)
    (tmp_path / "annotations/captions_train2014.json").write_text(json.dumps({"images": []}))
    with pytest.raises(T2IError, match="captions_train2014.json: expected an object with the lists"):
        coco.load_coco(cfg)
    (tmp_path / "annotations/captions_train2014.json").write_text(json.dumps(
        {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"id": 1, "image_id": 1}]}))
    with pytest.raises(T2IError, match=r"annotations\[0\] needs"):
        coco.load_coco(cfg)
    with pytest.raises(T2IError, match="coco_root is not set"):
        coco.load_coco(configs.coco_32())
    with pytest.raises(T2IError, match="resolve_coco_config"):
        coco.make_coco_datasets(configs.coco_32().override({"data.coco_root": str(fx.root)}), None)
    with pytest.raises(T2IError, match="too_few|fewer than"):
        coco.load_coco(config.override({"data.coco_validation_images": 10}))
    with pytest.raises(T2IError, match="no such file"):
        coco.load_coco(config.override({"data.coco_source": "npy"}))


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
        "data.coco_root": str(fx.root), "data.coco_validation_images": 2, "data.coco_test_images": 2,
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
    cached = coco.make_coco_datasets(cfg.override({"data.coco_cache": str(tmp_path / "cache")}), tokenizer)
    r = cached.report
    assert r["unreadable_images"]["count"] == 3 and r["unreadable_images"]["captions"] == 15
    assert any(e.startswith(train[5].file) for e in r["unreadable_images"]["examples"])
    good = [im for i, im in enumerate(train) if i not in (1, 2, 5)]
    expected = [c for im in good for c in first_five(im) if 7 <= len(words(c)) < 30]
    seen = [c for b in take(cached.train, cached.steps_per_epoch) for c in decode(tokenizer, b["tokens"])]
    assert sorted(seen) == sorted(" ".join(words(c)) for c in expected)
    assert cached.stats["images"]["train"] == 5
    # Reused cache still reports the unreadable images.
    assert coco.make_coco_datasets(cfg.override({"data.coco_cache": str(tmp_path / "cache")}),
                                   tokenizer).report["unreadable_images"]["count"] == 3


def test_config_fields_round_trip_and_parse():
    preset = configs.coco_32()
    assert preset.text.vocabulary == () and preset.text.max_caption_length == 64
    d = preset.data
    assert (d.coco_source, d.coco_captions_per_image, d.min_caption_length, d.max_train_caption_length,
            d.bucketing, d.min_word_count) == ("json", 5, 7, 30, True, 1)
    cfg = preset.override({"data.coco_root": "/data/coco", "data.bucketing": "off", "data.min_word_count": "3",
                           "data.coco_cache": "/tmp/cache", "data.coco_image_fit": "center_crop",
                           "data.coco_source": "npy", "data.max_train_caption_length": "25"})
    assert cfg.data.bucketing is False and cfg.data.min_word_count == 3 and cfg.data.coco_source == "npy"
    assert configs.ExperimentConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(T2IError, match="coco_source"):
        preset.override({"data.coco_source": "zip"})
    with pytest.raises(T2IError, match="coco_image_fit"):
        preset.override({"data.coco_image_fit": "pad"})
    with pytest.raises(T2IError, match="max_train_caption_length"):
        preset.override({"data.max_train_caption_length": "7"})
    with pytest.raises(T2IError, match="min_word_count"):
        preset.override({"data.min_word_count": "0"})
