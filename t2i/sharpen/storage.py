"""A run's sharpener on disk: `<run>/sharpen/` (config.json, sharpener.weights.h5, ...)."""

from __future__ import annotations

from pathlib import Path

from t2i.errors import T2IError
from t2i.sharpen.config import SharpenConfig
from t2i.sharpen.model import Sharpener

SHARPEN_DIR = "sharpen"
CONFIG = "config.json"
WEIGHTS = "sharpener.weights.h5"


def sharpen_dir(run_dir) -> Path:
    return Path(run_dir) / SHARPEN_DIR


def has_sharpener(run_dir) -> bool:
    d = sharpen_dir(run_dir)
    return (d / CONFIG).is_file() and (d / WEIGHTS).is_file()


def save_sharpener(directory, config: SharpenConfig, sharpener: Sharpener) -> Path:
    """Writes `config.json` and the weights into `directory`; returns it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG).write_text(config.to_json())
    sharpener.save_weights(str(directory / WEIGHTS))
    return directory


def load_sharpener(directory) -> tuple[SharpenConfig, Sharpener]:
    """(config, sharpener with its weights) saved by `save_sharpener`."""
    directory = Path(directory)
    config = SharpenConfig.from_json((directory / CONFIG).read_text())
    sharpener = Sharpener.from_sharpen_config(config)
    try:
        sharpener.load_weights(str(directory / WEIGHTS))
    except Exception as e:  # a truncated or foreign file
        raise T2IError(f"cannot load sharpener weights from {directory / WEIGHTS}: {e}") from None
    return config, sharpener


def load_run_sharpener(run_dir, model=None) -> tuple[SharpenConfig, Sharpener]:
    """The sharpener of a run, or a `T2IError` naming the command that trains one.

    With `model` (the run's `AlignDRAW`), also checks that they fit together.
    """
    if not has_sharpener(run_dir):
        raise T2IError(f"run {run_dir} has no sharpener ({sharpen_dir(run_dir)}/{WEIGHTS}); "
                       f"train one with: t2i sharpen train --run {run_dir}")
    config, sharpener = load_sharpener(sharpen_dir(run_dir))
    if model is not None:
        expected = (model.image_height, model.image_width, model.channels, 2 * model.caption_units)
        got = (config.image_height, config.image_width, config.channels, config.caption_dim)
        if expected != got:
            raise T2IError(f"the sharpener in {sharpen_dir(run_dir)} was built for images/captions "
                           f"{got}, but the run's model has {expected}; retrain it with: "
                           f"t2i sharpen train --run {run_dir}")
    return config, sharpener
