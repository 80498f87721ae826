"""Tests for t2i.data.coco.vocabulary: build_vocabulary and resolve_coco_config."""

import collections

from t2i import config as configs
from t2i.data import coco
from t2i.text import CaptionTokenizer
from tests.fixtures.coco import EXTRA_WORDS
from tests.t2i.data.coco.conftest import PALETTE, decode, expected_train_captions, take, words


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
    cfg = coco.resolve_coco_config(config.override({"text.vocabulary": (), "data.coco.min_word_count": 10}))
    assert cfg.text.vocabulary == tuple(w for w in config.text.vocabulary if counts[w] >= 10)
    assert "red" not in cfg.text.vocabulary and "square" in cfg.text.vocabulary
    tokenizer = CaptionTokenizer(cfg.text)
    batch = take(coco.make_coco_datasets(cfg, tokenizer).train, 1)[0]
    for row in decode(tokenizer, batch["tokens"]):
        assert "[UNK]" in row.split() and not set(row.split()) & set(PALETTE)
