"""Training: `model.fit` on the run's input pipelines (`t2i.data.datasets.open_datasets`).

Usage (the `t2i train` command is a thin wrapper around `train`):

    t2i train --preset mnist_captions --out runs/mnist --epochs 20
    t2i train --out runs/mnist --resume          # continue a killed run
    t2i train --preset tiny --out runs/smoke --model.num_steps 4 --train.batch_size 16

The run directory layout is described in `t2i.run`.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

from t2i.config import ExperimentConfig
from t2i.data import catalog
from t2i.errors import T2IError
from t2i import run as run_lib


def _resolved_config(config: ExperimentConfig, held_out: tuple[str, ...]) -> ExperimentConfig:
    """Records the held-out compositions explicitly, even when drawn by seed."""
    return config.override({"data.held_out": tuple(held_out), "data.mnist.num_held_out": 0})


def _initial_epoch(backup_dir: Path) -> int:
    path = backup_dir / "training_metadata.json"
    if not path.is_file():
        return 0
    return int(json.loads(path.read_text())["epoch"])


def finalize_config(config: ExperimentConfig | None, run_dir, overrides=None, *, resume: bool = False,
                    strategy: str = "default", report=None) -> ExperimentConfig:
    """The config a run trains with: the one place where it is settled before training.

    A new run: `config` (a preset or a loaded file) with `overrides` (dotted field -> value,
    e.g. {"train.epochs": 20}) applied, short epochs validated on a tenth of what they train
    (`short_run_validation`), and `run_dir` checked to hold no run yet (by the chief only: under
    `strategy` "multiworker" the other workers share its directory).

    `resume`: the run's saved config (`config` must be None); of the overrides only
    "train.epochs" may be given.

    What only the data can decide (held-out compositions drawn by seed, COCO's vocabulary) is
    added by `train` when it opens the data, and written to the run's config.json.

    Args:
        report: callable taking a message about a setting changed on the user's behalf
            (None: stderr).

    Raises:
        T2IError: a resumed run given other overrides or a config, a run directory already
            holding a run, or an invalid field value.
    """
    overrides = dict(overrides or {})
    report = report or (lambda message: print(message, file=sys.stderr))
    run_dir = Path(run_dir)
    if resume:
        extra = set(overrides) - {"train.epochs"}
        if extra or config is not None:
            raise T2IError("--resume trains with the run's saved config; only --epochs may change "
                           f"(got {', '.join(sorted(extra)) or '--config'})")
        return run_lib.load_run_config(run_dir).override(overrides)
    if config is None:
        raise T2IError("a new run needs a config (a preset or a config file)")
    config = short_run_validation(config.override(overrides), overrides, report)
    from training.distribute import is_chief_process

    if is_chief_process(strategy):
        if (run_dir / run_lib.CONFIG).exists():
            raise T2IError(f"{run_dir} already holds a run; pass --resume to continue it "
                           "or choose another --out")
        if run_dir.exists() and not run_dir.is_dir():
            raise T2IError(f"--out {run_dir} exists and is not a directory")
    return config


def short_run_validation(config: ExperimentConfig, overrides, report) -> ExperimentConfig:
    """A short epoch (steps_per_epoch given, below the full epoch) of a dataset whose examples
    are drawn afresh (MNIST composites: `fresh_examples` in `t2i.data.catalog`) validates a
    tenth of what it trains on, at least 1,000 examples, unless the validation size was given."""
    if "data.validation_examples" in overrides or "train.steps_per_epoch" not in overrides:
        return config
    if not catalog.dataset_of(config).fresh_examples:
        return config
    trained = config.train.steps_per_epoch * config.train.batch_size
    if not 0 < trained < config.data.examples_per_epoch:
        return config
    size = min(config.data.validation_examples, max(1000, trained // 10))
    if size != config.data.validation_examples:
        report(f"t2i: short epochs: validating {size} composites per epoch "
               "(--validation-examples to change)")
        config = config.override({"data.validation_examples": size})
    return config


def _trim_log(path: Path, epoch: int) -> None:
    """Drops the log rows of Keras epochs >= `epoch` (written by a run killed before its
    backup); rows are numbered from `log_epoch_base`."""
    from training.callbacks import log_epoch_base

    if not path.is_file():
        return
    first = log_epoch_base(path)
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if int(line.split(",", 1)[0]) < epoch + first]
    if len(kept) != len(lines):
        path.write_text("".join(kept))


def portable(text):
    """`text` without this machine's paths: the working directory dropped, the home directory
    written as ~ (run_info.json travels with a run, e.g. the shipped one)."""
    if not isinstance(text, str):
        return text
    home = os.path.expanduser("~")
    for prefix, replacement in ((os.getcwd() + os.sep, ""), (home + os.sep, "~" + os.sep)):
        text = text.replace(prefix, replacement)
    return text


def _have_tensorflow() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        return False


def train(config: ExperimentConfig, run_dir, resume: bool = False, verbose="auto",
          time_limit: float | None = None, strategy: str = "default", extra_callbacks=()):
    """Trains (or resumes) a run; returns the Keras `History`.

    Writes config.json before the first step, checkpoints and a backup every
    epoch, a CSV and TensorBoard log, and sample grids (see `t2i.run`).

    Args:
        time_limit: seconds; training stops after the last epoch that is
            expected to end within it (checkpoints intact, resumable).
        strategy: "default", "mirrored" or "multiworker" (see
            `training.distribute`).
        extra_callbacks: more Keras callbacks (e.g. timers), run before the backup.
    """
    from training.distribute import make_distribution

    # First: MultiWorkerMirroredStrategy must exist before any other TF op.
    dist = make_distribution(strategy, config.train.batch_size)
    if dist.num_workers > 1 and time_limit is not None:
        raise T2IError("--time-limit is not supported with --strategy multiworker "
                       "(the workers would have to agree on when to stop)")
    import keras

    from t2i.data.datasets import open_datasets
    from t2i.model import AlignDRAW
    from training.callbacks import (EpochLog, EpochTimer, RestoreOnly, SampleGrid, StopAfter,
                                    log_epoch_base, step_schedule)

    run_dir = Path(run_dir)
    backup_dir = run_dir / "backup"
    initial_epoch = _initial_epoch(backup_dir) if resume else 0
    if initial_epoch >= config.train.epochs:
        raise T2IError(f"run {run_dir} already finished {initial_epoch} of {config.train.epochs} "
                       "epochs; pass a larger --epochs to train further")

    keras.utils.set_random_seed(config.train.seed)
    config, tokenizer, data = open_datasets(config, initial_epoch)
    config = _resolved_config(config, data.held_out)

    if dist.name != "default" and keras.backend.backend() == "tensorflow":
        from training.distribute import shard_by_data

        data.train, data.validation = shard_by_data(data.train), shard_by_data(data.validation)

    run_dir.mkdir(parents=True, exist_ok=True)
    # Only the chief writes config.json and run_info.json.
    if dist.is_chief and resume:
        if run_lib.load_run_config(run_dir) != config:  # only train.epochs may have changed
            config.save(run_dir / run_lib.CONFIG)
    elif dist.is_chief:
        config.save(run_dir / run_lib.CONFIG)
        info = {
            "data_source": portable(data.source),
            "mnist_source": portable(data.mnist_source),
            "held_out": list(data.held_out),
            "keras_backend": keras.backend.backend(),
            "keras_version": keras.__version__,
            "python": platform.python_version(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": [Path(sys.argv[0]).name] + [portable(a) for a in sys.argv[1:]],
            "strategy": dist.name,
            "replicas": dist.num_replicas,
            "workers": dist.num_workers,
        }
        (run_dir / run_lib.RUN_INFO).write_text(json.dumps(info, indent=2) + "\n")

    t = config.train
    with dist.scope:
        model = AlignDRAW.from_config_dataclass(config)
        model.compile(
            optimizer=keras.optimizers.RMSprop(learning_rate=t.learning_rate, rho=t.rho,
                                               epsilon=t.epsilon, clipnorm=t.clipnorm),
            jit_compile=t.jit_compile)
        if t.init_from and initial_epoch == 0:  # a resumed run restores its own backup instead
            run_lib.warm_start(model, t.init_from)

    checkpoints = run_dir / "checkpoints"
    checkpoints.mkdir(exist_ok=True)
    seen, held = data.grid_captions
    callbacks = [
        EpochTimer(t.batch_size, report=(lambda msg: print(msg, file=sys.stderr, flush=True))
                   if dist.is_chief and verbose != 0 else None),
        keras.callbacks.LearningRateScheduler(step_schedule(t.learning_rate, t.lr_decay_epochs,
                                                            t.lr_decay_factor)),
        keras.callbacks.TerminateOnNaN(),
    ]
    if time_limit is not None:
        callbacks.append(StopAfter(time_limit))
    if dist.is_chief:  # other workers restore, train and write nothing
        if resume:
            _trim_log(run_dir / "log.csv", initial_epoch)
        callbacks += [
            keras.callbacks.ModelCheckpoint(str(run_lib.checkpoint_path(run_dir, "last")),
                                            save_weights_only=True),
            keras.callbacks.ModelCheckpoint(str(run_lib.checkpoint_path(run_dir, "best")),
                                            save_weights_only=True, save_best_only=True,
                                            monitor="val_loss", mode="min"),
            EpochLog(str(run_dir / "log.csv"), first=log_epoch_base(run_dir / "log.csv")),
        ]
        if dist.num_workers == 1:  # generating is a collective step under multiworker
            callbacks.append(SampleGrid(run_dir / "samples", tokenizer, seen, held, every=t.sample_every))
        if _have_tensorflow():  # the TensorBoard callback writes with tf.summary
            callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "tensorboard"),
                                                         write_graph=False))
    callbacks += list(extra_callbacks)
    # The backup comes last: an epoch counts as done only once its checkpoints
    # and log row are written. double_checkpoint: a backup torn by a kill falls
    # back to the one before.
    callbacks.append(
        keras.callbacks.BackupAndRestore(str(backup_dir), save_freq="epoch", delete_checkpoint=False,
                                         double_checkpoint=True)
        if dist.is_chief else RestoreOnly(str(backup_dir)))
    return model.fit(
        data.train,
        epochs=t.epochs,
        steps_per_epoch=data.steps_per_epoch,
        validation_data=data.validation,
        validation_steps=t.validation_steps or None,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,
    )


def config_summary(config: ExperimentConfig) -> str:
    m = config.model
    return (f"{config.name}: {m.image_height}x{m.image_width}x{m.channels}, T={m.num_steps}, "
            f"read/write {m.read_size}/{m.write_size}, LSTMs {m.encoder_units}/{m.decoder_units}, "
            f"latent {m.latent_dim}, conditioning {m.conditioning}, batch {config.train.batch_size}, "
            f"{config.train.epochs} epochs")


__all__ = ["train", "finalize_config", "config_summary"]
