"""What the run's own sampler costs in the exported graph: `serving_default` against `plain`.

    python benchmarks/export_samplers.py --run pretrained:scenes_32 --json out/export-samplers.json

Exports the run (for the shipped scenes model, `serving_default` draws best-of-4 in the
graph, `export/graph_samplers.py`), loads the SavedModel in process, and times both
signatures on the same captions and seeds, in alternating rounds, at batch 1 and 16:
the median seconds a call and the ratio. Also reports how many images the two
signatures draw alike (the candidate kept was plain's).
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default="pretrained:scenes_32")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)

    import numpy as np
    import tensorflow as tf

    from export.export_savedmodel import export_model
    from t2i import run as runs
    from t2i.data.catalog import example_captions

    config, _ = runs.load_model(args.run)
    seen, held = example_captions(config)
    captions = (list(seen) + list(held)) * 16
    with tempfile.TemporaryDirectory() as work:
        start = time.perf_counter()
        path = export_model(args.run, Path(work) / "t2i")
        export_s = time.perf_counter() - start
        loaded = tf.saved_model.load(str(path))
        result = {"run": runs.run_label(args.run), "sampler": config.sample.sampler,
                  "machine": f"{platform.machine()}, {os.cpu_count()} cores", "export_s": export_s, "cases": []}
        for batch in (1, 16):
            inputs = {"captions": tf.constant(captions[:batch]), "seed": tf.range(batch, dtype=tf.int64)}
            times = {"serving_default": [], "plain": []}
            images = {}
            for name in times:  # the first call traces nothing, but warms the kernels
                images[name] = loaded.signatures[name](**inputs)["images"].numpy()
            for _ in range(args.rounds):
                for name in times:
                    start = time.perf_counter()
                    loaded.signatures[name](**inputs)["images"].numpy()
                    times[name].append(time.perf_counter() - start)
            case = {"batch": batch, **{f"{n}_s": float(np.median(t)) for n, t in times.items()},
                    "same_image": int(sum(np.array_equal(a, b) for a, b in
                                          zip(images["serving_default"], images["plain"])))}
            case["ratio"] = case["serving_default_s"] / case["plain_s"]
            result["cases"].append(case)
            print(f"batch {batch:2d}: serving_default ({config.sample.sampler}) {case['serving_default_s']:.3f} s, "
                  f"plain {case['plain_s']:.3f} s, ratio {case['ratio']:.1f}; "
                  f"{case['same_image']} of {batch} images alike", flush=True)
    print(f"export: {export_s:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
