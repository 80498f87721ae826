"""Caption dropout (the learned null caption) and classifier-free guided sampling."""

import numpy as np
import pytest
from keras import ops

from t2i import config as C
from t2i.errors import T2IError
from t2i.guidance import guided_sample
from t2i.layers.null_caption import NullCaption
from t2i.model import AlignDRAW

L = 12


def _model(**overrides):
    cfg = C.tiny().override({"model.canvas_init": 0.0, "model.init_stddev": 0.3,
                             **{f"model.{k}": v for k, v in overrides.items()}})
    return AlignDRAW.from_config_dataclass(cfg, seed=1)


def _tokens(rng, n):
    tokens = rng.integers(2, 24, size=(n, L))
    tokens[n // 2:, 9:] = 0
    return tokens


def _np(x):
    return ops.convert_to_numpy(x)


def test_null_caption_layer_replaces_only_the_dropped_rows(rng):
    layer = NullCaption(6)
    layer.build()
    layer.state.assign(np.arange(1.0, 7.0, dtype="float32"))
    words = rng.normal(size=(3, 5, 6)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], bool)
    got_words, got_mask = map(_np, layer(words, mask, np.array([False, True, False])))
    want_words, want_mask = words.copy(), mask.copy()
    want_words[1] = 0.0
    want_words[1, 0] = np.arange(1.0, 7.0)
    want_mask[1] = [True, False, False, False, False]
    np.testing.assert_array_equal(got_words, want_words)
    np.testing.assert_array_equal(got_mask, want_mask)
    assert NullCaption.from_config(layer.get_config()).width == 6


def test_caption_dropout_round_trips_and_the_paper_model_has_no_null_caption():
    cfg = C.tiny().override({"model.caption_dropout": "0.2"})
    assert C.ExperimentConfig.from_json(cfg.to_json()).model.caption_dropout == 0.2
    with pytest.raises(T2IError, match="caption_dropout"):
        C.tiny().override({"model.caption_dropout": "1"})
    plain, dropped = _model(), _model(caption_dropout=0.2)
    assert plain.null_caption is None and C.mnist_captions().model.caption_dropout == 0.0
    # One extra weight vector of the word-state width, nothing else.
    assert dropped.count_params() - plain.count_params() == 2 * C.tiny().model.caption_units
    again = AlignDRAW.from_config(dropped.get_config())
    assert again.caption_dropout == 0.2 and again.null_caption is not None


def test_training_drops_captions_at_the_rate_and_a_dropped_caption_is_the_null_caption(rng):
    model = _model(caption_dropout=0.3)
    model.null_caption.state.assign(rng.normal(size=(16,)).astype("float32"))
    n = 400
    x = {"images": rng.random((n, 60, 60, 1)).astype("float32"), "tokens": _tokens(rng, n),
         "noise": rng.normal(size=(n, 3, 4)).astype("float32")}
    out = model(x, training=True)
    dropped = _np(out["caption_dropped"])
    assert 0.22 < dropped.mean() < 0.38
    # The same pass with that mask given explicitly (no draw) reproduces it ...
    again = model({**x, "drop_caption": dropped}, training=False)
    np.testing.assert_allclose(_np(again["reconstruction"]), _np(out["reconstruction"]), rtol=1e-5)
    # ... and a dropped row is the model fed the null caption's word states directly.
    words, mask = model.null_caption.null_states(n, L)
    null = model({"images": x["images"], "noise": x["noise"], "words": words, "word_mask": mask})
    np.testing.assert_allclose(_np(again["kl"])[dropped], _np(null["kl"])[dropped], rtol=1e-5, atol=1e-6)
    assert not np.allclose(_np(again["kl"])[~dropped], _np(null["kl"])[~dropped])
    # Evaluation (training=False) never drops.
    assert "caption_dropped" not in model(x, training=False)


def test_guidance_one_is_the_conditional_model_and_zero_the_null_caption(rng):
    model = _model(caption_dropout=0.2)
    model.null_caption.state.assign(rng.normal(size=(16,)).astype("float32"))
    tokens = _tokens(rng, 6)
    noise = rng.normal(size=(6, 3, 4)).astype("float32")
    cond = _np(model.sample(tokens, noise)["images"])
    np.testing.assert_allclose(_np(guided_sample(model, tokens, noise, 1.0)["images"]), cond, atol=1e-6)
    words, mask = model.null_caption.null_states(6, L)
    zero = np.zeros_like(noise)
    uncond = _np(model.sample((words, mask), zero)["images"])
    np.testing.assert_allclose(_np(guided_sample(model, tokens, zero, 0.0)["images"]), uncond, atol=1e-6)
    # g > 1 extrapolates: at eps = 0, with writes additive, the guided logits leave the
    # segment between the two streams' logits on the conditional side.
    g2 = _np(guided_sample(model, tokens, zero, 2.0)["images"])
    assert not np.allclose(g2, _np(model.sample(tokens, zero)["images"]), atol=1e-4)
    # Latent-only guidance (canvas=False): the conditional stream's canvas under guided latents;
    # at g = 1 the conditional model again, at g = 2 neither that nor the canvas-guided image.
    np.testing.assert_allclose(_np(guided_sample(model, tokens, noise, 1.0, canvas=False)["images"]), cond,
                               atol=1e-6)
    latent_only = _np(guided_sample(model, tokens, zero, 2.0, canvas=False)["images"])
    assert not np.allclose(latent_only, g2, atol=1e-4)
    assert not np.allclose(latent_only, _np(model.sample(tokens, zero)["images"]), atol=1e-4)


