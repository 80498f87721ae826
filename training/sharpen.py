"""Training the sharpening GAN (docs/model.md §14) on top of a trained run.

    t2i sharpen train --run runs/mnist [--steps 1000] [--batch-size 64] [--blurry prior]
    t2i generate --run runs/mnist --sharpen "the digit 7 is on the left of the digit 1 ." -o out.png

or, from Python:

    from training.sharpen import train_sharpener
    train_sharpener("runs/mnist", steps=1000, batch_size=64)

Each step takes the next batch {"images", "tokens"} of the run's own training
stream (`t2i.data.datasets.open_datasets`, the same examples the model was
trained on), makes the blurry images with the frozen alignDRAW model (by
default samples from its prior for the same captions, example k of the
stream with seed `seed + k`), computes the caption vectors with the model's
frozen caption encoder (`t2i.sharpen.caption_vectors`) and runs one
`train_on_batch` of the `Sharpener` (see there for the losses and why this
works under every Keras backend). The alignDRAW model itself is never
updated.

Writes `<run>/sharpen/` (replacing an earlier sharpener only once the new one
is complete): `config.json`, `sharpener.weights.h5`, `log.csv` and
`samples.png` (per caption of the first batch: the real image, the blurry
sample, the sharpened sample).
"""

from __future__ import annotations

import csv
import shutil
import sys
import tempfile
from pathlib import Path

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


def train_sharpener(run_dir, steps: int = 1000, batch_size: int = 64, learning_rate: float = 2e-4,
                    beta_1: float = 0.5, reconstruction_weight: float = 0.0, blurry: str = "prior",
                    checkpoint: str = "last", generator_filters=(128, 128),
                    generator_kernel_sizes=None, discriminator_filters: int = 128,
                    discriminator_kernel_size: int = 5, seed: int = 0, log_every: int = 50,
                    samples: int = 8, log=lambda msg: print(msg, file=sys.stderr)) -> dict:
    """Trains a sharpener for the run in `run_dir` and writes `<run>/sharpen/`.

    Args:
        run_dir: a run directory written by `t2i train`.
        steps, batch_size: training length.
        learning_rate, beta_1: Adam.
        reconstruction_weight: L1 term (see `t2i.sharpen.Sharpener`).
        blurry: "prior" or "posterior" (see `blurry_images`).
        checkpoint: the run's checkpoint to sharpen ("last" or "best").
        generator_filters, generator_kernel_sizes, discriminator_filters,
        discriminator_kernel_size: widths (defaults: the original's
            generator and Denton et al.'s discriminator); kernel sizes
            default to 7 for every hidden convolution and 5 for the output.
        seed: initialisation seed and first per-example seed.
        log_every: write a log line (and a `log.csv` row) every this many steps.
        samples: captions in `samples.png`.
        log: where progress lines go (None: nowhere).

    Returns:
        dict: "dir" (the sharpen folder), "config" (the `SharpenConfig`),
        "logs" (the last step's losses).
    """
    import keras

    from t2i import run as run_lib
    from t2i import sharpen as sh
    from t2i.visualize import captioned_grid
    from t2i.data.datasets import open_datasets

    log = log or (lambda msg: None)
    config, model = run_lib.load_model(run_dir, checkpoint)
    m = config.model
    if generator_kernel_sizes is None:
        generator_kernel_sizes = (7,) * len(tuple(generator_filters)) + (5,)
    sharpen_config = sh.SharpenConfig(
        image_height=m.image_height, image_width=m.image_width, channels=m.channels,
        caption_dim=2 * m.caption_units, generator_filters=tuple(generator_filters),
        generator_kernel_sizes=tuple(generator_kernel_sizes), discriminator_filters=discriminator_filters,
        discriminator_kernel_size=discriminator_kernel_size, reconstruction_weight=reconstruction_weight,
        blurry=blurry, checkpoint=checkpoint, learning_rate=learning_rate, beta_1=beta_1, steps=steps,
        batch_size=batch_size, seed=seed)
    if log_every < 1:
        raise T2IError(f"log_every must be >= 1, got {log_every}")

    steps_per_epoch = max(1, config.data.examples_per_epoch // batch_size)
    _, tokenizer, data = open_datasets(config.override({"train.batch_size": batch_size,
                                                     "train.steps_per_epoch": steps_per_epoch}))
    keras.utils.set_random_seed(seed)
    sharpener = sh.Sharpener.from_sharpen_config(sharpen_config)
    sharpener.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1))

    target = sh.sharpen_dir(run_dir)
    tmp = Path(tempfile.mkdtemp(prefix=".sharpen.tmp-", dir=Path(run_dir)))
    try:
        stream = data.train_batches()
        first, logs, rows = None, {}, []
        with open(tmp / "log.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
            writer.writeheader()
            for step in range(steps):
                batch = next(stream)
                images, tokens = np.asarray(batch["images"], np.float32), np.asarray(batch["tokens"])
                seeds = seed + step * batch_size + np.arange(len(tokens))
                x = {"blurry": blurry_images(model, images, tokens, seeds, blurry),
                     "caption": sh.caption_vectors(model, tokens), "real": images}
                if first is None:
                    first = {k: v[:samples] for k, v in x.items()}
                    first["tokens"] = tokens[:samples]
                logs = {k: float(v) for k, v in sharpener.train_on_batch(x, return_dict=True).items()}
                if not all(np.isfinite(v) for v in logs.values()):
                    raise T2IError(f"sharpener training diverged at step {step + 1}: {logs}")
                if (step + 1) % log_every == 0 or step + 1 == steps:
                    row = {"step": step + 1, **{k: logs.get(k) for k in LOG_FIELDS[1:]}}
                    writer.writerow(row)
                    rows.append(row)
                    log(f"sharpen step {step + 1}/{steps}: "
                        + ", ".join(f"{k} {logs[k]:.4f}" for k in LOG_FIELDS[1:] if k in logs))

        sh.save_sharpener(tmp, sharpen_config, sharpener)
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
    return {"dir": target, "config": sharpen_config, "logs": logs}
