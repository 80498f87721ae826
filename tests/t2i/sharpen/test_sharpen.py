"""The sharpening network (t2i.sharpen): layers against NumPy, the GAN losses, saving, the bound."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from t2i import config as C
from t2i import metrics
from t2i import sharpen as sh
from t2i.errors import T2IError
from t2i.model import AlignDRAW
from tests.harness import run_layer_test

H, W, CH, E = 9, 11, 2, 5  # odd sizes and 2 channels: nothing may assume square MNIST


def _inputs(rng, batch=3, height=H, width=W, channels=CH, dim=E):
    blurry = rng.random((batch, height, width, channels)).astype("float32")
    caption = rng.normal(size=(batch, dim)).astype("float32")
    return blurry, caption


def _np_conv(x, kernel, bias, stride=1, same=True):
    """Cross-correlation of [B, H, W, Cin] with [k, k, Cin, Cout] by explicit loops."""
    k = kernel.shape[0]
    if same:
        p = (k - 1) // 2
        x = np.pad(x, ((0, 0), (p, k - 1 - p), (p, k - 1 - p), (0, 0)))
    out_h = (x.shape[1] - k) // stride + 1
    out_w = (x.shape[2] - k) // stride + 1
    out = np.zeros((x.shape[0], out_h, out_w, kernel.shape[-1]))
    for i in range(out_h):
        for j in range(out_w):
            patch = x[:, i * stride:i * stride + k, j * stride:j * stride + k, :]  # [B, k, k, Cin]
            out[:, i, j, :] = np.einsum("bhwc,hwco->bo", patch, kernel)
    return out + bias


def _randomize(rng, layer, scale=0.3):
    layer.set_weights([rng.normal(scale=scale, size=w.shape).astype("float32") for w in layer.get_weights()])


def _np(x):
    return ops.convert_to_numpy(x)


# --- layers -----------------------------------------------------------------------------

def test_generator_contract(rng):
    blurry, caption = _inputs(rng)
    run_layer_test(sh.SharpenGenerator, dict(filters=[3, 4], kernel_sizes=[3, 5, 3]), (blurry, caption),
                   [(3, H, W, CH), (3, H, W, CH)], num_weights=2 + 2 * 3)
    layer = sh.SharpenGenerator()  # the original's widths
    layer(*_inputs(rng, 1, 32, 32, 3, 7))
    shapes = [tuple(w.shape) for w in layer.weights]
    assert shapes == [(7, 1024), (1024,), (7, 7, 5, 128), (128,), (7, 7, 128, 128), (128,),
                      (5, 5, 128, 3), (3,)]
    with pytest.raises(ValueError, match="one kernel size per hidden"):
        sh.SharpenGenerator(filters=[4], kernel_sizes=[3])


def test_discriminator_contract(rng):
    blurry, caption = _inputs(rng)
    image = rng.random(blurry.shape).astype("float32")
    layer, _ = run_layer_test(sh.SharpenDiscriminator, dict(filters=4, kernel_size=3),
                              (image, blurry, caption), [(3,)], num_weights=8)
    # valid 3x3 -> 7x9, then valid 3x3 stride 2 -> 3x4
    assert tuple(layer.output_kernel.shape) == (3 * 4 * 4, 1)
    with pytest.raises(ValueError, match="too small"):
        sh.SharpenDiscriminator(filters=2, kernel_size=5)(*(x[:, :8, :8] for x in (image, blurry)), caption)


def test_generator_matches_a_numpy_reference(rng):
    blurry, caption = _inputs(rng)
    layer = sh.SharpenGenerator(filters=[3, 2], kernel_sizes=[3, 5, 3])
    layer(blurry, caption)
    _randomize(rng, layer)
    sharp, edges = (_np(t) for t in layer(blurry, caption))
    wc, bc, k1, b1, k2, b2, k3, b3 = layer.get_weights()
    plane = np.maximum(caption @ wc + bc, 0).reshape(3, H, W, 1)
    x = np.concatenate([np.zeros_like(plane), plane, blurry], -1)
    h = np.maximum(_np_conv(x, k1, b1), 0)
    h = np.maximum(_np_conv(h, k2, b2), 0)
    ref_edges = _np_conv(h, k3, b3)
    np.testing.assert_allclose(edges, ref_edges, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sharp, np.clip(blurry + ref_edges, 0, 1), rtol=1e-4, atol=1e-5)
    assert (sharp == 0).any() and (sharp == 1).any(), "the reference should exercise both clips"


def test_zero_last_convolution_is_the_identity_and_a_bias_is_added_then_clipped(rng):
    blurry, caption = _inputs(rng)
    layer = sh.SharpenGenerator(filters=[3, 2], kernel_sizes=[3, 3, 3])
    sharp, edges = layer(blurry, caption)  # the last convolution starts at zero
    np.testing.assert_array_equal(_np(edges), 0.0)
    np.testing.assert_array_equal(_np(sharp), blurry)
    _randomize(rng, layer)
    weights = layer.get_weights()
    weights[-2] = np.zeros_like(weights[-2])
    weights[-1] = np.array([0.25, -0.5], "float32")
    layer.set_weights(weights)
    sharp = _np(layer(blurry, caption)[0])
    np.testing.assert_allclose(sharp, np.clip(blurry + [0.25, -0.5], 0, 1), rtol=1e-6)


def test_discriminator_matches_a_numpy_reference(rng):
    blurry, caption = _inputs(rng)
    image = rng.random(blurry.shape).astype("float32")
    layer = sh.SharpenDiscriminator(filters=3, kernel_size=3)
    layer(image, blurry, caption)
    _randomize(rng, layer)
    wc, bc, k1, b1, k2, b2, wo, bo = layer.get_weights()
    plane = np.maximum(caption @ wc + bc, 0).reshape(3, H, W, 1)
    h = np.concatenate([image - blurry, blurry, plane], -1)
    h = np.maximum(_np_conv(h, k1, b1, same=False), 0)
    h = np.maximum(_np_conv(h, k2, b2, stride=2, same=False), 0)
    ref = h.reshape(3, -1) @ wo[:, 0] + bo[0]
    np.testing.assert_allclose(_np(layer(image, blurry, caption)), ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_np(layer(image, blurry, caption, frozen=True)), ref, rtol=1e-4, atol=1e-5)


# --- the GAN ------------------------------------------------------------------------------

def _sharpener(**kw):
    args = dict(image_height=H, image_width=W, channels=CH, caption_dim=E, generator_filters=[4, 4],
                generator_kernel_sizes=[3, 3, 3], discriminator_filters=4, discriminator_kernel_size=3)
    return sh.Sharpener(**{**args, **kw})


def _batch(rng, n=4):
    blurry, caption = _inputs(rng, n)
    real = (rng.random(blurry.shape) > 0.7).astype("float32")
    return {"blurry": 0.5 * blurry, "caption": caption, "real": real}


def test_losses_match_their_definitions_and_gradients_reach_only_their_player(rng):
    model = _sharpener(reconstruction_weight=0.5)
    _randomize(rng, model.generator, 0.2)
    x = _batch(rng)
    with tf.GradientTape(persistent=True) as tape:
        out = model(x, training=True)
        d_loss, g_loss = tf.reduce_sum(out["d_loss"]), tf.reduce_sum(out["g_loss"])
        recon = tf.reduce_sum(out["reconstruction"])
    gen, disc = model.generator.trainable_variables, model.discriminator.trainable_variables
    assert all(g is None for g in tape.gradient(d_loss, gen))
    assert all(g is None for g in tape.gradient(g_loss, disc))
    assert all(g is None for g in tape.gradient(recon, disc))
    assert all(g is not None and np.abs(g.numpy()).max() > 0 for g in tape.gradient(d_loss, disc))
    assert all(g is not None for g in tape.gradient(g_loss, gen))
    # Independent computation from the two players' outputs.
    sharp = _np(model.generator(x["blurry"], x["caption"])[0])
    real_l = _np(model.discriminator(x["real"], x["blurry"], x["caption"]))
    fake_l = _np(model.discriminator(sharp, x["blurry"], x["caption"]))
    sig = lambda v: 1 / (1 + np.exp(-v.astype(np.float64)))  # noqa: E731
    np.testing.assert_allclose(_np(out["d_loss"]), -np.log(sig(real_l)) - np.log(1 - sig(fake_l)), rtol=1e-5)
    np.testing.assert_allclose(_np(out["g_loss"]), -np.log(sig(fake_l)), rtol=1e-5)
    np.testing.assert_allclose(_np(out["reconstruction"]), np.abs(sharp - x["real"]).mean((1, 2, 3)),
                               rtol=1e-5)
    total = _np(model.compute_loss(y_pred=out))
    np.testing.assert_allclose(total, np.mean(_np(out["d_loss"]) + _np(out["g_loss"])
                                              + 0.5 * _np(out["reconstruction"])), rtol=1e-5)


def test_a_few_training_steps_sharpen_and_losses_stay_finite(rng):
    keras.utils.set_random_seed(0)
    model = _sharpener()
    model.compile(optimizer=keras.optimizers.Adam(1e-2, beta_1=0.5))
    x = _batch(rng)
    before = model.sharpen(x["blurry"], x["caption"])
    np.testing.assert_array_equal(before, x["blurry"])  # identity at initialisation
    d_before = [w.copy() for w in model.discriminator.get_weights()]
    for _ in range(3):
        logs = model.train_on_batch(x, return_dict=True)
    assert set(logs) >= {"loss", "d_loss", "g_loss", "reconstruction", "d_real", "d_fake"}
    assert all(np.isfinite(v) for v in logs.values()), logs
    assert abs(logs["loss"] - logs["d_loss"] - logs["g_loss"]) < 1e-4 * max(1.0, abs(logs["loss"]))
    after = model.sharpen(x["blurry"], x["caption"])
    assert np.abs(after - x["blurry"]).max() > 1e-3
    assert any(not np.allclose(a, b) for a, b in zip(d_before, model.discriminator.get_weights()))


def test_save_load_round_trip(tmp_path, rng):
    model = _sharpener()
    _randomize(rng, model)
    cfg = sh.SharpenConfig(image_height=H, image_width=W, channels=CH, caption_dim=E,
                           generator_filters=(4, 4), generator_kernel_sizes=(3, 3, 3), discriminator_filters=4,
                           discriminator_kernel_size=3, steps=3, batch_size=2)
    sh.save_sharpener(tmp_path / "s", cfg, model)
    cfg2, loaded = sh.load_sharpener(tmp_path / "s")
    assert cfg2 == cfg
    x = _batch(rng)
    for key in ("sharp", "edges", "d_loss", "g_loss"):
        np.testing.assert_array_equal(_np(loaded(x)[key]), _np(model(x)[key]))
    clone = sh.Sharpener.from_config(model.get_config())
    assert clone.get_config() == model.get_config()


def test_config_validation_and_json():
    cfg = sh.SharpenConfig(image_height=32, image_width=32, channels=3, caption_dim=256)
    assert sh.SharpenConfig.from_json(cfg.to_json()) == cfg
    assert cfg.architecture()["generator_filters"] == (128, 128)
    with pytest.raises(T2IError, match="blurry must be"):
        sh.SharpenConfig(image_height=32, image_width=32, channels=3, caption_dim=256, blurry="noise")
    with pytest.raises(T2IError, match="unknown sharpen config field"):
        sh.SharpenConfig.from_json('{"image_height": 1, "colour": 2}')
    with pytest.raises(T2IError, match="missing sharpen config field"):
        sh.SharpenConfig.from_json('{"image_height": 1}')


def test_missing_sharpener_names_the_fix(tmp_path):
    with pytest.raises(T2IError, match=r"has no sharpener .*t2i sharpen train --run"):
        sh.load_run_sharpener(tmp_path)


# --- with an alignDRAW model ------------------------------------------------------------

@pytest.fixture(scope="module")
def draw():
    cfg = C.tiny().override({"model.canvas_init": 0.0, "model.init_stddev": 0.3})
    model = AlignDRAW.from_config_dataclass(cfg, seed=0)
    rng = np.random.default_rng(3)
    images = (rng.random((6, 60, 60, 1)) > 0.8).astype("float32")
    tokens = np.concatenate([rng.integers(2, 24, (6, 5)), np.zeros((6, 2), int)], axis=1)
    tokens[0, 3:] = 0  # a shorter caption: padding must not enter the mean
    return model, images, tokens


def test_caption_vectors_are_the_masked_mean_of_word_states(draw):
    model, _, tokens = draw
    vectors = sh.caption_vectors(model, tokens, batch_size=4)
    words, mask = (np.asarray(_np(t)) for t in model.caption_states(tokens))
    assert vectors.shape == (6, 2 * model.caption_units)
    for i in range(6):
        np.testing.assert_allclose(vectors[i], words[i][mask[i]].mean(0), rtol=1e-5, atol=1e-6)


def test_sharpened_bound(draw, rng):
    model, images, tokens = draw
    sharpener = sh.Sharpener(60, 60, 1, 2 * model.caption_units, generator_filters=[2, 2],
                             generator_kernel_sizes=[3, 3, 3], discriminator_filters=2)
    _randomize(rng, sharpener.generator)
    weights = sharpener.generator.get_weights()
    weights[-2] = np.zeros_like(weights[-2])
    weights[-1] = np.zeros_like(weights[-1])
    sharpener.generator.set_weights(weights)  # g = identity
    plain = metrics.log_weights(model, images, tokens, 2, seed=5)
    same = sh.sharpened_log_weights(model, sharpener, images, tokens, 2, seed=5)
    np.testing.assert_allclose(same, plain, rtol=2e-5)

    weights[-1] = np.array([-0.5], "float32")  # g(p) = clip(p - 0.5, 0, 1)
    sharpener.generator.set_weights(weights)
    shifted = sh.sharpened_log_weights(model, sharpener, images, tokens, 1, seed=5)
    assert np.all(np.abs(shifted[:, 0] - plain[:, 0]) > 1.0)
    # Independent: the same noise, the Bernoulli likelihood of clip(sigmoid(c_T) - 0.5) by hand.
    noise = np.random.default_rng(5).standard_normal((6, model.num_steps, model.latent_dim)).astype("float32")
    pred = model({"images": images, "tokens": tokens, "noise": noise})
    sharp = np.clip(1 / (1 + np.exp(-_np(pred["logits"]).astype(np.float64))) - 0.5, 0, 1)
    assert ((sharp == 0) & (images == 1)).any(), "the epsilon clip should matter"
    p = np.clip(sharp, 1e-5, 1 - 1e-5)
    nll = -(images * np.log(p) + (1 - images) * np.log(1 - p)).sum((1, 2, 3))
    expected = -(nll + _np(pred["log_ratio"]).astype(np.float64).sum(-1))
    np.testing.assert_allclose(shifted[:, 0], expected, rtol=1e-5)


def test_the_sharpened_bound_refuses_a_model_of_another_likelihood(draw):
    model, images, tokens = draw
    logistic = AlignDRAW.from_config(dict(model.get_config(), likelihood="logistic"))
    sharpener = sh.Sharpener(60, 60, 1, 2 * model.caption_units, generator_filters=[2, 2],
                             generator_kernel_sizes=[3, 3, 3], discriminator_filters=2)
    with pytest.raises(ValueError, match="swaps a Bernoulli likelihood; this model's is 'logistic'"):
        sh.sharpened_log_weights(logistic, sharpener, images, tokens, 1)


JAX_SCRIPT = textwrap.dedent("""
    import numpy as np, keras
    assert keras.backend.backend() == "jax"
    from t2i.sharpen import Sharpener
    rng = np.random.default_rng(0)
    m = Sharpener(9, 11, 2, 5, generator_filters=[3, 3], generator_kernel_sizes=[3, 3, 3],
                  discriminator_filters=3, discriminator_kernel_size=3)
    m.compile(optimizer=keras.optimizers.Adam(1e-2, beta_1=0.5))
    x = {"blurry": rng.random((4, 9, 11, 2)).astype("float32") * 0.5,
         "caption": rng.normal(size=(4, 5)).astype("float32"),
         "real": (rng.random((4, 9, 11, 2)) > 0.7).astype("float32")}
    d0 = [w.copy() for w in m.discriminator.get_weights()]
    for _ in range(3):
        logs = m.train_on_batch(x, return_dict=True)
    assert all(np.isfinite(v) for v in logs.values()), logs
    assert np.abs(m.sharpen(x["blurry"], x["caption"]) - x["blurry"]).max() > 1e-3
    assert any(not np.allclose(a, b) for a, b in zip(d0, m.discriminator.get_weights()))
    print("JAX-OK", logs)
""")


def test_training_under_jax():
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    proc = subprocess.run([sys.executable, "-c", JAX_SCRIPT], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "JAX-OK" in proc.stdout
