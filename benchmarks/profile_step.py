"""Where the training step's time goes: TensorFlow's profiler, summed by op type and by layer.

    python benchmarks/profile_step.py                       # paper MNIST config, batch 100
    python benchmarks/profile_step.py --set model.precision=mixed_bfloat16 --top 30

Runs a few `train_on_batch` steps of the `mnist_captions` model under
`tf.profiler.experimental`, converts the trace with TensorFlow's own
`framework_op_stats` tool and prints self time per step by op type, by layer
(forward and gradient), and the most expensive single ops. Self times are
summed over TensorFlow's threads and include the profiler's overhead, so read
them as shares, not as the step's wall time; "IDLE" is time the executor's
threads waited.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import re
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from t2i import config as C  # noqa: E402
from t2i.model import AlignDRAW  # noqa: E402


def op_stats(xplane: str) -> list[dict]:
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin

    data, ok = plugin.xspace_to_tools_data([xplane], "framework_op_stats", {})
    if not ok:
        raise SystemExit("the profiler could not convert its trace")
    table = json.loads(data)
    table = table[0] if isinstance(table, list) else table
    cols = [c["id"] for c in table["cols"]]
    return [dict(zip(cols, [c.get("v") for c in r["c"]])) for r in table["rows"]]


def layer_of(name: str) -> str:
    found = re.findall(r"while/(\w+?)(?:_\d+)?/", name)
    if not found:
        return "outside the loop"
    return "the loop's own ops" if found[-1] in ("gradients", "body") else found[-1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="mnist_captions")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. model.precision=mixed_bfloat16")
    p.add_argument("--steps", type=int, default=3, help="profiled steps")
    p.add_argument("--top", type=int, default=15, help="single ops to list")
    args = p.parse_args(argv)
    cfg = C.get_preset(args.preset).override(dict(s.split("=", 1) for s in args.set))
    keras.utils.set_random_seed(0)
    model = AlignDRAW.from_config_dataclass(cfg)
    t = cfg.train
    model.compile(optimizer=keras.optimizers.RMSprop(t.learning_rate, rho=t.rho, epsilon=t.epsilon,
                                                     clipnorm=t.clipnorm))
    m, B = cfg.model, t.batch_size
    rng = np.random.default_rng(0)
    x = {"images": (rng.random((B, m.image_height, m.image_width, m.channels)) > 0.8).astype("float32"),
         "tokens": rng.integers(2, cfg.text.vocab_size, (B, 12))}
    model.train_on_batch(x)
    model.train_on_batch(x)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(args.steps):
            model.train_on_batch(x)
        tf.profiler.experimental.stop()
        rows = op_stats(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0])
    per_step = lambda us: us / args.steps / 1e3
    by_type, count, by_layer = collections.Counter(), collections.Counter(), collections.Counter()
    for r in rows:
        by_type[r["type"]] += r["total_self_time"]
        count[r["type"]] += r["occurrences"]
        if r["type"] != "IDLE":
            kind = "gradient" if "gradients" in r["operation"] else "forward"
            by_layer[(layer_of(r["operation"]), kind)] += r["total_self_time"]
    total = sum(by_type.values())
    print(f"{args.preset} {' '.join(args.set)}: self time {per_step(total):.0f} ms a step "
          f"(summed over threads, profiler overhead included)\n")
    print("| op type | ms/step | share | ops/step |\n|---|---|---|---|")
    for k, v in by_type.most_common(20):
        print(f"| {k} | {per_step(v):.1f} | {100 * v / total:.1f}% | {count[k] / args.steps:.0f} |")
    print("\n| layer | pass | ms/step | share |\n|---|---|---|---|")
    for (layer, kind), v in by_layer.most_common(20):
        print(f"| {layer} | {kind} | {per_step(v):.1f} | {100 * v / total:.1f}% |")
    print("\n| op | type | ms/step |\n|---|---|---|")
    for r in sorted((r for r in rows if r["type"] != "IDLE"), key=lambda r: -r["total_self_time"])[:args.top]:
        print(f"| {r['operation'][-70:]} | {r['type']} | {per_step(r['total_self_time']):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
