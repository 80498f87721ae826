"""How far one caption-and-seed image depends on the batch it is drawn in.

    python benchmarks/batch_independence.py                  # the shipped model, 256 examples
    python benchmarks/batch_independence.py --examples 512 --json out/batch.json

Example i uses only seed s_i, so its image is the same in any batch up to float rounding:
the backend's matrix kernels may sum in another order for another batch size (or another
row position). This draws `--examples` (caption, seed) pairs alone (batch 1) and inside
batches of 8, 32 and 64, through `AlignDRAW.generate` (what `t2i generate` runs) and through
the exported `serving_default` signature (what `t2i serve` and TF Serving run), and reports
the largest float difference and how many uint8 pixels (round(255 x), as both paths write
them) and images differ from the batch-1 image.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def _compare(alone_float, alone_u8, other_float, other_u8) -> dict:
    diff = np.abs(other_u8.astype(np.int16) - alone_u8.astype(np.int16))
    out = {"uint8_pixels_differing": int((diff > 0).sum()), "uint8_max_levels": int(diff.max()),
           "images_differing": int((diff.reshape(len(diff), -1).max(1) > 0).sum()),
           "pixels": int(diff.size)}
    if alone_float is not None:
        out["float_max_abs"] = float(np.abs(other_float - alone_float).max())
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a trained run (default: the shipped model)")
    p.add_argument("--examples", type=int, default=256)
    p.add_argument("--batches", default="8,32,64")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()

    import tensorflow as tf

    from export.export_savedmodel import export_loaded
    from t2i import run as run_lib
    from t2i.data.mnist_captions import all_compositions, captions_for
    from t2i.text import CaptionTokenizer
    from t2i.visualize import to_uint8

    config, model = run_lib.load_model(args.run)
    captions = [c for comp in all_compositions() for c in captions_for(comp)]
    captions = [captions[i % len(captions)] for i in range(args.examples)]
    seeds = list(range(1000, 1000 + args.examples))
    tokens = CaptionTokenizer(config.text).encode(captions)
    path = export_loaded(config, model, Path(tempfile.mkdtemp(prefix="t2i-batch-")) / "t2i")
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]

    def generate(lo, hi):
        return model.generate(tokens[lo:hi], seeds=seeds[lo:hi])["images"]

    def exported(lo, hi):
        return serve(captions=tf.constant(captions[lo:hi]),
                     seed=tf.constant(seeds[lo:hi], tf.int64))["images"].numpy()

    n = args.examples
    alone_g = np.concatenate([generate(i, i + 1) for i in range(n)])
    alone_e = np.concatenate([exported(i, i + 1) for i in range(n)])
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               "run": run_lib.run_label(run_lib.resolve_run(args.run)), "examples": n,
               "exported_alone_vs_generate_alone": _compare(None, to_uint8(alone_g), None, alone_e),
               "batches": {}}
    for b in (int(x) for x in args.batches.split(",")):
        in_g = np.concatenate([generate(i, i + b) for i in range(0, n, b)])
        in_e = np.concatenate([exported(i, i + b) for i in range(0, n, b)])
        results["batches"][str(b)] = {
            "generate": _compare(alone_g, to_uint8(alone_g), in_g, to_uint8(in_g)),
            "exported": _compare(None, alone_e, None, in_e)}
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
