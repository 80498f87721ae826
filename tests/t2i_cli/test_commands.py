"""The `t2i` command: generation outputs and one-line errors for bad input."""

import os
import sys

import numpy as np
import pytest
from PIL import Image

from t2i_cli.commands import main
from tests.runs import copy_run

CAPTION = "the digit 7 is on the left of the digit 1 ."


@pytest.fixture(scope="module")
def run_dir(plain_run, tmp_path_factory):
    return copy_run(plain_run, tmp_path_factory.mktemp("runs") / "tiny")


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]
    assert last.startswith("t2i: error: ") and "Traceback" not in err, err
    return last


def test_generate_png_gif_and_alignment(run_dir, tmp_path, capsys):
    out = tmp_path / "out.png"
    assert main(["generate", "--run", str(run_dir), CAPTION, "the digit 3 is at the top of the digit 1 .",
                 "-o", str(out), "--samples", "3", "--gif", "--alignment"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out), str(tmp_path / "out.gif"), str(tmp_path / "out-alignment-1.png"),
                       str(tmp_path / "out-alignment-2.png")]
    grid = Image.open(out)
    assert grid.size[0] > 3 * 60 and grid.size[1] > 2 * 60
    gif = Image.open(tmp_path / "out.gif")
    assert gif.n_frames == 3  # T = 3 canvases


def test_generate_npz_from_captions_file(run_dir, tmp_path, capsys):
    captions = tmp_path / "captions.txt"
    captions.write_text(f"{CAPTION}\nthe digit 4 is at the top left of the image .\n{CAPTION}\n")
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    for out in (a, b):
        assert main(["generate", "--run", str(run_dir), "--captions-file", str(captions), "-o", str(out),
                     "--seed", "10"]) == 0
    data, again = np.load(a), np.load(b)
    assert data["images"].dtype == np.uint8 and data["images"].shape == (3, 60, 60, 1)
    assert list(data["captions"]) == captions.read_text().splitlines()
    np.testing.assert_array_equal(data["images"], again["images"])
    cold = [tmp_path / "c0.npz", tmp_path / "c1.npz"]  # temperature 0: the seed no longer matters
    for out, seed in zip(cold, ("10", "99")):
        assert main(["generate", "--run", str(run_dir), "--captions-file", str(captions), "-o", str(out),
                     "--seed", seed, "--temperature", "0"]) == 0
    np.testing.assert_array_equal(np.load(cold[0])["images"], np.load(cold[1])["images"])


def test_generate_with_a_named_sampler(run_dir, tmp_path, capsys):
    plain, k1, contrast = tmp_path / "p.npz", tmp_path / "k1.npz", tmp_path / "c.npz"
    for out, sampler in ((plain, "plain"), (k1, "best_of_k:k=1"), (contrast, "contrastive:g=3")):
        assert main(["generate", "--run", str(run_dir), CAPTION, "the digit 4 is at the top left of the image .",
                     "-o", str(out), "--sampler", sampler]) == 0
    np.testing.assert_array_equal(np.load(k1)["images"], np.load(plain)["images"])
    assert np.load(contrast)["images"].shape == np.load(plain)["images"].shape


def test_a_run_draws_with_its_own_sampler_unless_told_otherwise(run_dir, tmp_path, capsys):
    """sample.sampler in the run's config.json is generate's default; --sampler overrides it."""
    import json

    own = copy_run(run_dir, tmp_path / "own")
    config = json.loads((own / "config.json").read_text())
    config["sample"] = {"sampler": "contrastive:g=3"}
    (own / "config.json").write_text(json.dumps(config))
    got = {}
    for name, run, flags in (("default", own, []), ("named", run_dir, ["--sampler", "contrastive:g=3"]),
                             ("plain", own, ["--sampler", "plain"]), ("paper", run_dir, [])):
        out = tmp_path / f"{name}.npz"
        assert main(["generate", "--run", str(run), CAPTION, "-o", str(out), *flags]) == 0
        got[name] = np.load(out)
    assert {k: str(v["sampler"]) for k, v in got.items()} == {
        "default": "contrastive:g=3", "named": "contrastive:g=3", "plain": "plain", "paper": "plain"}
    np.testing.assert_array_equal(got["default"]["images"], got["named"]["images"])
    np.testing.assert_array_equal(got["plain"]["images"], got["paper"]["images"])


