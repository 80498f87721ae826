import json

import pytest

from t2i import config as C
from t2i.errors import T2IError


@pytest.mark.parametrize("name", sorted(C.PRESETS))
def test_presets_round_trip_through_json(name, tmp_path):
    cfg = C.get_preset(name)
    assert C.ExperimentConfig.from_json(cfg.to_json()) == cfg
    cfg.save(tmp_path / "config.json")
    assert C.ExperimentConfig.load(tmp_path / "config.json") == cfg


def test_paper_values():
    m, t = C.mnist_captions().model, C.mnist_captions().train
    assert (m.image_height, m.image_width, m.channels, m.num_steps) == (60, 60, 1, 32)
    assert (m.read_size, m.write_size, m.encoder_units, m.decoder_units, m.latent_dim) == (8, 8, 300, 300, 150)
    assert (m.caption_units, m.align_units, t.batch_size, t.learning_rate, t.rho, t.clipnorm) == (
        128, 512, 100, 1e-3, 0.9, 10.0)
    c = C.coco_32().model
    assert (c.image_height, c.channels, c.read_size, c.encoder_units, c.latent_dim) == (32, 3, 9, 550, 275)
    assert C.tiny().model.num_steps == 3
    assert C.mnist_captions().text.vocab_size == 24


def test_overrides_parse_text_and_validate():
    cfg = C.tiny().override({"model.num_steps": "5", "train.learning_rate": "3e-4",
                             "train.jit_compile": "true", "data.held_out": "2 left of 9, 4 top left",
                             "train.lr_decay_epochs": ""})
    assert cfg.model.num_steps == 5 and cfg.train.learning_rate == 3e-4 and cfg.train.jit_compile is True
    assert cfg.data.held_out == ("2 left of 9", "4 top left") and cfg.train.lr_decay_epochs == ()
    with pytest.raises(T2IError, match="unknown config field 'model.steps'"):
        C.tiny().override({"model.steps": "3"})
    with pytest.raises(T2IError, match="cannot parse 'x' as int"):
        C.tiny().override({"model.num_steps": "x"})
    with pytest.raises(T2IError, match="num_steps must be >= 1"):
        C.tiny().override({"model.num_steps": "0"})
    with pytest.raises(T2IError, match="conditioning"):
        C.tiny().override({"model.conditioning": "concat"})
    with pytest.raises(T2IError, match="caption_encoder"):
        C.tiny().override({"model.caption_encoder": "backward"})
    with pytest.raises(T2IError, match="60x60x1"):
        C.tiny().override({"model.image_height": "32"})


def test_frozen_and_bad_files(tmp_path):
    cfg = C.tiny()
    with pytest.raises(Exception):
        cfg.model.num_steps = 4  # frozen
    with pytest.raises(T2IError, match="unknown preset 'mnist'"):
        C.get_preset("mnist")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(T2IError, match="not valid JSON"):
        C.ExperimentConfig.load(bad)
    bad.write_text(json.dumps({"model": {"units": 3}}))
    with pytest.raises(T2IError, match="unknown config field"):
        C.ExperimentConfig.load(bad)
    with pytest.raises(T2IError, match="cannot read config"):
        C.ExperimentConfig.load(tmp_path / "missing.json")


def test_allowed_values_and_word_ids_have_one_home():
    from t2i import text, text_numpy
    from t2i.layers import caption_encoder
    from t2i.model import AlignDRAW

    assert caption_encoder.DIRECTIONS is C.CAPTION_ENCODERS
    assert (text.PAD_ID, text.OOV_ID) == (text_numpy.PAD_ID, text_numpy.OOV_ID) == (C.PAD_ID, C.OOV_ID) == (0, 1)
    with pytest.raises(ValueError, match=r"conditioning must be one of \('align', 'mean'\)"):
        AlignDRAW(vocab_size=5, conditioning="sum")
