"""Training throughput as training scales out: workers and backends.

    python benchmarks/scaling.py                      # paper MNIST config, batch 100
    python benchmarks/scaling.py --steps 20 --json scaling.json
    python benchmarks/scaling.py --preset tiny        # quick check

Runs `training.train.train` (the code behind `t2i train`) in fresh processes:

* TensorFlow, one worker (default strategy);
* TensorFlow, two `MultiWorkerMirroredStrategy` workers on localhost, same
  global batch (each worker computes half of it and they all-reduce);
* JAX, one device (`KERAS_BACKEND=jax`, NumPy input pipeline);
* JAX, `keras.distribution.DataParallel` over two host devices
  (`--xla_force_host_platform_device_count=2`), unless --no-jax-parallel. (On
  a 2-core CPU at the paper's size this row can fail: XLA's CPU all-reduce
  gives up after waiting 40 s for the other simulated device; the tests run
  it at a tiny size.) A row that fails is reported and the others still run.

Each run trains `--epochs` epochs of `--steps` steps; images/s is counted over
the epochs after the first (which includes tracing and compilation), from the
chief's epoch-end times, with validation cut to one batch. On a GPU machine the
same script measures one device per backend (the multi-worker rows then show
the cost of the gRPC all-reduce). Worker processes are pinned to nothing: on a
2-core machine two workers share the two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.distribute import local_cluster  # noqa: E402

WORKER = r"""
import json, sys, time
import keras
from t2i import config as C
from training.train import train

class Timer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.ends = []
    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(time.perf_counter())

args = json.loads(sys.argv[1])
cfg = C.get_preset(args["preset"]).override({
    "data.mnist.source": "bundled", "train.sample_every": 0, "train.validation_steps": 1,
    "train.steps_per_epoch": args["steps"], "train.epochs": args["epochs"],
    "data.validation_examples": cfg_batch if (cfg_batch := C.get_preset(args["preset"]).train.batch_size) else 1})
timer = Timer()
start = time.perf_counter()
train(cfg, args["out"], verbose=0, strategy=args["strategy"], extra_callbacks=[timer])
ends = timer.ends
images = (len(ends) - 1) * args["steps"] * cfg.train.batch_size
print("RESULT " + json.dumps({"images_per_s": images / (ends[-1] - ends[0]),
                              "first_epoch_s": ends[0] - start, "backend": keras.backend.backend()}))
"""


def _run(args, name, strategy, workers=1, env_extra=None, timeout=3600):
    out = Path(tempfile.mkdtemp(prefix=f"scaling-{name}-"))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT), **(env_extra or {}))
    payload = {"preset": args.preset, "steps": args.steps, "epochs": args.epochs,
               "out": str(out / "run"), "strategy": strategy}
    procs = []
    for tf_config in local_cluster(workers):
        e = dict(env)
        if strategy == "multiworker":
            e["TF_CONFIG"] = tf_config
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(payload)], env=e,
                                      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    outs = [p.communicate(timeout=timeout) for p in procs]
    for p, (o, err) in zip(procs, outs):
        if p.returncode != 0:
            reason = next((x for x in reversed(err.splitlines()) if x.strip() and not x.startswith("    @")),
                          f"exit status {p.returncode}")
            print(f"{name} failed: {reason[:300]}", file=sys.stderr)
            return {"name": name, "workers": workers, "failed": reason[:300]}
    line = next(x for x in outs[0][0].splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    result.update(name=name, workers=workers)
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="mnist_captions")
    p.add_argument("--steps", type=int, default=10, help="steps per epoch")
    p.add_argument("--epochs", type=int, default=3, help="epochs (the first is not timed)")
    p.add_argument("--no-jax", action="store_true")
    p.add_argument("--no-jax-parallel", action="store_true")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()

    tf_env = {"KERAS_BACKEND": "tensorflow"}
    jax_env = {"KERAS_BACKEND": "jax"}
    rows = [_run(args, "tensorflow, 1 worker", "default", env_extra=tf_env),
            _run(args, "tensorflow, 2 workers (MultiWorkerMirrored)", "multiworker", workers=2,
                 env_extra=tf_env)]
    if not args.no_jax:
        rows.append(_run(args, "jax, 1 device", "default", env_extra=jax_env))
        if not args.no_jax_parallel:
            rows.append(_run(args, "jax, DataParallel over 2 host devices", "mirrored", env_extra={
                **jax_env, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}))
    base = rows[0].get("images_per_s") or float("nan")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; preset {args.preset}, "
          f"{args.steps} steps x {args.epochs - 1} timed epochs")
    print(f"{'setup':45s} {'images/s':>9s} {'vs TF 1 worker':>15s} {'first epoch':>12s}")
    for r in rows:
        if "failed" in r:
            print(f"{r['name']:45s} failed: {r['failed'][:80]}")
            continue
        print(f"{r['name']:45s} {r['images_per_s']:9.1f} {r['images_per_s'] / base:14.2f}x "
              f"{r['first_epoch_s']:11.1f}s")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": platform.machine(), "cores": os.cpu_count(),
                                               "preset": args.preset, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
