"""A tiny trained run for tests that need one (export, serving, evaluation, CLI)."""

from t2i import config as C
from training.train import prepare_run_dir, train

TINY_RUN = {"data.examples_per_epoch": 16, "data.validation_examples": 8, "train.batch_size": 8,
            "train.epochs": 1, "train.sample_every": 0, "data.mnist_source": "bundled"}
# Grey initial canvas and larger weights: an untrained model then draws visibly
# different images for different seeds, so image comparisons mean something.
VISIBLE = {"model.canvas_init": 0.0, "model.init_stddev": 0.3}


def train_tiny_run(run_dir, overrides=None):
    """Trains the `tiny` preset for one short epoch into `run_dir`; returns `run_dir`."""
    cfg = C.tiny().override({**TINY_RUN, **(overrides or {})})
    train(prepare_run_dir(cfg, run_dir, resume=False), run_dir, verbose=0)
    return run_dir
