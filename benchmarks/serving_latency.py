"""Serving latency: gRPC through `t2i serve` against the in-process SavedModel call.

    python benchmarks/serving_latency.py                      # paper MNIST config, untrained weights
    python benchmarks/serving_latency.py --run runs/mnist     # a trained run (same compute)
    python benchmarks/serving_latency.py --json out/serving.json

Exports the model (`serving_default`: captions + seeds -> uint8 images), starts
the local model server in a subprocess (`python -m serving.server`, as
`t2i serve` does) on a free localhost port, and measures, for batch 1 and 32
at concurrency 1 and 8: p50 and p99 request latency and images per second,
through `serving.client.predict`; and the same for the in-process call of the
loaded SavedModel signature. Requests are bounded in number and time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CAPTION = "the digit 7 is on the left of the digit 1 ."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stats(latencies, batch, wall) -> dict:
    ms = np.asarray(latencies) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "images_per_s": len(latencies) * batch / wall, "requests": len(latencies)}


def _measure(call, batch: int, concurrency: int, requests: int) -> dict:
    def one(i):
        t = time.perf_counter()
        call(batch, i)
        return time.perf_counter() - t

    for i in range(2):  # warm the path
        one(i)
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(one, range(requests)))
    return _stats(latencies, batch, time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a trained run (default: untrained paper-config weights)")
    p.add_argument("--preset", default="mnist_captions")
    p.add_argument("--requests-batch1", type=int, default=200)
    p.add_argument("--requests-batch32", type=int, default=40)
    p.add_argument("--tensor-content", action="store_true",
                   help="serve with --enable_serialization_as_tensor_content (raw bytes, not typed fields)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()

    import tensorflow as tf

    from export.export_savedmodel import export_loaded, export_model
    from serving import client

    work = Path(tempfile.mkdtemp(prefix="t2i-serving-bench-"))
    base = work / "t2i"
    if args.run:
        path = export_model(args.run, base)
    else:
        from t2i import config as C
        from t2i.model import AlignDRAW

        cfg = C.get_preset(args.preset)
        path = export_loaded(cfg, AlignDRAW.from_config_dataclass(cfg), base)

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]

    def in_process(batch, i):
        signature(captions=tf.constant([CAPTION] * batch),
                  seed=tf.range(i * batch, (i + 1) * batch, dtype=tf.int64))["images"].numpy()

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "serving.server", "--port", str(port), "--model_name", "t2i",
         "--model_base_path", str(base)]
        + (["--enable_serialization_as_tensor_content", "true"] if args.tensor_content else []), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "tensorflow": tf.__version__,
               "preset": args.preset, "run": args.run, "tensor_content": args.tensor_content,
               "cases": []}
    try:
        client.wait_until_available(f"127.0.0.1:{port}", "t2i", timeout_s=300)
        channel = client.make_channel(f"127.0.0.1:{port}")

        def grpc_call(batch, i):
            client.predict(channel, [CAPTION] * batch, seeds=list(range(i * batch, (i + 1) * batch)),
                           model_name="t2i", timeout_s=60)

        for batch, requests in ((1, args.requests_batch1), (32, args.requests_batch32)):
            for concurrency in (1, 8):
                for name, call in (("in-process", in_process), ("grpc", grpc_call)):
                    r = _measure(call, batch, concurrency, requests)
                    r.update(path=name, batch=batch, concurrency=concurrency)
                    results["cases"].append(r)
                    print(f"{name:10s} batch {batch:2d} concurrency {concurrency}: p50 {r['p50_ms']:7.1f} ms  "
                          f"p99 {r['p99_ms']:7.1f} ms  {r['images_per_s']:7.1f} images/s", flush=True)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    by = {(c["path"], c["batch"], c["concurrency"]): c for c in results["cases"]}
    overhead = by[("grpc", 32, 1)]["p50_ms"] / by[("in-process", 32, 1)]["p50_ms"] - 1
    results["grpc_overhead_batch32_p50"] = overhead
    print(f"gRPC overhead at batch 32, concurrency 1 (p50): {100 * overhead:+.1f}%")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