def test_generate_with_guidance_is_reproducible_and_needs_a_null_caption(rng):
    model = _model(caption_dropout=0.2)
    model.null_caption.state.assign(rng.normal(size=(16,)).astype("float32"))
    tokens = _tokens(rng, 4)
    g = 3.0
    a = model.generate(tokens, [0, 1, 2, 3], guidance=g, trace=True)
    b = model.generate(tokens[:2], [0, 1], guidance=g)
    # Batch 4 vs 2 rounds differently; guidance scales that by g (cond) + (g - 1) (uncond), over the
    # 1e-6 that unguided images get (test_model's batch independence).
    np.testing.assert_allclose(a["images"][:2], b["images"], atol=(2 * g - 1) * 1e-6)
    assert a["canvases"].shape == (4, 3, 60, 60, 1) and a["alignments"].shape == (4, 3, L)
    np.testing.assert_allclose(a["canvases"][:, -1], a["images"], atol=1e-6)
    np.testing.assert_allclose(model.generate(tokens, [0, 1, 2, 3], guidance=1.0)["images"],
                               model.generate(tokens, [0, 1, 2, 3])["images"])
    with pytest.raises(T2IError, match="caption_dropout"):
        _model().generate(tokens, [0, 1, 2, 3], guidance=2.0)
    with pytest.raises(T2IError, match="guidance"):
        model.generate(tokens, [0, 1, 2, 3], guidance=-1.0)


@pytest.fixture(scope="module")
def guided_run(plain_run, tmp_path_factory):
    """A tiny run with caption dropout, warm-started from the shared `plain_run`: the
    guided-sampling and the warm-start tests check the same one short training."""
    from tests.runs import train_tiny_run

    return train_tiny_run(tmp_path_factory.mktemp("guided") / "run",
                          {"train.init_from": str(plain_run), "model.caption_dropout": 0.25})


def test_trains_under_tiny_saves_the_null_caption_and_generates_guided(guided_run, tmp_path):
    from t2i import run as run_lib
    from t2i_cli.generate import generate_files

    run = guided_run
    config, model = run_lib.load_model(run)
    assert config.model.caption_dropout == 0.25
    # plain_run has no null caption, so the warm start left it at its zero init.
    assert np.abs(_np(model.null_caption.state)).max() > 0  # trained away from its zero init
    packed = run_lib.pack_run(run, tmp_path / "packed")
    _, loaded = run_lib.load_model(packed)
    np.testing.assert_allclose(_np(loaded.null_caption.state), _np(model.null_caption.state), rtol=1e-3, atol=1e-6)  # float16
    out = generate_files(run, ["the digit 2 is on the left of the digit 9 ."], tmp_path / "g.npz",
                         guidance=2.0)
    assert np.load(out[0])["images"].shape == (1, 60, 60, 1)


def test_warm_start_copies_a_runs_weights_and_keeps_the_new_null_caption(plain_run, guided_run):
    from t2i import run as run_lib

    source = plain_run
    _, trained = run_lib.load_model(source, "best")
    model = _model(caption_dropout=0.2)
    model.null_caption.state.assign(np.full((16,), 0.5, "float32"))
    # tiny's own init differs from the test's (_model has larger weights); warm_start overrides it.
    assert run_lib.warm_start(model, source) == ["null_caption/state"]
    for v in trained.weights:
        match = [w for w in model.weights if run_lib._weight_key(w) == run_lib._weight_key(v)]
        np.testing.assert_array_equal(_np(match[0]), _np(v))
    np.testing.assert_array_equal(_np(model.null_caption.state), 0.5)
    with pytest.raises(T2IError, match="has shape"):
        run_lib.warm_start(_model(latent_dim=5), source)
    # A run that starts from it trains (guided_run) and keeps the option in its config.
    assert run_lib.load_run_config(guided_run).train.init_from == str(source)
