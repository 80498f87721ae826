"""Tests for t2i.data.coco.loading: what load_coco raises on a missing setting or bad files."""

import json

import pytest

from t2i import config as configs
from t2i.data import coco
from t2i.errors import T2IError


def test_bad_files_are_clear_errors(fx, config, tmp_path):
    cfg = config.override({"data.coco.root": str(tmp_path)})
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
    with pytest.raises(T2IError, match="coco.root is not set"):
        coco.load_coco(configs.coco_32())
    with pytest.raises(T2IError, match="resolve_coco_config"):
        coco.make_coco_datasets(configs.coco_32().override({"data.coco.root": str(fx.root)}), None)
    with pytest.raises(T2IError, match="too_few|fewer than"):
        coco.load_coco(config.override({"data.coco.validation_images": 10}))
    with pytest.raises(T2IError, match="no such file"):
        coco.load_coco(config.override({"data.coco.source": "npy"}))
