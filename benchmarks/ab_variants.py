"""Two config variants of the model in one process, timed in alternating rounds.

    python benchmarks/ab_variants.py --b model.precision=mixed_bfloat16
    python benchmarks/ab_variants.py --a model.loop=unrolled --b model.loop=while --mode generate

A shared 2-core machine's speed drifts by up to 2x within minutes (other work, the host), so
two separate runs cannot tell a 10% change from noise. Here both models are built and traced
first, then timed round by round, A then B, on the same in-memory batch: each round's ratio
B/A sees the same conditions. Prints every round and the medians. `--mode train` times
`train_on_batch` (paper MNIST config, batch 100); `--mode generate` times `predict` from the
prior on `--captions` captions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from t2i import config as C  # noqa: E402
from t2i.model import AlignDRAW  # noqa: E402


def overrides(items) -> dict:
    types = C.field_types()
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        key = C.legacy_key(key)  # the flat data fields of earlier releases
        if key not in types:
            raise SystemExit(f"unknown config field {key!r}")
        out[key] = C.parse_value(value, types[key], key)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="mnist_captions")
    p.add_argument("--a", action="append", default=[], metavar="KEY=VALUE", help="variant A overrides")
    p.add_argument("--b", action="append", default=[], metavar="KEY=VALUE", help="variant B overrides")
    p.add_argument("--mode", choices=("train", "generate"), default="train")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--steps", type=int, default=3, help="training steps per round")
    p.add_argument("--captions", type=int, default=500, help="captions per generation round")
    p.add_argument("--json")
    args = p.parse_args(argv)
    base = C.get_preset(args.preset)
    B = base.train.batch_size
    m = base.model
    rng = np.random.default_rng(0)
    x = {"images": (rng.random((B, m.image_height, m.image_width, m.channels)) > 0.8).astype("float32"),
         "tokens": rng.integers(2, base.text.vocab_size, (B, 12))}
    feed = {"tokens": rng.integers(2, base.text.vocab_size, (args.captions, 12))}
    models = {}
    for name, items in (("A", args.a), ("B", args.b)):
        cfg = base.override(overrides(items))
        keras.utils.set_random_seed(0)
        model = AlignDRAW.from_config_dataclass(cfg)
        t = cfg.train
        model.compile(optimizer=keras.optimizers.RMSprop(t.learning_rate, rho=t.rho, epsilon=t.epsilon,
                                                         clipnorm=t.clipnorm))
        if args.mode == "train":
            model.train_on_batch(x)
            model.train_on_batch(x)
        else:
            feed["noise"] = model.noise_for_seeds(np.arange(args.captions))
            model.predict(feed, batch_size=B, verbose=0)
        models[name] = model
    rates = {"A": [], "B": []}
    for _ in range(args.rounds):
        for name, model in models.items():
            t0 = time.perf_counter()
            if args.mode == "train":
                for _ in range(args.steps):
                    model.train_on_batch(x)
                rates[name].append(args.steps * B / (time.perf_counter() - t0))
            else:
                model.predict(feed, batch_size=B, verbose=0)
                rates[name].append(args.captions / (time.perf_counter() - t0))
    ratios = [b / a for a, b in zip(rates["A"], rates["B"])]
    for name, items in (("A", args.a), ("B", args.b)):
        print(f"{name} ({' '.join(items) or 'preset'}): images/s per round "
              + " ".join(f"{r:.0f}" for r in rates[name]) + f"; median {statistics.median(rates[name]):.1f}")
    print("B/A per round: " + " ".join(f"{r:.2f}" for r in ratios)
          + f"; median {statistics.median(ratios):.2f}, B faster in {sum(r > 1 for r in ratios)} of {len(ratios)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"mode": args.mode, "a": args.a, "b": args.b, "rates": rates, "ratios": ratios,
                       "load": os.getloadavg()}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
