"""Training the sharpening GAN (docs/model.md §14) on top of a trained run.

    t2i sharpen train --run runs/mnist [--steps 1000] [--batch-size 64] [--blurry prior]
    t2i generate --run runs/mnist --sharpen "the digit 7 is on the left of the digit 1 ." -o out.png

or, from Python:

    from training.sharpen import train_sharpener
    train_sharpener("runs/mnist", steps=1000, batch_size=64)

The sharpener trains with `fit` on a stream of batches {"blurry", "caption", "real"}:
each takes the next batch {"images", "tokens"} of the run's own training stream
(`t2i.data.datasets.open_datasets`, the same examples the model was trained on), makes
the blurry images with the frozen alignDRAW model (by default samples from its prior for
the same captions, example k of the stream with seed `seed + k`) and computes the caption
vectors with the model's frozen caption encoder (`t2i.sharpen.caption_vectors`); the
`Sharpener`'s own train step does the rest (see there for the losses and why this works
under every Keras backend). One `fit` epoch is one step, so that the log's rows are the
losses of single steps. The alignDRAW model itself is never updated.

Every setting has one default, in `t2i.sharpen.SharpenConfig`.

Writes `<run>/sharpen/` (replacing an earlier sharpener only once the new one
is complete): `config.json`, `sharpener.weights.h5`, `log.csv` and
`samples.png` (per caption of the first batch: the real image, the blurry
sample, the sharpened sample).
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import shutil
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np

from t2i.errors import T2IError

LOG_FIELDS = ("step", "loss", "d_loss", "g_loss", "reconstruction", "d_real", "d_fake")


def blurry_images(model, images, tokens, seeds, source: str = "prior") -> np.ndarray:
    """The blurry images the sharpener learns to sharpen, float32 [B, H, W, C] in [0, 1].

    "prior": `model.generate(tokens, seeds)` (alignDRAW samples for the
    caption); "posterior": sigmoid(c_T) of the model's reconstruction of
    `images` with the noise of `seeds`.
    """
    if source == "prior":
        return model.generate(tokens, seeds)["images"]
    if source == "posterior":
        pred = model.predict({"images": images, "tokens": tokens, "noise": model.noise_for_seeds(seeds)},
                             verbose=0)
        return (1.0 / (1.0 + np.exp(-np.asarray(pred["logits"], np.float64)))).astype(np.float32)
    raise T2IError(f"blurry must be 'prior' or 'posterior', got {source!r}")


def _decode(vocabulary, tokens) -> list[str]:
    return [" ".join(vocabulary[int(i)] for i in row if i != 0) for row in tokens]


def train_sharpener(run_dir, log_every: int = 50, samples: int = 8,
                    log=lambda msg: print(msg, file=sys.stderr), **settings) -> dict:
    """Trains a sharpener for the run in `run_dir` and writes `<run>/sharpen/`.

    Args:
        run_dir: a run directory written by `t2i train`.
        log_every: write a log line (and a `log.csv` row) every this many steps.
        samples: captions in `samples.png`.
        log: where progress lines go (None: nowhere).
        **settings: `SharpenConfig` fields other than the image and caption sizes (steps,
            batch_size, learning_rate, beta_1, reconstruction_weight, blurry, checkpoint,
            generator_filters, generator_kernel_sizes, discriminator_filters,
            discriminator_kernel_size, seed); the rest keep SharpenConfig's defaults.
            Without generator_kernel_sizes, every hidden convolution of the
            generator is 7 wide and its output 5.

    Returns:
        dict: "dir" (the sharpen folder), "config" (the `SharpenConfig`),
        "logs" (the last step's losses).
    """
    from t2i import run as run_lib
    from t2i import sharpen as sh
    from t2i.data.datasets import open_datasets
    from t2i.visualize import captioned_grid

    log = log or (lambda msg: None)
    if log_every < 1:
        raise T2IError(f"log_every must be >= 1, got {log_every}")
    sizes = {"image_height", "image_width", "channels", "caption_dim"}
    unknown = set(settings) - ({f.name for f in dataclasses.fields(sh.SharpenConfig)} - sizes)
    if unknown:
        raise T2IError(f"unknown sharpener settings: {', '.join(sorted(unknown))}")
    if "generator_filters" in settings and "generator_kernel_sizes" not in settings:
        settings["generator_kernel_sizes"] = (7,) * len(tuple(settings["generator_filters"])) + (5,)
    config, model = run_lib.load_model(run_dir, settings.get("checkpoint", "last"))
    m = config.model
    cfg = sh.SharpenConfig(image_height=m.image_height, image_width=m.image_width, channels=m.channels,
                           caption_dim=2 * m.caption_units, **settings)

    steps_per_epoch = max(1, config.data.examples_per_epoch // cfg.batch_size)
    _, tokenizer, data = open_datasets(config.override({"train.batch_size": cfg.batch_size,
                                                     "train.steps_per_epoch": steps_per_epoch}))
    keras.utils.set_random_seed(cfg.seed)
    sharpener = sh.Sharpener.from_sharpen_config(cfg)
    sharpener.compile(optimizer=keras.optimizers.Adam(learning_rate=cfg.learning_rate, beta_1=cfg.beta_1))

    first = {}

    def batches():
        stream = data.train_batches()
        for step in itertools.count():
            batch = next(stream)
            images, tokens = np.asarray(batch["images"], np.float32), np.asarray(batch["tokens"])
            seeds = cfg.seed + step * cfg.batch_size + np.arange(len(tokens))
            x = {"blurry": blurry_images(model, images, tokens, seeds, cfg.blurry),
                 "caption": sh.caption_vectors(model, tokens), "real": images}
            if not first:
                first.update({k: v[:samples] for k, v in x.items()}, tokens=tokens[:samples])
            yield (x,)

    target = sh.sharpen_dir(run_dir)
    tmp = Path(tempfile.mkdtemp(prefix=".sharpen.tmp-", dir=Path(run_dir)))
    try:
        step_log = StepLog(tmp / "log.csv", cfg.steps, log_every, log)
        sharpener.fit(batches(), steps_per_epoch=1, epochs=cfg.steps, callbacks=[step_log], verbose=0,
                      shuffle=False)
        if step_log.diverged:
            raise T2IError(f"sharpener training diverged at step {step_log.diverged[0]}: "
                           f"{step_log.diverged[1]}")
        sh.save_sharpener(tmp, cfg, sharpener)
        sharp = sharpener.sharpen(first["blurry"], first["caption"])
        captions = _decode(tokenizer.vocabulary, first["tokens"])
        grid_rows = [np.stack([first["real"][i], first["blurry"][i], sharp[i]]) for i in range(len(sharp))]
        labels = [f"{c} (real, blurry, sharpened)" for c in captions]
        captioned_grid(grid_rows, labels).save(tmp / "samples.png")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"sharpener written to {target}")
    return {"dir": target, "config": cfg, "logs": step_log.last}


class StepLog(keras.callbacks.Callback):
    """Writes `log.csv` rows (`LOG_FIELDS`) and a progress line every `every` steps and
    at the last of `steps`, for a `fit` whose epochs are single steps; stops training at
    the first non-finite loss (`diverged`: (step, logs))."""

    def __init__(self, path, steps: int, every: int, log):
        super().__init__()
        self.path, self.steps, self.every, self.log = Path(path), steps, every, log
        self.last: dict = {}
        self.diverged = None

    def on_train_begin(self, logs=None):
        with open(self.path, "w", newline="") as f:
            csv.DictWriter(f, fieldnames=LOG_FIELDS).writeheader()

    def on_epoch_end(self, epoch, logs=None):
        step = epoch + 1
        self.last = {k: float(v) for k, v in (logs or {}).items()}
        if not all(np.isfinite(v) for v in self.last.values()):
            self.diverged = (step, self.last)
            self.model.stop_training = True
            return
        if step % self.every and step != self.steps:
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=LOG_FIELDS).writerow(
                {"step": step, **{k: self.last.get(k) for k in LOG_FIELDS[1:]}})
        self.log(f"sharpen step {step}/{self.steps}: "
                 + ", ".join(f"{k} {self.last[k]:.4f}" for k in LOG_FIELDS[1:] if k in self.last))
