"""Tests for COCO's fields of t2i.config: defaults, parsing, validation and the JSON round trip."""

import pytest

from t2i import config as configs
from t2i.errors import T2IError


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
