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


def test_coco_section_round_trips_and_parses():
    preset = C.coco_32()
    assert preset.text.vocabulary == () and preset.text.max_caption_length == 64
    d = preset.data.coco
    assert (d.source, d.captions_per_image, d.min_caption_length, d.max_train_caption_length,
            d.bucketing, d.min_word_count) == ("json", 5, 7, 30, True, 1)
    cfg = preset.override({"data.coco.root": "/data/coco", "data.coco.bucketing": "off",
                           "data.coco.min_word_count": "3", "data.coco.cache": "/tmp/cache",
                           "data.coco.image_fit": "center_crop", "data.coco.source": "npy",
                           "data.coco.max_train_caption_length": "25"})
    assert cfg.data.coco.bucketing is False and cfg.data.coco.min_word_count == 3 and cfg.data.coco.source == "npy"
    assert C.ExperimentConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(T2IError, match="data.coco.source must be one of"):
        preset.override({"data.coco.source": "zip"})
    with pytest.raises(T2IError, match="data.coco.image_fit must be one of"):
        preset.override({"data.coco.image_fit": "pad"})
    with pytest.raises(T2IError, match="max_train_caption_length"):
        preset.override({"data.coco.max_train_caption_length": "7"})
    with pytest.raises(T2IError, match="data.coco.min_word_count must be >= 1"):
        preset.override({"data.coco.min_word_count": "0"})


# Every flat data field of configs written before the per-dataset sections: its section,
# its name there, and a value away from its default.
OLD_FLAT_DATA = {
    "mnist_source": ("mnist", "source", "bundled"),
    "validation_fraction": ("mnist", "validation_fraction", 0.25),
    "num_held_out": ("mnist", "num_held_out", 3),
    "held_out_seed": ("mnist", "held_out_seed", 7),
    "augment_rotation": ("mnist", "augment_rotation", 10.0),
    "augment_scale": ("mnist", "augment_scale", 0.1),
    "augment_shift": ("mnist", "augment_shift", 1.0),
    "augment_elastic_alpha": ("mnist", "augment_elastic_alpha", 30.0),
    "augment_elastic_sigma": ("mnist", "augment_elastic_sigma", 3.0),
    "coco_root": ("coco", "root", "/data/coco"),
    "coco_source": ("coco", "source", "npy"),
    "coco_split_file": ("coco", "split_file", "dataset_coco.json"),
    "coco_validation_images": ("coco", "validation_images", 100),
    "coco_test_images": ("coco", "test_images", 200),
    "coco_captions_per_image": ("coco", "captions_per_image", 3),
    "coco_cache": ("coco", "cache", "/tmp/cache"),
    "coco_image_fit": ("coco", "image_fit", "center_crop"),
    "min_word_count": ("coco", "min_word_count", 4),
    "min_caption_length": ("coco", "min_caption_length", 5),
    "max_train_caption_length": ("coco", "max_train_caption_length", 20),
    "bucketing": ("coco", "bucketing", False),
}


def test_configs_with_flat_data_fields_load_into_the_sections():
    assert set(OLD_FLAT_DATA) == set(C.LEGACY_DATA_FIELDS)
    old = C.ExperimentConfig().to_dict()
    old["data"] = {k: v for k, v in old["data"].items() if k not in ("mnist", "coco")}
    old["data"].update({name: value for name, (_, _, value) in OLD_FLAT_DATA.items()})
    config = C.ExperimentConfig.from_json(json.dumps(old))
    for name, (section, field, value) in OLD_FLAT_DATA.items():
        assert getattr(getattr(config.data, section), field) == value, name
    assert config.data.held_out == C.DataConfig().held_out  # the shared fields stay where they were
    with pytest.raises(T2IError, match="both data.coco_root and data.coco.root"):
        C.ExperimentConfig.from_dict({"data": {"coco_root": "/a", "coco": {"root": "/b"}}})


def test_old_override_keys_reach_the_new_fields():
    config = C.tiny().override({"data.coco_root": "/data/coco", "data.mnist_source": "bundled",
                                "data.augment_rotation": "5"})
    assert (config.data.coco.root, config.data.mnist.source, config.data.mnist.augment_rotation) == (
        "/data/coco", "bundled", 5.0)
    assert C.legacy_key("data.seed") == "data.seed" and C.legacy_key("model.coco_root") == "model.coco_root"


def test_sample_section_names_a_valid_sampler_and_old_configs_draw_plain():
    config = C.get_preset("scenes_tiny").override({"sample.sampler": "best_of_k:k=4"})
    assert C.ExperimentConfig.from_json(config.to_json()).sample.sampler == "best_of_k:k=4"
    with pytest.raises(T2IError, match=r"sample.sampler: unknown sampler 'greedy'"):
        C.get_preset("tiny").override({"sample.sampler": "greedy"})
    old = {k: v for k, v in C.get_preset("tiny").to_dict().items() if k != "sample"}
    assert C.ExperimentConfig.from_dict(old).sample.sampler == "plain"
