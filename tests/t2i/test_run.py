"""Run directories, packed runs and the shipped pretrained model."""

import json
from pathlib import Path

import numpy as np
import pytest

from t2i_cli import commands as cli
from t2i import run as run_lib
from t2i.errors import T2IError
from t2i.text import CaptionTokenizer
from tests.runs import copy_run

# Issue 4: the shipped model holds out exactly these (both phrasings of each).
HELD_OUT = ["2 left of 9", "6 left of 3", "6 above 2", "2 above 4",
            "4 top left", "5 top right", "8 bottom left", "9 bottom right"]


@pytest.fixture(scope="module")
def tiny_run(visible_run, tmp_path_factory):
    return copy_run(visible_run, tmp_path_factory.mktemp("run") / "r")


def test_packed_run_generates_what_the_full_run_does(tiny_run, tmp_path):
    packed = run_lib.pack_run(tiny_run, tmp_path / "packed")
    assert run_lib.is_packed(packed) and not run_lib.is_packed(tiny_run)
    with np.load(packed / run_lib.PACKED_WEIGHTS) as w:
        assert all(w[k].dtype == np.float16 for k in w.files)
    assert json.loads((packed / run_lib.RUN_INFO).read_text())["packed_from"]["dtype"] == "float16"
    config, full = run_lib.load_model(tiny_run)
    _, small = run_lib.load_model(packed)
    for a, b in zip(full.weights, small.weights):  # float16 rounding only
        np.testing.assert_allclose(np.asarray(b), np.asarray(a).astype(np.float16).astype(np.float32))
    tokens = CaptionTokenizer(config.text).encode(["the digit 3 is at the top of the digit 1 ."] * 3)
    a, b = full.generate(tokens, [0, 1, 2])["images"], small.generate(tokens, [0, 1, 2])["images"]
    assert np.abs(a - b).max() < 2e-3 and np.abs(a - a[::-1]).max() > 0.01


def test_packed_weights_that_do_not_fit_are_a_clear_error(tiny_run, tmp_path):
    packed = run_lib.pack_run(tiny_run, tmp_path / "packed")
    with np.load(packed / run_lib.PACKED_WEIGHTS) as w:
        arrays = {k: w[k] for k in w.files}
    first = sorted(arrays)[0]
    np.savez(packed / run_lib.PACKED_WEIGHTS, **{k: v for k, v in arrays.items() if k != first})
    with pytest.raises(T2IError, match="does not fit this model: missing"):
        run_lib.load_model(packed)
    (packed / run_lib.PACKED_WEIGHTS).write_bytes(b"not an npz")
    with pytest.raises(T2IError, match="cannot read packed weights"):
        run_lib.load_model(packed)


@pytest.fixture(scope="module")
def shipped():
    """(config, model): the shipped model as `load_model(None)` gives it, loaded once."""
    return run_lib.load_model(None)


def test_shipped_model_loads_and_generates(shipped):
    path = run_lib.resolve_run(None)
    assert path == run_lib.PRETRAINED and run_lib.is_packed(path)
    assert (path / run_lib.PACKED_WEIGHTS).stat().st_size < 15e6
    config, model = shipped
    assert (config.name, config.model.num_steps, config.model.conditioning) == ("mnist_captions", 32, "align")
    assert sorted(config.data.held_out) == sorted(HELD_OUT) and config.data.mnist.num_held_out == 0
    tokens = CaptionTokenizer(config.text).encode(["the digit 7 is on the left of the digit 1 ."] * 2)
    images = model.generate(tokens, [0, 0])["images"]
    assert images.shape == (2, 60, 60, 1)
    np.testing.assert_allclose(images[0], images[1], atol=1e-5)  # same caption and seed
    assert 0.01 < images.mean() < 0.5  # ink on a dark canvas, not blank or saturated


