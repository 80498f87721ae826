"""model.precision "mixed_bfloat16": bfloat16 in the drawing LSTMs' matrix products only.

The reference rounds the operands to bfloat16 with ml_dtypes (NumPy's bfloat16 type, independent
of the backend's kernels) and multiplies in float64. The layer sums exact products in float32, so
it agrees with the reference to float32 summation error, on every CPU.
"""

import dataclasses

import keras
import ml_dtypes
import numpy as np
import pytest
from keras import ops

from t2i import config as C
from t2i.layers.lstm_cell import LSTMCell
from t2i.model import AlignDRAW

EPS32 = float(np.finfo(np.float32).eps)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_lstm(x, h, c, kernel, bias, operand_dtype):
    """(h, c, summation bound): float64 LSTM step on operands rounded to `operand_dtype`.

    The bound is K * eps32 * sum_k |xh_k W_kj|, the largest error of a float32 sum of the K
    products in any order (each partial sum rounded once), for the widest output.
    """
    xh = np.concatenate([x, h], -1)
    rounded = lambda a: np.asarray(a, operand_dtype).astype(np.float64)
    z = rounded(xh) @ rounded(kernel) + bias
    bound = xh.shape[-1] * EPS32 * (np.abs(rounded(xh)) @ np.abs(rounded(kernel))).max()
    i, f, g, o = np.split(z, 4, axis=-1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c), c, bound


@pytest.mark.parametrize("matmul_dtype", ["float32", "bfloat16"])
def test_lstm_cell_matches_numpy_with_rounded_operands(matmul_dtype, rng):
    x = rng.normal(size=(4, 6)).astype("float32")
    h = rng.normal(size=(4, 5)).astype("float32")
    c = rng.normal(size=(4, 5)).astype("float32")
    cell = LSTMCell(5, init_stddev=0.5, matmul_dtype=matmul_dtype)
    got_h, got_c = (ops.convert_to_numpy(v) for v in cell(x, h, c))
    assert got_h.dtype == np.float32 and got_c.dtype == np.float32  # states stay float32
    kernel, bias = (ops.convert_to_numpy(w) for w in (cell.kernel, cell.bias))
    operand = ml_dtypes.bfloat16 if matmul_dtype == "bfloat16" else np.float32
    ref_h, ref_c, bound = numpy_lstm(x, h, c, kernel, bias, operand)
    # A pre-activation error e moves c by at most (|c| + 2) e (sigmoid' <= 1/4, tanh' <= 1) and h
    # by at most e / 4 plus c's error; the gates and states add a few float32 roundings.
    atol_c = (np.abs(c).max() + 2) * bound + 8 * EPS32 * (np.abs(c).max() + 1)
    atol_h = bound / 4 + atol_c + 8 * EPS32
    np.testing.assert_allclose(got_c, ref_c, rtol=0, atol=atol_c)
    np.testing.assert_allclose(got_h, ref_h, rtol=0, atol=atol_h)
    if matmul_dtype == "bfloat16":  # the rounding is really there: float32 operands differ
        ref32_h, _, _ = numpy_lstm(x, h, c, kernel, bias, np.float32)
        assert np.abs(got_h - ref32_h).max() > 10 * atol_h
    assert LSTMCell.from_config(cell.get_config()).matmul_dtype == matmul_dtype


def _tiny(precision):
    cfg = C.get_preset("tiny")
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, precision=precision,
                                                              init_stddev=0.3))


def test_mixed_bfloat16_step_agrees_with_float32_and_keeps_float32_weights(rng):
    models = {}
    for precision in C.PRECISIONS:
        keras.utils.set_random_seed(0)
        models[precision] = AlignDRAW.from_config_dataclass(_tiny(precision), seed=1)
    f32, bf16 = models["float32"], models["mixed_bfloat16"]
    bf16.set_weights(f32.get_weights())
    assert all(w.dtype == "float32" for w in bf16.weights)
    assert bf16.encoder_cell.matmul_dtype == "bfloat16" and f32.encoder_cell.matmul_dtype == "float32"
    cfg = _tiny("float32")
    m = cfg.model
    x = {"images": (rng.random((8, m.image_height, m.image_width, m.channels)) > 0.7).astype("float32"),
         "tokens": rng.integers(2, cfg.text.vocab_size, (8, 6)),
         "noise": rng.normal(size=(8, m.num_steps, m.latent_dim)).astype("float32")}
    a, b = f32(x), bf16(x)
    for key in ("reconstruction", "kl"):
        av, bv = ops.convert_to_numpy(a[key]), ops.convert_to_numpy(b[key])
        assert bv.dtype == np.float32
        # bfloat16 keeps 8 significant bits: per-example losses within 1%, and not bit-equal.
        np.testing.assert_allclose(bv, av, rtol=1e-2, atol=1e-2)
    assert not np.array_equal(ops.convert_to_numpy(a["logits"]), ops.convert_to_numpy(b["logits"]))
    # One optimizer step from the same weights moves both models the same way: the updates of
    # all weights, as one vector, point the same way (cosine) and have the same length, within 2%.
    before = np.concatenate([w.ravel() for w in f32.get_weights()])
    updates = []
    for model in (f32, bf16):
        model.compile(optimizer=keras.optimizers.SGD(1e-3))
        model.train_on_batch(x)
        updates.append(np.concatenate([w.ravel() for w in model.get_weights()]) - before)
    ua, ub = updates
    assert np.linalg.norm(ua) > 0
    assert ua @ ub / (np.linalg.norm(ua) * np.linalg.norm(ub)) > 0.98
    assert abs(np.linalg.norm(ub) / np.linalg.norm(ua) - 1) < 0.02


def test_precision_round_trips_and_rejects_unknown_values():
    cfg = _tiny("mixed_bfloat16")
    assert C.ExperimentConfig.from_json(cfg.to_json()).model.precision == "mixed_bfloat16"
    assert C.ExperimentConfig.from_json(C.get_preset("tiny").to_json()).model.precision == "float32"
    model = AlignDRAW.from_config_dataclass(cfg)
    assert AlignDRAW.from_config(model.get_config()).precision == "mixed_bfloat16"
    with pytest.raises(Exception, match="model.precision must be one of"):
        cfg.override({"model.precision": "float16"})
