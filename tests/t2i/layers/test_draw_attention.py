import numpy as np
import pytest
from keras import ops

from t2i.layers.draw_attention import (DrawReadAttention, DrawWriteAttention, attention_params,
                                       filterbank, read_glimpse, write_patch)
from tests.harness import run_layer_test


def numpy_filterbank(gx, gy, delta, var, height, width, n):
    """DRAW eqs. 19-26, written as plain loops, 0-based pixels, symmetric grid."""
    fx = np.zeros((n, width))
    fy = np.zeros((n, height))
    for i in range(n):
        mu_x = gx + (i - (n - 1) / 2) * delta
        mu_y = gy + (i - (n - 1) / 2) * delta
        for a in range(width):
            fx[i, a] = np.exp(-((a - mu_x) ** 2) / (2 * var))
        for b in range(height):
            fy[i, b] = np.exp(-((b - mu_y) ** 2) / (2 * var))
        fx[i] /= fx[i].sum() + 1e-4
        fy[i] /= fy[i].sum() + 1e-4
    return fx, fy


def numpy_read(image, fx, fy):
    """patch[i, j, c] = sum_h sum_w fy[i, h] image[h, w, c] fx[j, w], as a double loop."""
    n, c = fx.shape[0], image.shape[-1]
    patch = np.zeros((n, n, c))
    for i in range(n):
        for j in range(n):
            for ch in range(c):
                patch[i, j, ch] = np.sum(fy[i][:, None] * image[:, :, ch] * fx[j][None, :])
    return patch


@pytest.mark.parametrize("h, w", [(11, 13), (12, 12)])  # square images share one bank computation
def test_filterbank_matches_numpy_double_loop(h, w):
    n = 4
    gx = np.array([[3.2], [7.0]], "float32")
    gy = np.array([[5.5], [1.0]], "float32")
    delta = np.array([[1.7], [0.6]], "float32")
    var = np.array([[2.3], [0.8]], "float32")
    fx, fy = filterbank(gx, gy, delta, var, h, w, n)
    for b in range(2):
        ref_x, ref_y = numpy_filterbank(gx[b, 0], gy[b, 0], delta[b, 0], var[b, 0], h, w, n)
        np.testing.assert_allclose(ops.convert_to_numpy(fx)[b], ref_x, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ops.convert_to_numpy(fy)[b], ref_y, rtol=1e-5, atol=1e-6)


