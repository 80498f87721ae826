"""Training callbacks: learning-rate schedule and per-epoch sample grids."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np


def step_schedule(learning_rate: float, decay_epochs, factor: float):
    """Paper schedule: lr * factor^(number of decay epochs <= epoch)."""
    decay_epochs = tuple(decay_epochs)

    def schedule(epoch, lr=None):
        return float(learning_rate * factor ** sum(epoch >= e for e in decay_epochs))

    return schedule


class SampleGrid(keras.callbacks.Callback):
    """Writes `samples/epoch-NNNN.png`: samples for fixed seen and held-out captions.

    Args:
        out_dir: folder for the PNGs.
        tokenizer: a `CaptionTokenizer`.
        seen, held_out: captions of seen and held-out compositions.
        samples: samples per caption (seeds 0..samples-1, fixed across epochs).
        every: write every this many epochs.
    """

    def __init__(self, out_dir, tokenizer, seen, held_out, samples: int = 8, every: int = 1):
        super().__init__()
        self.out_dir = Path(out_dir)
        self.tokenizer = tokenizer
        self.seen = list(seen)
        self.held_out = list(held_out)
        self.samples = samples
        self.every = every

    def on_epoch_end(self, epoch, logs=None):
        if self.every <= 0 or (epoch + 1) % self.every:
            return
        from t2i.visualize import captioned_grid

        captions = self.seen + self.held_out
        tokens = self.tokenizer.encode(captions)
        reps = np.repeat(tokens, self.samples, axis=0)
        seeds = np.tile(np.arange(self.samples), len(captions))
        images = self.model.generate(reps, seeds)["images"]
        rows = [images[i * self.samples:(i + 1) * self.samples] for i in range(len(captions))]
        titles = {0: "seen captions"}
        if self.held_out:
            titles[len(self.seen)] = "held-out captions"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        captioned_grid(rows, captions, section_titles=titles).save(
            self.out_dir / f"epoch-{epoch + 1:04d}.png")


class StopAfter(keras.callbacks.Callback):
    """Stops `fit` cleanly before a wall-clock budget runs out.

    After each epoch, training stops if another epoch (as long as the slowest
    one after the first, which includes compilation) would end past `seconds`
    from the start of `fit`. Checkpoints and
    the backup of the last finished epoch stay intact, so `--resume` continues.
    """

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = float(seconds)
        self.stopped_epoch: int | None = None

    def on_train_begin(self, logs=None):
        self._start = self._last = time.monotonic()
        self._durations: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        now = time.monotonic()
        self._durations.append(now - self._last)
        self._last = now
        expected = max(self._durations[1:] or self._durations)
        if now - self._start + expected > self.seconds:
            self.model.stop_training = True
            self.stopped_epoch = epoch


class RestoreOnly(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` for workers other than the chief: restores the
    chief's backup at the start of training and never writes one."""

    def __init__(self, backup_dir):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=False)

    def _save_model(self):
        pass

    def on_train_end(self, logs=None):
        pass


def process_seconds() -> float:
    """Seconds since this process started (Linux /proc; else since this module was imported)."""
    try:
        import os

        ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
        uptime = float(open("/proc/uptime").read().split()[0])
        return uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return time.monotonic() - _IMPORTED


_IMPORTED = time.monotonic()


class EpochTimer(keras.callbacks.Callback):
    """Adds each epoch's wall time and training speed to the epoch logs (so to log.csv).

    `epoch_time_s`: from the epoch's start to its end, validation included;
    `train_images_per_s`: training examples of the epoch over the time from
    its start to its last training step (validation and callbacks excluded).
    Put it before the CSV logger. `report` receives one line when the first
    training step is done, with the seconds since the process started.

    Args:
        batch_size: examples per training step.
        report: callable taking a message (None: silent).
    """

    def __init__(self, batch_size: int, report=None):
        super().__init__()
        self.batch_size = batch_size
        self.report = report
        self.first_step_s: float | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._last_step = time.perf_counter()
        self._steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self._last_step = time.perf_counter()
        self._steps += 1
        if self.first_step_s is None:
            self.first_step_s = process_seconds()
            if self.report is not None:
                self.report(f"t2i: first training step done {self.first_step_s:.1f} s after start")

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        train_s = self._last_step - self._start
        logs["epoch_time_s"] = time.perf_counter() - self._start
        logs["train_images_per_s"] = self._steps * self.batch_size / train_s if train_s > 0 else 0.0


class EpochLog(keras.callbacks.CSVLogger):
    """`keras.callbacks.CSVLogger` that numbers epochs from 1, as the sample grids
    (`samples/epoch-0001.png`) and Keras' progress bar do: the row of Keras epoch e is
    e + `first`. A run whose log was started with 0-based rows (before this callback
    existed) keeps them: `first=0` (`log_epoch_base`)."""

    def __init__(self, filename, first: int = 1, append: bool = True):
        super().__init__(filename, append=append)
        self.first = first

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch + self.first, logs)


def log_epoch_base(path) -> int:
    """The number of the first epoch in an existing log.csv (0 for logs written before
    epochs were numbered from 1), 1 for a new log."""
    from pathlib import Path

    path = Path(path)
    if path.is_file():
        rows = path.read_text().splitlines()
        if len(rows) > 1 and rows[1].split(",", 1)[0] == "0":
            return 0
    return 1
