"""The drawing loop's two graph forms (model.loop) compute the same model."""

import json

import keras
import numpy as np
import pytest
from keras import ops

from t2i import config as C
from t2i.model import AlignDRAW


def _pair(**overrides):
    """(unrolled, while) models of the tiny preset (T = 3) with the same weights."""
    cfg = C.tiny().override({f"model.{k}": v for k, v in overrides.items()})
    unrolled = AlignDRAW.from_config_dataclass(cfg.override({"model.loop": "unrolled"}), seed=1)
    looped = AlignDRAW.from_config_dataclass(cfg.override({"model.loop": "while"}), seed=1)
    looped.set_weights(unrolled.get_weights())
    return unrolled, looped


def _batch(rng, model, n=4):
    tokens = rng.integers(2, 24, size=(n, 12))
    tokens[2:, 9:] = 0  # padded captions
    return {"images": rng.random((n, 60, 60, 1)).astype("float32"), "tokens": tokens,
            "noise": rng.standard_normal((n, model.num_steps, model.latent_dim)).astype("float32")}


@pytest.mark.parametrize("conditioning,loop_unroll", [("align", 1), ("align", 3), ("mean", 1)])
def test_inference_path_outputs_agree(conditioning, loop_unroll, rng):
    unrolled, looped = _pair(conditioning=conditioning, init_stddev=0.3, loop_unroll=loop_unroll)
    x = _batch(rng, unrolled)
    a, b = unrolled(x), looped(x)
    assert set(a) == set(b)
    for key in ("logits", "reconstruction", "kl", "log_ratio", "alignments"):
        assert a[key].shape == b[key].shape, key
        np.testing.assert_allclose(ops.convert_to_numpy(b[key]), ops.convert_to_numpy(a[key]),
                                   rtol=1e-5, atol=1e-5, err_msg=key)
    # Every step's KL is its own (a wrong step index would repeat or zero one).
    kl = ops.convert_to_numpy(b["kl"])
    assert np.all(kl > 0) and not np.allclose(kl[:, 0], kl[:, 1])


def test_generation_agrees(rng):
    unrolled, looped = _pair(init_stddev=0.3)
    x = _batch(rng, unrolled)
    seeds = [0, 1, 2, 3]
    np.testing.assert_allclose(looped.generate(x["tokens"], seeds)["images"],
                               unrolled.generate(x["tokens"], seeds)["images"], rtol=1e-5, atol=1e-6)
    # trace=True always unrolls, so the loop model's traced images are its own images.
    traced = looped.generate(x["tokens"], seeds, trace=True)
    np.testing.assert_allclose(traced["canvases"][:, -1], traced["images"], rtol=1e-6)
    np.testing.assert_allclose(traced["images"], looped.generate(x["tokens"], seeds)["images"],
                               rtol=1e-5, atol=1e-6)


def test_training_steps_give_the_same_losses(rng):
    unrolled, looped = _pair(init_stddev=0.1)
    x = _batch(rng, unrolled, n=8)
    for m in (unrolled, looped):
        m.compile(optimizer=keras.optimizers.RMSprop(1e-3, rho=0.9, epsilon=1e-6, clipnorm=10.0))
    losses = {"unrolled": [], "while": []}
    for _ in range(3):
        for name, m in (("unrolled", unrolled), ("while", looped)):
            losses[name].append(m.train_on_batch(x, return_dict=True))
    for a, b in zip(losses["unrolled"], losses["while"]):
        for key in ("loss", "reconstruction_loss", "kl_loss"):
            np.testing.assert_allclose(b[key], a[key], rtol=1e-5, err_msg=key)
    assert losses["while"][2]["loss"] < losses["while"][0]["loss"]  # the updates took effect
    for wa, wb in zip(unrolled.get_weights(), looped.get_weights()):
        np.testing.assert_allclose(wb, wa, rtol=1e-4, atol=1e-6)


def test_loop_config_fields_round_trip_and_legacy_configs_unroll(tmp_path):
    cfg = C.tiny().override({"model.loop": "unrolled", "model.loop_unroll": "4"})
    path = tmp_path / "config.json"
    cfg.save(path)
    assert C.ExperimentConfig.load(path) == cfg
    assert C.mnist_captions().model.loop == "while"
    # A config written before model.loop existed keeps the unrolled graph it was trained with.
    legacy = json.loads(C.mnist_captions().to_json())
    del legacy["model"]["loop"], legacy["model"]["loop_unroll"]
    old = C.ExperimentConfig.from_dict(legacy)
    assert (old.model.loop, old.model.loop_unroll) == ("unrolled", 1)
    (tmp_path / "old.json").write_text(json.dumps(legacy))
    assert C.ExperimentConfig.load(tmp_path / "old.json") == old
    model = AlignDRAW.from_config_dataclass(C.tiny().override({"model.loop": "while", "model.loop_unroll": 2}))
    assert AlignDRAW.from_config(model.get_config()).get_config() == model.get_config()
    with pytest.raises(C.T2IError, match="model.loop must be one of"):
        C.tiny().override({"model.loop": "scan"})
    with pytest.raises(C.T2IError, match="model.loop_unroll must be >= 1"):
        C.tiny().override({"model.loop_unroll": 0})
