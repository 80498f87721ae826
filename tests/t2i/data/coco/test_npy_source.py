"""Tests for t2i.data.coco.npy_source: the authors' preprocessed arrays."""

import numpy as np
import pytest

from t2i import config as configs
from t2i.data import coco
from t2i.errors import T2IError
from t2i.text import CaptionTokenizer
from tests.fixtures.coco import make_npy_fixture
from tests.t2i.data.coco.conftest import decode, take, words


def test_npy_source(tmp_path):
    truth = make_npy_fixture(tmp_path / "npy", counts=(10, 4, 4))
    cfg = configs.coco_32().override({"data.coco.root": str(tmp_path / "npy"), "data.coco.source": "npy",
                                      "train.batch_size": 4, "data.coco.min_caption_length": 3})
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
