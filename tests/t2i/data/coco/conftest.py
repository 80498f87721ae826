"""Fixtures and helpers shared by the tests of t2i.data.coco, on tiny COCO look-alikes written by
tests.fixtures.coco.

Truth comes from the fixture (which image has which colour, shape and
captions) and from independent computations here (a regex tokeniser, Counter
vocabularies, NumPy box averages of Pillow decodes), not from the library.
The fixtures are built once for this directory (scope "package") and only read by the tests.
"""

import re

import pytest

from t2i import config as configs
from t2i.data import coco
from t2i.text import CaptionTokenizer
from tests.fixtures.coco import COLOURS, GREY, make_coco_fixture

BATCH = 8
PALETTE = dict(COLOURS, **{GREY[0]: GREY[1]})


def words(caption):
    """Independent tokeniser for the fixture's ASCII captions."""
    return re.findall(r"[a-z0-9]+|[^\sa-z0-9]", caption.lower())


def first_five(image):
    return [c for c in image.captions[:5] if words(c)]


def take(ds, n=None):
    ds = ds if n is None else ds.take(n)
    return [{k: v.numpy() for k, v in batch.items()} for batch in ds]


def decode(tokenizer, tokens):
    vocab = tokenizer.vocabulary
    return [" ".join(vocab[t] for t in row if t != 0) for row in tokens]


@pytest.fixture(scope="package")
def fx(tmp_path_factory):
    return make_coco_fixture(tmp_path_factory.mktemp("coco"), n_train=24, n_val=12)


@pytest.fixture(scope="package")
def config(fx):
    cfg = configs.coco_32().override({
        "data.coco.root": str(fx.root), "data.coco.validation_images": 6, "data.coco.test_images": 6,
        "train.batch_size": BATCH, "data.seed": 3})
    return coco.resolve_coco_config(cfg)


@pytest.fixture(scope="package")
def tokenizer(config):
    return CaptionTokenizer(config.text)


@pytest.fixture(scope="package")
def data(config, tokenizer):
    return coco.make_coco_datasets(config, tokenizer)


def expected_train_captions(fx, low=7, high=30):
    return [c for im in fx.in_folder("train2014") for c in first_five(im) if low <= len(words(c)) < high]
