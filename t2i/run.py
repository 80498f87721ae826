"""Run directories: what `t2i train` writes and `t2i generate` reads.

    runs/NAME/
      config.json                 the frozen ExperimentConfig, written before step 1
      run_info.json               where the data came from, held-out compositions, versions
      checkpoints/last.weights.h5 model weights after the latest epoch
      checkpoints/best.weights.h5 weights with the lowest validation loss
      backup/                     full training state for `--resume` (Keras BackupAndRestore)
      log.csv                     per-epoch metrics
      tensorboard/                TensorBoard logs
      samples/epoch-NNNN.png      sample grids for fixed seen and held-out captions
"""

from __future__ import annotations

import json
from pathlib import Path

from t2i.config import ExperimentConfig
from t2i.errors import T2IError

CONFIG = "config.json"
RUN_INFO = "run_info.json"
CHECKPOINTS = ("last", "best")


def checkpoint_path(run_dir, which: str = "last") -> Path:
    return Path(run_dir) / "checkpoints" / f"{which}.weights.h5"


def load_run_config(run_dir) -> ExperimentConfig:
    """The config of a run directory, or a `T2IError` saying why it is not one."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise T2IError(f"run directory {run_dir} does not exist")
    if not (run_dir / CONFIG).is_file():
        raise T2IError(f"{run_dir} is not a t2i run directory (it has no {CONFIG})")
    return ExperimentConfig.load(run_dir / CONFIG)


def load_run_info(run_dir) -> dict:
    path = Path(run_dir) / RUN_INFO
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def load_model(run_dir, which: str = "last"):
    """(config, model with the checkpoint's weights) of a run directory."""
    from t2i.model import AlignDRAW

    if which not in CHECKPOINTS:
        raise T2IError(f"checkpoint must be one of {CHECKPOINTS}, got {which!r}")
    config = load_run_config(run_dir)
    path = checkpoint_path(run_dir, which)
    if not path.is_file():
        raise T2IError(f"run {run_dir} has no {which} checkpoint yet ({path}); "
                       "train it for at least one epoch")
    model = AlignDRAW.from_config_dataclass(config)
    try:
        model.load_weights(str(path))
    except Exception as e:  # a truncated or foreign file
        raise T2IError(f"cannot load weights from {path}: {e}") from None
    return config, model