def test_unknown_words_are_read_as_unk_with_a_warning(run_dir, tmp_path, capsys):
    assert main(["generate", "--run", str(run_dir), "the digit 7 is beside a zebra .",
                 "-o", str(tmp_path / "u.png"), "--samples", "1"]) == 0
    err = capsys.readouterr().err
    assert "[UNK]" in err and "beside" in err and "zebra" in err


@pytest.mark.parametrize("argv, message", [
    (["generate", "--run", "{run}", "", "-o", "{tmp}/x.png"], "is empty"),
    (["generate", "--run", "{run}", "the digit " * 9, "-o", "{tmp}/x.png"], "this model takes at most 16"),
    (["generate", "--run", "{run}", CAPTION, "-o", "{tmp}/x.jpg"], "must end in .png or .npz"),
    (["generate", "--run", "{tmp}", CAPTION, "-o", "{tmp}/x.png"], "is not a t2i run directory"),
    (["generate", "--run", "{tmp}/nowhere", CAPTION, "-o", "{tmp}/x.png"], "does not exist"),
    (["generate", "--run", "{run}", "--captions-file", "{tmp}/none.txt", "-o", "{tmp}/x.png"],
     "cannot read captions file"),
    (["generate", "--run", "{run}", "-o", "{tmp}/x.png"], "give captions"),
    (["generate", "--run", "{run}", CAPTION, "-o", "{tmp}/x.png", "--temperature", "-1"],
     "--temperature must be a finite number >= 0"),
    (["generate", "--run", "{run}", CAPTION, "-o", "{tmp}/x.png", "--guidance", "2"],
     "needs a model trained with model.caption_dropout > 0"),
    (["evaluate", "--run", "{run}", "-o", "{tmp}/rep", "--guidance", "2"],
     "needs a model trained with model.caption_dropout > 0"),
    (["generate", "--run", "{run}", CAPTION, "-o", "{tmp}/x.png", "--sampler", "greedy"],
     "unknown sampler 'greedy'"),
    (["generate", "--run", "{run}", CAPTION, "-o", "{tmp}/x.png", "--sampler", "best_of_k:k=0"],
     "k must be an integer >= 1"),
    (["generate", "--run", "{run}", CAPTION, "-o", "{tmp}/x.png", "--sampler", "contrastive:g=2",
      "--guidance", "2"], "cannot be combined"),
    (["evaluate", "--run", "{run}", "-o", "{tmp}/rep", "--sampler", "contrastive:g=x"],
     "g='x' is not a valid float"),
    (["train", "--preset", "mnist", "--out", "{tmp}/r"], "unknown preset 'mnist'"),
    (["train", "--preset", "tiny", "--out", "{run}"], "already holds a run"),
    (["train", "--out", "{tmp}/fresh", "--resume"], "does not exist"),
    (["train", "--out", "{run}", "--resume", "--model.num_steps", "4"], "only --epochs may change"),
    (["train", "--preset", "tiny", "--out", "{tmp}/r", "--model.num_steps", "three"], "cannot parse 'three'"),
    (["train", "--preset", "tiny", "--out", "{tmp}/r", "--data.mnist.source", "{tmp}/missing.npz"],
     "missing.npz"),
    (["train", "--preset", "coco_32", "--out", "{tmp}/r"], "COCO"),
])
def test_bad_input_gives_one_line_errors(run_dir, tmp_path, capsys, argv, message):
    argv = [a.format(run=run_dir, tmp=tmp_path) for a in argv]
    assert message in _error(capsys, argv)


def test_malformed_data_file(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"this is not an npz file")
    err = _error(capsys, ["train", "--preset", "tiny", "--out", str(tmp_path / "r"),
                          "--data.mnist.source", str(bad)])
    assert "bad.npz" in err


