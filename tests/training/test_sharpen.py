"""`t2i sharpen train` on a tiny run, then generation, evaluation and export with its sharpener."""

import csv
import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from t2i import run as run_lib
from t2i import sharpen as sh
from t2i.errors import T2IError
from t2i_cli.commands import main
from t2i.text import CaptionTokenizer
from t2i.visualize import to_uint8
from tests.runs import copy_run

CAPTIONS = ["the digit 7 is on the left of the digit 1 .", "the digit 3 is at the top of the digit 8 ."]
TINY = ["--generator-filters", "4", "4", "--discriminator-filters", "4"]


@pytest.fixture(scope="module")
def runs(visible_run, tmp_path_factory):
    """(a run with a sharpener trained by the CLI, the same run without one)."""
    root = tmp_path_factory.mktemp("sharpen")
    run_dir = copy_run(visible_run, root / "run")
    plain = root / "plain"
    shutil.copytree(run_dir, plain)
    assert main(["sharpen", "train", "--run", str(run_dir), "--steps", "3", "--batch-size", "4",
                 "--learning-rate", "0.01", "--log-every", "1", *TINY]) == 0
    return run_dir, plain


def _sharpen_inputs(run_dir, captions, seeds):
    config, model = run_lib.load_model(run_dir)
    tokens = CaptionTokenizer(config.text).encode(captions)
    return model, tokens, model.generate(tokens, seeds)