def test_shipped_model_runs_the_while_loop_and_the_unrolled_graph_draws_the_same(shipped):
    # The shipped config names the loop form (faster to start and to run); `loop` overrides it.
    config, model = shipped
    assert config.model.loop == "while" and model.loop == "while"
    fast_config, fast = run_lib.load_model(None, loop="unrolled")
    assert fast_config.model.loop == "unrolled" and fast.loop == "unrolled"
    tokens = CaptionTokenizer(config.text).encode(["the digit 3 is at the top of the digit 1 .",
                                                   "the digit 4 is at the top left of the image ."])
    a = model.generate(tokens, [0, 1])["images"]
    b = fast.generate(tokens, [0, 1])["images"]
    np.testing.assert_allclose(b, a, atol=1e-5)
    with pytest.raises(T2IError, match="model.loop must be one of"):
        run_lib.load_model(None, loop="scan")


def test_generate_without_run_uses_the_shipped_model(tmp_path, capsys):
    out = tmp_path / "x.npz"
    assert cli.main(["generate", "the digit 7 is on the left of the digit 1 .", "-o", str(out)]) == 0
    assert "shipped pretrained model" in capsys.readouterr().err
    assert np.load(out)["images"].shape == (1, 60, 60, 1)


def test_resolve_run_passes_named_runs_through(tmp_path):
    assert run_lib.resolve_run(tmp_path) == tmp_path
    assert run_lib.resolve_run("pretrained") == run_lib.PRETRAINED


def test_shipped_models_are_found_by_name(tmp_path, monkeypatch):
    root = tmp_path / "t2i" / "pretrained"
    for name in ("mnist_captions", "scenes_32"):
        (root / name).mkdir(parents=True)
        (root / name / "config.json").write_text("{}")
    (root / "half-copied").mkdir()  # no config.json: not a model
    monkeypatch.setattr(run_lib, "PRETRAINED_ROOT", root)
    monkeypatch.setattr(run_lib, "PRETRAINED", root / "mnist_captions")
    assert run_lib.shipped_models() == ["mnist_captions", "scenes_32"]
    assert run_lib.resolve_run("pretrained:scenes_32") == root / "scenes_32"
    assert run_lib.resolve_run("pretrained:mnist_captions") == run_lib.resolve_run(None)
    assert run_lib.run_label(root / "scenes_32") == "t2i/pretrained/scenes_32"
    with pytest.raises(T2IError, match="no shipped model 'coco'; t2i ships: mnist_captions, scenes_32"):
        run_lib.resolve_run("pretrained:coco")


def test_export_without_run_exports_the_shipped_model(tmp_path, capsys):
    assert cli.main(["export", "--out", str(tmp_path / "t2i")]) == 0
    version = tmp_path / "t2i" / "1"
    assert (version / "saved_model.pb").is_file()
    assets = json.loads((version / "assets" / "t2i_config.json").read_text())
    assert sorted(assets["data"]["held_out"]) == sorted(HELD_OUT)


def test_pack_command(tiny_run, tmp_path, capsys, monkeypatch):
    assert run_lib.main(["pack", str(tiny_run), str(tmp_path / "p"), "--checkpoint", "best",
                         "--extra", str(tiny_run / "config.json")]) == 0
    assert run_lib.is_packed(tmp_path / "p")
    assert run_lib.main(["pack", str(tmp_path / "nothing"), str(tmp_path / "q")]) == 2
    assert "does not exist" in capsys.readouterr().err
    # An extra file from where the command runs, or inside the run; a missing one stops it.
    (tmp_path / "report.md").write_text("figures")
    monkeypatch.chdir(tmp_path)
    assert run_lib.main(["pack", str(tiny_run), "r", "--extra", "report.md", "log.csv"]) == 0
    assert (tmp_path / "r" / "report.md").read_text() == "figures" and (tmp_path / "r" / "log.csv").is_file()
    assert run_lib.main(["pack", str(tiny_run), "s", "--extra", "missing.md"]) == 2
    assert "--extra missing.md: no such file" in capsys.readouterr().err and not (tmp_path / "s").exists()


def test_reports_name_runs_as_given_and_the_shipped_one_by_its_package_path(tmp_path):
    assert run_lib.run_label("runs/mnist") == "runs/mnist"
    assert run_lib.run_label(tmp_path / "r") == str(tmp_path / "r")
    label = run_lib.run_label(run_lib.resolve_run(None))
    assert label == "t2i/pretrained/mnist_captions" and not Path(label).is_absolute()
