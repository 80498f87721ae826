"""Times rendering the scenes training set, as `t2i train --preset scenes_32` does on a cold cache.

    python benchmarks/scenes_render.py [--scenes 40000] [--json docs/scenes-render.json]

Loads the art, draws the attributes and captions and renders every scene (sprites are
prepared on first use, inside the timing), in this process, with no cache.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=40000)
    p.add_argument("--json")
    args = p.parse_args()
    from t2i.data.scenes import art
    from t2i.data.scenes.sampler import SceneSampler

    start = time.perf_counter()
    art.load_art()
    loaded = time.perf_counter()
    scenes = SceneSampler().sample(args.scenes, np.random.default_rng(0))
    done = time.perf_counter()
    result = {"scenes": len(scenes), "art_load_s": round(loaded - start, 2),
              "render_s": round(done - loaded, 2), "total_s": round(done - start, 2),
              "scenes_per_s": round(len(scenes) / (done - loaded)),
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "load_average_1min": round(os.getloadavg()[0], 2)}
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