def test_cli_writes_a_complete_sharpener(runs):
    run_dir, _ = runs
    d = run_dir / "sharpen"
    assert sorted(p.name for p in d.iterdir()) == ["config.json", "log.csv", "samples.png",
                                                   "sharpener.weights.h5"]
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".sharpen")], "temporary folder left"
    cfg = sh.SharpenConfig.from_json((d / "config.json").read_text())
    assert (cfg.steps, cfg.batch_size, cfg.generator_filters, cfg.discriminator_filters) == (3, 4, (4, 4), 4)
    assert (cfg.image_height, cfg.image_width, cfg.channels, cfg.caption_dim) == (60, 60, 1, 16)
    rows = list(csv.DictReader(open(d / "log.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    for r in rows:
        assert all(np.isfinite(float(r[k])) for k in ("loss", "d_loss", "g_loss"))
        assert abs(float(r["loss"]) - float(r["d_loss"]) - float(r["g_loss"])) < 1e-4 * float(r["loss"])


def test_trained_sharpener_changes_the_samples(runs):
    run_dir, _ = runs
    model, tokens, blurry = _sharpen_inputs(run_dir, CAPTIONS, [0, 1])
    _, sharpener = sh.load_run_sharpener(run_dir, model)
    out = sh.generate_sharpened(model, sharpener, tokens, [0, 1])
    np.testing.assert_array_equal(out["blurry"], blurry["images"])
    assert np.abs(out["images"] - out["blurry"]).max() > 1e-3
    assert 0 <= out["images"].min() and out["images"].max() <= 1


def test_generate_sharpen_cli(runs, tmp_path, capsys):
    run_dir, plain = runs
    assert main(["generate", "--run", str(run_dir), "--sharpen", *CAPTIONS, "-o", str(tmp_path / "s.npz"),
                 "--seed", "4"]) == 0
    assert main(["generate", "--run", str(run_dir), *CAPTIONS, "-o", str(tmp_path / "b.npz"),
                 "--seed", "4"]) == 0
    assert main(["generate", "--run", str(run_dir), "--sharpen", CAPTIONS[0], "-o", str(tmp_path / "s.png"),
                 "--samples", "2"]) == 0
    assert (tmp_path / "s.png").is_file()
    sharp, blurry = np.load(tmp_path / "s.npz")["images"], np.load(tmp_path / "b.npz")["images"]
    model, tokens, _ = _sharpen_inputs(run_dir, CAPTIONS, [4, 5])
    _, sharpener = sh.load_run_sharpener(run_dir)
    expected = sh.generate_sharpened(model, sharpener, tokens, [4, 5])
    np.testing.assert_array_equal(sharp, to_uint8(expected["images"]))
    np.testing.assert_array_equal(blurry, to_uint8(expected["blurry"]))
    assert (sharp != blurry).any()

    capsys.readouterr()
    assert main(["generate", "--run", str(plain), "--sharpen", CAPTIONS[0],
                 "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("t2i: error:") and f"t2i sharpen train --run {plain}" in err
    assert not (tmp_path / "x.png").exists()


def test_sharpen_train_errors(runs, tmp_path, capsys):
    assert main(["sharpen", "train", "--run", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["sharpen", "train", "--run", str(runs[1]), "--steps", "0"]) == 2
    assert "steps and batch_size must be >= 1" in capsys.readouterr().err
    assert not (runs[1] / "sharpen").exists()
    from training.sharpen import train_sharpener

    with pytest.raises(T2IError, match="unknown sharpener settings: image_height, steps_total"):
        train_sharpener(runs[1], steps_total=3, image_height=8)
    with pytest.raises(T2IError, match="log_every must be >= 1"):
        train_sharpener(runs[1], log_every=0)
    assert not (runs[1] / "sharpen").exists()


def test_cli_defaults_are_the_sharpen_configs(runs):
    """The command line states SharpenConfig's defaults and passes only what was given."""
    import dataclasses

    from t2i_cli.commands import _parser

    defaults = {f.name: f.default for f in dataclasses.fields(sh.SharpenConfig)}
    cfg = sh.SharpenConfig.from_json((runs[0] / "sharpen" / "config.json").read_text())
    for name in ("learning_rate", "beta_1", "blurry", "checkpoint", "seed", "reconstruction_weight"):
        assert getattr(cfg, name) == (0.01 if name == "learning_rate" else defaults[name])
    args = _parser().parse_args(["sharpen", "train", "--run", "r"])
    assert all(getattr(args, k) is None for k in ("steps", "batch_size", "learning_rate", "blurry"))


def test_evaluate_reports_the_sharpened_bound(runs, tmp_path):
    from training.evaluate import evaluate

    run_dir, plain = runs
    # No composition probe: 3 x 4,800 generated images that this test does not look at.
    kw = dict(examples=8, iw_examples=2, iw_k=(1,), ssi_captions=2, samples=2, retrieval_queries=0,
              checkpoint="last", probe_samples=0)
    report = evaluate(run_dir, tmp_path / "r", **kw)
    b = report["bound_sharpened"]
    assert np.isfinite(b["all"]) and b["epsilon"] == sh.BOUND_EPSILON
    assert b["all"] != report["lower_bound"]["all"]
    assert "after sharpening" in (tmp_path / "r" / "metrics.md").read_text()
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["bound_sharpened"] == b
    assert "bound_sharpened" not in evaluate(plain, tmp_path / "p", **kw)


def test_export_adds_a_sharpened_signature(runs, tmp_path):
    from export.export_savedmodel import export_model

    run_dir, _ = runs
    path = export_model(run_dir, tmp_path / "models")
    assert sh.SharpenConfig.from_json((path / "assets" / "sharpen_config.json").read_text()) == \
        sh.load_run_sharpener(run_dir)[0]
    loaded = tf.saved_model.load(str(path))
    assert {"serving_default", "trace", "score", "sharpened"} <= set(loaded.signatures)
    seeds = [11, 12]
    args = dict(captions=tf.constant(CAPTIONS), seed=tf.constant(seeds, tf.int64))
    served = loaded.signatures["sharpened"](**args)
    plain = loaded.signatures["serving_default"](**args)
    assert set(served) == {"images", "alignments"} and served["images"].dtype == tf.uint8
    model, tokens, _ = _sharpen_inputs(run_dir, CAPTIONS, seeds)
    _, sharpener = sh.load_run_sharpener(run_dir)
    expected = sh.generate_sharpened(model, sharpener, tokens, seeds)
    diff = np.abs(served["images"].numpy().astype(int) - to_uint8(expected["images"]).astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.01
    np.testing.assert_allclose(served["alignments"].numpy(), expected["alignments"], atol=1e-5)
    blurry = np.abs(plain["images"].numpy().astype(int) - to_uint8(expected["blurry"]).astype(int))
    assert blurry.max() <= 1  # serving_default is still the unsharpened sample
    assert (served["images"].numpy() != plain["images"].numpy()).any()


def test_evaluate_sharpen_measures_the_sharpened_images(runs, tmp_path):
    """--sharpen: caption fidelity of g(drawn image); with g = identity it is the plain figure,
    with g = 0 everywhere it is the fidelity of blank canvases, computed here."""
    from t2i.data.datasets import open_datasets
    from t2i.digit_classifier import caption_fidelity, load_classifier
    from training.evaluate import evaluate

    run_dir = copy_run(runs[0], tmp_path / "run")
    kw = dict(examples=8, iw_examples=2, iw_k=(1,), ssi_captions=2, samples=2, retrieval_queries=0,
              checkpoint="last", probe_samples=0)
    plain = evaluate(run_dir, tmp_path / "p", **kw)
    config, sharpener = sh.load_run_sharpener(run_dir)
    weights = sharpener.generator.get_weights()
    weights[-2], weights[-1] = np.zeros_like(weights[-2]), np.zeros_like(weights[-1])
    sharpener.generator.set_weights(weights)  # g = identity
    sh.save_sharpener(sh.sharpen_dir(run_dir), config, sharpener)
    same = evaluate(run_dir, tmp_path / "s", sharpen=True, **kw)
    assert same["sharpened"] is True and same["fidelity"] == plain["fidelity"]
    assert "measured on the sharpened images" in (tmp_path / "s" / "metrics.md").read_text()
    weights[-1] = np.full_like(weights[-1], -2.0)  # g = clip(x - 2, 0, 1) = 0
    sharpener.generator.set_weights(weights)
    sh.save_sharpener(sh.sharpen_dir(run_dir), config, sharpener)
    blank = evaluate(run_dir, tmp_path / "b", sharpen=True, **kw)
    _, _, data = open_datasets(run_lib.load_run_config(run_dir))
    images, _, held, layouts = data.test_examples.evaluation_set(8)
    right = caption_fidelity(load_classifier(), np.zeros_like(images), layouts.types, layouts.a, layouts.b)
    assert blank["fidelity"]["all"] == pytest.approx(right.mean())
    with pytest.raises(T2IError, match="has no sharpener"):
        evaluate(runs[1], tmp_path / "n", sharpen=True, **kw)
