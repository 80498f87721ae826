"""Tiny trained runs for tests that need one (export, serving, evaluation, CLI).

Training is the slow part of the suite, so two runs are trained once per
pytest session (`tests/conftest.py`: `plain_run`, `visible_run`) and every
module that needs one gets its own copy (`copy_run`), free to add a
sharpener, pack or corrupt it without touching the others.
"""

import shutil

from t2i import config as C
from training.train import finalize_config, train

TINY_RUN = {"data.examples_per_epoch": 16, "data.validation_examples": 8, "train.batch_size": 8,
            "train.epochs": 1, "train.sample_every": 0, "data.mnist.source": "bundled"}
# Grey initial canvas and larger weights: an untrained model then draws visibly
# different images for different seeds, so image comparisons mean something.
VISIBLE = {"model.canvas_init": 0.0, "model.init_stddev": 0.3}
# Enough test composites for every evaluation in the suite (the largest asks for 64).
SHARED_TEST_EXAMPLES = {"data.test_examples": 64}


def train_tiny_run(run_dir, overrides=None):
    """Trains the `tiny` preset for one short epoch into `run_dir`; returns `run_dir`."""
    cfg = C.tiny().override({**TINY_RUN, **(overrides or {})})
    train(finalize_config(cfg, run_dir, resume=False), run_dir, verbose=0)
    return run_dir


def copy_run(run_dir, into):
    """A private copy of a trained run directory at `into`; returns `into`."""
    shutil.copytree(run_dir, into)
    return into
