"""Training and generation throughput of alignDRAW, against the machine's matmul peak.

    python benchmarks/train_throughput.py                    # paper MNIST config, batch 100, T=32
    python benchmarks/train_throughput.py --jit              # also with XLA (jit_compile=True)
    python benchmarks/train_throughput.py --json out.json
    KERAS_BACKEND=jax python benchmarks/train_throughput.py --no-pipeline   # JAX (CPU or GPU), no TensorFlow

Reports, on the current machine:
  * matrix-multiply GFLOP/s (float32 2048x2048, NumPy and TensorFlow);
  * the model's FLOPs per image, counted analytically from the layer shapes
    (a multiply-add is 2 FLOPs; training = forward + backward ~ 3x forward);
  * training images/s: `train_on_batch` on one in-memory batch (the step
    alone) and `fit` over the real MNIST-with-captions `tf.data` stream;
  * generation images/s (`model.predict` from the prior, batch 100);
  * achieved GFLOP/s of each, against the matmul peak.
The first call (tracing) is timed separately and excluded from the rates.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from t2i import config as C  # noqa: E402
from t2i.model import AlignDRAW  # noqa: E402


def matmul_gflops(n: int = 2048, reps: int = 10) -> dict:
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a
    t = time.perf_counter()
    for _ in range(reps):
        a @ a
    rates = {"numpy": 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9}
    # The backend's own matmul, on its default device.
    if keras.backend.backend() == "jax":
        import jax

        n, reps = 8192, 20
        ja = jax.numpy.asarray(np.random.default_rng(0).random((n, n), dtype=np.float32))
        f = jax.jit(lambda x: x @ x)
        f(ja).block_until_ready()
        t = time.perf_counter()
        for _ in range(reps):
            r = f(ja)
        r.block_until_ready()
        rates[f"jax ({jax.devices()[0].platform})"] = 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9
    elif keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        ta = tf.constant(a)
        tf.matmul(ta, ta).numpy()
        t = time.perf_counter()
        for _ in range(reps):
            r = tf.matmul(ta, ta)
        r.numpy()
        rates["tensorflow"] = 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9
    return rates


def flops_per_image(cfg: C.ExperimentConfig, caption_length: int = 12) -> dict:
    """Forward FLOPs of one image (matrix work and the filterbank products)."""
    m = cfg.model
    K, u, A = cfg.text.vocab_size, m.caption_units, m.align_units
    H, W, ch, T, L = m.image_height, m.image_width, m.channels, m.num_steps, caption_length
    nr, nw, enc, dec, D = m.read_size, m.write_size, m.encoder_units, m.decoder_units, m.latent_dim
    emb = m.caption_embedding_dim or K
    lstm = lambda inp, units: 2 * (inp + units) * 4 * units
    caption = 2 * L * lstm(emb, u) + 2 * L * 2 * u * A  # BiLSTM + U h_lang once
    align = 2 * dec * A + 2 * L * A + 2 * L * 2 * u  # W h, v^T tanh(.), context
    read = 2 * dec * 5 + 2 * nr * H * W * 2 * ch + 2 * nr * W * nr * 2 * ch
    write = 2 * dec * 5 + 2 * dec * ch * nw ** 2 + 2 * H * nw * nw * ch + 2 * H * nw * W * ch
    prior = 2 * dec * 2 * D
    gen_step = align + lstm(D + 2 * u, dec) + prior + write
    infer_step = gen_step + read + lstm(2 * ch * nr ** 2 + dec, enc) + 2 * enc * 2 * D
    forward = caption + T * infer_step
    return {"train_forward": forward, "train": 3 * forward, "generate": caption + T * gen_step}


class _Timer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())


def bench(cfg: C.ExperimentConfig, jit: bool, steps: int, gen_batches: int, pipeline: bool) -> dict:
    keras.utils.set_random_seed(0)
    B = cfg.train.batch_size
    model = AlignDRAW.from_config_dataclass(cfg)
    t = cfg.train
    model.compile(optimizer=keras.optimizers.RMSprop(t.learning_rate, rho=t.rho, epsilon=t.epsilon,
                                                     clipnorm=t.clipnorm), jit_compile=jit)
    rng = np.random.default_rng(0)
    x = {"images": rng.random((B, cfg.model.image_height, cfg.model.image_width, cfg.model.channels),
                              dtype=np.float32),
         "tokens": rng.integers(2, cfg.text.vocab_size, (B, 12))}
    out = {"jit_compile": jit}
    t0 = time.perf_counter()
    model.train_on_batch(x)
    out["train_first_call_s"] = time.perf_counter() - t0
    model.train_on_batch(x)
    t0 = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x)
    out["train_images_per_s"] = steps * B / (time.perf_counter() - t0)

    if pipeline:
        from t2i.data.pipeline import make_datasets
        from t2i.text import CaptionTokenizer

        data = make_datasets(cfg, CaptionTokenizer(cfg.text))
        timer = _Timer()
        model.fit(data.train, epochs=1, steps_per_epoch=steps + 2, callbacks=[timer], verbose=0,
                  shuffle=False)
        out["fit_pipeline_images_per_s"] = steps * B / (timer.times[-1] - timer.times[1])

    noise = model.noise_for_seeds(range(B))
    feed = {"tokens": x["tokens"], "noise": noise}
    t0 = time.perf_counter()
    model.predict(feed, batch_size=B, verbose=0)
    out["generate_first_call_s"] = time.perf_counter() - t0
    feed = {"tokens": np.tile(x["tokens"], (gen_batches, 1)), "noise": np.tile(noise, (gen_batches, 1, 1))}
    t0 = time.perf_counter()
    model.predict(feed, batch_size=B, verbose=0)
    out["generate_images_per_s"] = gen_batches * B / (time.perf_counter() - t0)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="mnist_captions")
    p.add_argument("--steps", type=int, default=10, help="timed training steps")
    p.add_argument("--gen-batches", type=int, default=20, help="timed generation batches")
    p.add_argument("--jit", action="store_true", help="also measure with jit_compile=True")
    p.add_argument("--no-pipeline", action="store_true", help="skip the fit-over-tf.data measurement")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()

    cfg = C.get_preset(args.preset)
    peak = matmul_gflops()
    flops = flops_per_image(cfg)
    runs = [bench(cfg, False, args.steps, args.gen_batches, not args.no_pipeline)]
    if args.jit:
        runs.append(bench(cfg, True, args.steps, args.gen_batches, False))
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or ''}".strip(", "),
        "keras": keras.__version__, "backend": keras.backend.backend(),
        "preset": args.preset, "batch_size": cfg.train.batch_size, "num_steps": cfg.model.num_steps,
        "matmul_gflops": peak, "flops_per_image": flops, "runs": runs,
    }
    print(f"machine: {result['machine']}; Keras {keras.__version__}, backend {keras.backend.backend()}")
    print("matmul peak (float32): " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peak.items()))
    print(f"FLOPs per image: training {flops['train'] / 1e9:.3f} GFLOP (3x forward), "
          f"generation {flops['generate'] / 1e6:.1f} MFLOP")
    best = max(peak.values())  # the device the model runs on
    for r in runs:
        tag = "XLA" if r["jit_compile"] else "graph"
        train_gf = r["train_images_per_s"] * flops["train"] / 1e9
        gen_gf = r["generate_images_per_s"] * flops["generate"] / 1e9
        print(f"[{tag}] train step: {r['train_images_per_s']:.0f} images/s ({train_gf:.0f} GFLOP/s, "
              f"{100 * train_gf / best:.0f}% of peak), first call {r['train_first_call_s']:.0f} s")
        if "fit_pipeline_images_per_s" in r:
            print(f"[{tag}] fit over the tf.data stream: {r['fit_pipeline_images_per_s']:.0f} images/s")
        print(f"[{tag}] generation: {r['generate_images_per_s']:.0f} images/s ({gen_gf:.0f} GFLOP/s, "
              f"{100 * gen_gf / best:.0f}% of peak), first call {r['generate_first_call_s']:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
