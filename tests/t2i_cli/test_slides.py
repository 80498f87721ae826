"""`t2i slides`: the slides' rows drawn from a (tiny) scenes run, measured, and its mistakes."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from t2i import config as C
from t2i import run as run_lib
from t2i.data.scenes import captions as cap
from t2i.scene_classifier import load_classifier, read_attributes
from t2i_cli import slides
from tests.runs import train_tiny_run
from training.train import finalize_config, train

SAMPLES = 2


@pytest.fixture(scope="module")
def scenes_run(tmp_path_factory):
    """A tiny scenes run, with the logistic likelihood (what the slides draw does not depend on it)."""
    root = tmp_path_factory.mktemp("slides")
    cfg = C.scenes_tiny().override({"data.examples_per_epoch": 32, "data.validation_examples": 8,
                                    "data.test_examples": 8, "train.epochs": 1, "train.sample_every": 0,
                                    "model.likelihood": "logistic", "model.canvas_init": 0.0,
                                    "model.init_stddev": 0.3})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("T2I_SCENES_CACHE", str(root / "cache"))
        train(finalize_config(cfg, root / "run", resume=False), root / "run", verbose=0)
    return root / "run"


def _named_right(images, caption) -> np.ndarray:
    """Every attribute the caption names read right, computed here from the classifier's heads."""
    said = cap.parse_caption(caption)
    got = read_attributes(load_classifier(), images, colour_named=[said.colour is not None] * len(images))
    ok = (got["object"] == cap.CONCEPT_NAMES.index(said.object)) \
        & (got["background"] == list(cap.BACKGROUNDS).index(said.background)) \
        & (got["count"] == said.count - 1) & (got["vintage"] == int(said.vintage))
    if said.colour is not None:  # a caption without a colour says nothing about it
        ok &= got["colour"] == list(cap.COLOUR_NAMES).index(said.colour)
    if said.position is not None:
        ok &= got["position"] == cap.SIDES.index(said.position)
    return ok


def test_every_row_is_drawn_with_the_same_seeds_and_measured(scenes_run, tmp_path):
    report = tmp_path / "metrics.json"
    report.write_text(json.dumps({"examples": 9, "scenes_fidelity": {"seen": 0.25, "held_out": 0.5},
                                  "flip_success": {"colour": {"pairs": 7, "success": 0.125}}}))
    out = tmp_path / "slides"
    written = slides.write_slides(scenes_run, out, samples=SAMPLES, seed=3, report=report)
    names = [p.name for p in written]
    assert names == [f"{s.name}.png" for s in slides.SLIDES] + ["alignment.png", "slides.md"]
    text = (out / "slides.md").read_text()
    config, model = run_lib.load_model(scenes_run, "best")
    from t2i.text import CaptionTokenizer

    tokenizer = CaptionTokenizer(config.text)
    for slide in slides.SLIDES:
        with Image.open(out / f"{slide.name}.png") as image:
            assert image.height > 3 * 32 * len(slide.captions)  # one row of 3x images per caption
        for caption in slide.captions:
            images = model.generate(tokenizer.encode([caption] * SAMPLES), 3 + np.arange(SAMPLES))["images"]
            right = int(_named_right(images, caption).sum())
            said = cap.parse_caption(caption)
            held = ((said.object == "bus" and said.colour in ("green", "blue"))
                    or (said.object in ("stop sign", "elephant") and said.background == "clear sky")
                    or bool(said.vintage and said.object in ("dog", "car")))
            label = caption + (" (held out)" if held else "")
            assert f"| {label} | {right} of {SAMPLES} | " in text
    assert "every named attribute right for 25.0% of seen captions and 50.0% of held-out" in text
    assert "(7 caption pairs differing in the colour, same seed): 12.5%" in text


def test_mistakes_answer_in_one_line(scenes_run, tmp_path):
    mnist = train_tiny_run(tmp_path / "mnist")
    for argv, message in [
            (["--run", str(mnist)], "is a 'mnist_captions' run"),
            (["--run", str(scenes_run), "-o", str(tmp_path / "x.png")], "names a folder"),
            (["--run", str(scenes_run), "--samples", "0"], "--samples must be >= 1"),
            (["--run", str(scenes_run), "--report", str(tmp_path / "none")], "no evaluation report"),
            (["--run", str(scenes_run), "--sampler", "warp"], "sampler")]:
        done = subprocess.run([sys.executable, "-m", "t2i_cli", "slides", "-o", str(tmp_path / "s"), *argv],
                              capture_output=True, text=True)
        assert done.returncode == 2, (argv, done.stderr)
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        assert lines[-1].startswith("t2i: error:") and message in lines[-1], (argv, done.stderr)