def test_short_epochs_validate_a_tenth_of_what_they_train(capsys):
    from t2i.config import mnist_captions
    from training.train import short_run_validation

    def resolved(**overrides):
        report = lambda message: print(message, file=sys.stderr)  # noqa: E731
        return short_run_validation(mnist_captions().override(overrides), overrides, report)

    # 40 steps of 100: 4,000 trained, so 1,000 validated (the floor); 90,000 trained: 9,000.
    assert resolved(**{"train.steps_per_epoch": 40}).data.validation_examples == 1000
    assert "validating 1000 composites" in capsys.readouterr().err
    assert resolved(**{"train.steps_per_epoch": 95, "train.batch_size": 100}).data.validation_examples == 1000
    small = resolved(**{"train.steps_per_epoch": 900, "train.batch_size": 100,
                        "data.examples_per_epoch": 100000})
    assert small.data.validation_examples == 9000
    # Full epochs, and an explicit size, keep the protocol's 10,000.
    assert resolved().data.validation_examples == 10000
    assert resolved(**{"train.steps_per_epoch": 100}).data.validation_examples == 10000
    assert resolved(**{"train.steps_per_epoch": 40,
                       "data.validation_examples": 10000}).data.validation_examples == 10000


@pytest.mark.parametrize("args", [["--samples", "-1"], ["--sampler", "greedy"], ["-o", "x.jpg"],
                                  ["--temperature", "-2"]])
def test_generate_argument_errors_come_before_tensorflow_loads(tmp_path, args):
    """A mistake in the arguments is reported without importing TensorFlow (or Keras)."""
    import subprocess
    import sys

    argv = ["generate", CAPTION, "-o", str(tmp_path / "x.png")] + args
    code = ("import sys; from t2i_cli.commands import main; rc = main(sys.argv[1:]); "
            "print('LOADED' if {'tensorflow', 'keras'} & set(sys.modules) else 'LIGHT', rc)")
    done = subprocess.run([sys.executable, "-c", code] + argv, capture_output=True, text=True,
                          timeout=120, cwd=str(tmp_path))
    assert done.stdout.split() == ["LIGHT", "2"], done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("t2i: error: ")


def test_a_command_prints_no_tensorflow_log_lines(tmp_path):
    """`t2i generate` end to end, as a user runs it: none of TensorFlow's C++ log lines (start-up,
    device look-up, oneDNN's notices during the run) reaches the terminal; its own lines do."""
    import subprocess
    import sys

    argv = ["generate", "the digit 7 is on the left of the digit zebra .", "-o", str(tmp_path / "x.png"),
            "--samples", "1"]
    done = subprocess.run([sys.executable, "-m", "t2i_cli"] + argv, capture_output=True, text=True,
                          timeout=300, cwd=str(tmp_path), env={k: v for k, v in os.environ.items()
                                                               if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "x.png").is_file()
    logged = [line for line in done.stderr.splitlines() if line[:5] in ("E0000", "W0000", "I0000")]
    assert logged == [], done.stderr
    assert "t2i: warning: words not in the vocabulary are read as [UNK]: zebra" in done.stderr


def test_version(capsys):
    import t2i

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"t2i {t2i.__version__}"


def test_maintained_tools_are_t2i_subcommands(run_dir, tmp_path, capsys):
    """pack, classifier and ops: reachable as `t2i SUBCOMMAND`, with their own flags."""
    packed = tmp_path / "packed"
    assert main(["pack", str(run_dir), str(packed)]) == 0
    assert (packed / "weights.npz").is_file() and capsys.readouterr().out.strip() == str(packed)
    with pytest.raises(SystemExit):
        main(["classifier", "scenes", "--help"])
    assert capsys.readouterr().out.startswith("usage: t2i classifier scenes")
    assert _error(capsys, ["classifier", "cats"]) == "t2i: error: name the classifier to train: digits or scenes"
    assert _error(capsys, ["ops", str(tmp_path)]) == f"t2i: error: no saved_model.pb in {tmp_path}"


def test_flat_data_flags_are_deprecated_aliases_of_the_per_dataset_sections(capsys):
    from t2i.config import LEGACY_DATA_FIELDS
    from t2i_cli.commands import _parser

    parser = _parser()
    for old, new in LEGACY_DATA_FIELDS.items():
        args = parser.parse_args(["train", "--out", "r", f"--data.{old}", "7"])
        assert getattr(args, f"cfg:data.{new}") == "7"
        assert capsys.readouterr().err.strip() == (
            f"t2i: warning: --data.{old} is deprecated and will be removed in the next release; "
            f"use --data.{new}")
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    shown = capsys.readouterr().out
    assert "--data.coco.root" in shown and "--data.coco_root" not in shown
