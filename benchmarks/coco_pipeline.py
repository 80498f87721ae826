"""Throughput of the COCO input pipeline, from JPEGs and from the cache, against the training step.

    python benchmarks/coco_pipeline.py                         # 10,000 images, measures the train step too
    python benchmarks/coco_pipeline.py --images 2000 --json out.json
    python benchmarks/coco_pipeline.py --step-images-per-s 900 # skip the model, compare with a known rate

Writes a COCO-layout fixture (`tests/fixtures/coco.py`) into a temporary
directory: `--images` train2014 JPEGs of 640x480 and similar sizes with pixel
noise, so that each file is about as large as a real COCO JPEG (~100-150 KB)
and costs a comparable decode, plus 5-7 captions per image. Then, on the
current machine, it reports (caption, image) examples per second of:

  * the training stream decoding JPEGs (`data.coco.cache` unset);
  * building the uint8 image cache (`build_cache`, images per second);
  * the training stream from the cache;

and the training step's demand: images/s of `AlignDRAW.train_on_batch` at the
`coco_32` config (batch 100, captions of 12 tokens, a `--vocab-size`-word
vocabulary like the paper's 25,323), first call excluded; or
`--step-images-per-s` from elsewhere (e.g. a GPU run). A pipeline that
delivers fewer examples/s than the step consumes would slow training down.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from t2i import config as C  # noqa: E402
from t2i.data import coco  # noqa: E402
from t2i.text import CaptionTokenizer  # noqa: E402
from tests.fixtures.coco import make_coco_fixture  # noqa: E402

SIZES = ((640, 480), (480, 640), (640, 427), (500, 375), (612, 612))


def stream_rate(ds: tf.data.Dataset, batches: int, warmup: int = 2) -> dict:
    """Examples/s over `batches` batches after `warmup` untimed ones."""
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    n, t0 = 0, time.perf_counter()
    for _ in range(batches):
        n += int(next(it)["images"].shape[0])
    seconds = time.perf_counter() - t0
    return {"examples": n, "seconds": seconds, "examples_per_s": n / seconds}


def step_rate(cfg: C.ExperimentConfig, steps: int, caption_length: int = 12) -> dict:
    """Images/s of the training step at `cfg` (random images and tokens)."""
    import keras

    from t2i.model import AlignDRAW

    keras.utils.set_random_seed(0)
    b, m, t = cfg.train.batch_size, cfg.model, cfg.train
    model = AlignDRAW.from_config_dataclass(cfg)
    model.compile(optimizer=keras.optimizers.RMSprop(t.learning_rate, rho=t.rho, epsilon=t.epsilon,
                                                     clipnorm=t.clipnorm))
    rng = np.random.default_rng(0)
    x = {"images": rng.random((b, m.image_height, m.image_width, m.channels), dtype=np.float32),
         "tokens": rng.integers(2, cfg.text.vocab_size, (b, caption_length))}
    t0 = time.perf_counter()
    model.train_on_batch(x)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x)
    return {"images_per_s": steps * b / (time.perf_counter() - t0), "first_call_s": first, "steps": steps}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=10000, help="train2014 images in the fixture")
    p.add_argument("--batches", type=int, default=40, help="timed batches per stream")
    p.add_argument("--steps", type=int, default=3, help="timed training steps")
    p.add_argument("--vocab-size", type=int, default=25323, help="vocabulary of the timed model")
    p.add_argument("--step-images-per-s", type=float, help="use this training demand instead of measuring")
    p.add_argument("--dir", help="write the fixture here (kept) instead of a temporary directory")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()

    tmp = None if args.dir else tempfile.TemporaryDirectory(prefix="coco-bench-")
    root = Path(args.dir or tmp.name)
    n_val = max(20, args.images // 50) // 2 * 2
    t0 = time.perf_counter()
    make_coco_fixture(root, n_train=args.images, n_val=n_val, sizes=SIZES, quality=90, noise=20.0)
    fixture_s = time.perf_counter() - t0
    jpeg_bytes = [f.stat().st_size for f in (root / "train2014").iterdir()]

    cfg = C.coco_32().override({"data.coco.root": str(root), "data.coco.validation_images": n_val // 2,
                                "data.coco.test_images": n_val // 2})
    cfg = coco.resolve_coco_config(cfg)
    tokenizer = CaptionTokenizer(cfg.text)

    jpeg = coco.make_coco_datasets(cfg, tokenizer)
    batches = min(args.batches, jpeg.steps_per_epoch - 2)
    from_jpeg = stream_rate(jpeg.train, batches)

    cached_cfg = cfg.override({"data.coco.cache": str(root / "cache")})
    t0 = time.perf_counter()
    coco.build_cache(cached_cfg)
    build_s = time.perf_counter() - t0
    images_total = args.images + n_val
    cached = coco.make_coco_datasets(cached_cfg, tokenizer)
    from_cache = stream_rate(cached.train, batches)

    if args.step_images_per_s:
        step = {"images_per_s": args.step_images_per_s, "measured": False}
    else:
        words = tuple(f"w{i}" for i in range(args.vocab_size - 2))
        step = dict(step_rate(cfg.override({"text.vocabulary": words}), args.steps), measured=True)

    demand = step["images_per_s"]
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "tensorflow": tf.__version__,
        "images": args.images, "validation_test_images": n_val,
        "mean_jpeg_kb": float(np.mean(jpeg_bytes) / 1024), "fixture_write_s": fixture_s,
        "train_examples_per_epoch": jpeg.stats["train_examples"], "steps_per_epoch": jpeg.steps_per_epoch,
        "stream_from_jpeg": from_jpeg, "cache_build": {"images": images_total, "seconds": build_s,
                                                        "images_per_s": images_total / build_s},
        "stream_from_cache": from_cache, "train_step": step,
    }
    print(f"machine: {result['machine']}; TensorFlow {tf.__version__}; fixture: {args.images} train2014 JPEGs "
          f"(mean {result['mean_jpeg_kb']:.0f} KB, sizes {', '.join(f'{w}x{h}' for w, h in SIZES)}), "
          f"{jpeg.stats['train_examples']} training examples, written in {fixture_s:.0f} s")
    rows = [("stream from JPEGs (no cache)", from_jpeg["examples_per_s"], "examples/s"),
            ("cache build (decode + write)", result["cache_build"]["images_per_s"], "images/s"),
            ("stream from the cache", from_cache["examples_per_s"], "examples/s"),
            ("training step, coco_32, batch 100" + ("" if step["measured"] else " (given)"), demand, "images/s")]
    print(f"| {'stage':<44} | {'rate':>10} | {'unit':<10} | {'x step demand':>13} |")
    print(f"|{'-' * 46}|{'-' * 12}|{'-' * 12}|{'-' * 15}|")
    for name, rate, unit in rows:
        ratio = f"{rate / demand:.1f}x" if unit == "examples/s" else ""
        print(f"| {name:<44} | {rate:>10.0f} | {unit:<10} | {ratio:>13} |")
    if step["measured"]:
        print(f"(training step first call: {step['first_call_s']:.0f} s, excluded)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