def test_attention_params_formulas():
    raw = np.array([[0.0, 0.0, 0.0, np.log(4.0), np.log(2.0)],
                    [1.0, -1.0, np.log(0.5), 0.0, 0.0]], "float32")
    gx, gy, delta, var, gamma = (ops.convert_to_numpy(v)[:, 0] for v in attention_params(raw, 20, 30, 5))
    # g = (A + 1) / 2 (g~ + 1) - 1, 0-based: g~ = 0 is the image centre (A - 1) / 2.
    np.testing.assert_allclose(gx, [(30 - 1) / 2, 31 - 1])
    np.testing.assert_allclose(gy, [(20 - 1) / 2, -1])
    np.testing.assert_allclose(delta, [29 / 4, 29 / 4 * 0.5], rtol=1e-6)
    np.testing.assert_allclose(var, [4.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(gamma, [2.0, 1.0], rtol=1e-6)


@pytest.mark.parametrize("channels", [1, 3])
def test_read_matches_numpy(channels, rng):
    h, w, n = 9, 12, 3
    images = rng.random((2, h, w, channels)).astype("float32")
    gx, gy = np.array([[4.0], [6.5]], "f"), np.array([[3.0], [4.2]], "f")
    delta, var = np.array([[2.0], [1.1]], "f"), np.array([[1.5], [0.7]], "f")
    fx, fy = filterbank(gx, gy, delta, var, h, w, n)
    got = ops.convert_to_numpy(read_glimpse(images, fx, fy))
    for b in range(2):
        ref = numpy_read(images[b], ops.convert_to_numpy(fx)[b], ops.convert_to_numpy(fy)[b])
        np.testing.assert_allclose(got[b], ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("channels", [1, 3])
def test_write_is_adjoint_of_read(channels, rng):
    h, w, n, batch = 10, 14, 4, 3
    raw = rng.normal(size=(batch, 5)).astype("float32") * 0.5
    gx, gy, delta, var, _ = attention_params(raw, h, w, n)
    fx, fy = filterbank(gx, gy, delta, var, h, w, n)
    x = rng.normal(size=(batch, h, w, channels)).astype("float32")
    p = rng.normal(size=(batch, n, n, channels)).astype("float32")
    lhs = np.sum(ops.convert_to_numpy(read_glimpse(x, fx, fy)) * p, axis=(1, 2, 3))
    rhs = np.sum(x * ops.convert_to_numpy(write_patch(p, fx, fy)), axis=(1, 2, 3))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-4, atol=1e-4)


def test_centred_stride_one_glimpse_is_the_crop(rng):
    h = w = 60
    n = 8
    image = rng.random((1, h, w, 1)).astype("float32")
    # g~ = 0 -> centre 29.5; log delta~ so that delta = 1; tiny variance.
    raw = np.array([[0.0, 0.0, np.log((n - 1) / (w - 1)), np.log(1e-3), 0.0]], "float32")
    gx, gy, delta, var, gamma = attention_params(raw, h, w, n)
    fx, fy = filterbank(gx, gy, delta, var, h, w, n)
    patch = ops.convert_to_numpy(read_glimpse(image, fx, fy))[0, :, :, 0]
    np.testing.assert_allclose(patch, image[0, 26:34, 26:34, 0], rtol=1e-3, atol=1e-4)


def test_read_layer_contract(rng):
    state = rng.normal(size=(2, 7)).astype("float32")
    images = rng.random((2, 12, 12, 3)).astype("float32")
    kwargs = dict(image_height=12, image_width=12, channels=3, glimpse_size=3, init_stddev=0.01)
    run_layer_test(DrawReadAttention, kwargs, (images, images, state), [(2, 2 * 3 * 9)], num_weights=2)


def test_read_layer_output_is_gamma_times_both_glimpses_channel_major(rng):
    state = rng.normal(size=(2, 7)).astype("float32")
    images = rng.random((2, 12, 12, 3)).astype("float32")
    errors = rng.normal(size=(2, 12, 12, 3)).astype("float32")
    layer = DrawReadAttention(image_height=12, image_width=12, channels=3, glimpse_size=3, init_stddev=0.5)
    out = ops.convert_to_numpy(layer(images, errors, state))
    gx, gy, delta, var, gamma = (ops.convert_to_numpy(v) for v in
                                 attention_params(layer.params(state), 12, 12, 3))
    for b in range(2):
        fx, fy = numpy_filterbank(gx[b, 0], gy[b, 0], delta[b, 0], var[b, 0], 12, 12, 3)
        planes = [numpy_read(x[b], fx, fy).transpose(2, 0, 1) for x in (images, errors)]  # [C, N, N]
        expected = gamma[b, 0] * np.concatenate([p.reshape(-1) for p in planes])
        np.testing.assert_allclose(out[b], expected, rtol=1e-4, atol=1e-5)


def test_write_layer_contract_and_gamma(rng):
    state = rng.normal(size=(2, 7)).astype("float32")
    kwargs = dict(image_height=12, image_width=10, channels=3, glimpse_size=4, init_stddev=0.5)
    layer, (out,) = run_layer_test(DrawWriteAttention, kwargs, (state,), [(2, 12, 10, 3)], num_weights=4)
    # The layer's output is write_patch(K) / gamma with the filters of its own parameters.
    raw = layer.params(state)
    gx, gy, delta, var, gamma = attention_params(raw, 12, 10, 4)
    fx, fy = filterbank(gx, gy, delta, var, 12, 10, 4)
    k = np.transpose(ops.convert_to_numpy(layer.patch(state)).reshape(2, 3, 4, 4), (0, 2, 3, 1))
    expected = ops.convert_to_numpy(write_patch(k, fx, fy)) / ops.convert_to_numpy(gamma)[:, :, None, None]
    np.testing.assert_allclose(ops.convert_to_numpy(out), expected, rtol=1e-5, atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="channels"):
        DrawReadAttention(image_height=4, image_width=4, channels=2, glimpse_size=2)
    with pytest.raises(ValueError, match="glimpse_size"):
        DrawWriteAttention(image_height=4, image_width=4, channels=1, glimpse_size=1)
