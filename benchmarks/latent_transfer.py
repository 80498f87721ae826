"""Draws held-out compositions with latents taken from real training composites (issue 25 screen).

    python benchmarks/latent_transfer.py --source other-corner --samples 100
    python benchmarks/latent_transfer.py --source same-corner --samples 100 --json out.json

The question: the shipped model keeps part of a corner digit's identity in its latents
(BENCHMARKS "Novel compositions": 20% of corner images follow swapped latents), and its prior
puts them in the wrong place for a digit in a corner it never drew it in. Would latents
inferred from a real image of the same digit elsewhere carry the identity over? For each image
of each held-out caption, a training composite is drawn from the model's own training digits
(MNIST train split) and its latents z_1..z_T are inferred under its own caption
(`AlignDRAW.posterior_latents`, the posterior's noise from the image's seed); the held-out
caption is then drawn with those latents (`AlignDRAW.draw_step`). Sources:

- other-corner: corners: the same digit in another corner; pairs: the same relation with
  one of the two digits in its slot;
- same-corner: corners: another digit in the same corner; pairs: the same relation, any digits.

The digit classifier reads the results as `t2i evaluate`'s composition probe does, beside
plain sampling of the same captions and seeds; nothing here sees the classifier.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a trained MNIST-with-captions run (default: the shipped model)")
    p.add_argument("--source", choices=("other-corner", "same-corner"), default="other-corner")
    p.add_argument("--samples", type=int, default=100, help="images per held-out caption")
    p.add_argument("--bank", type=int, default=30000, help="training composites to draw sources from")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()

    from keras import ops

    from t2i import run as run_lib
    from t2i.data import mnist_captions as mc
    from t2i.data.mnist import load_mnist
    from t2i.digit_classifier import caption_fidelity, load_classifier
    from t2i.metrics import pairwise_pixel_distance
    from t2i.text import CaptionTokenizer

    config, model = run_lib.load_model(args.run)
    tokenizer = CaptionTokenizer(config.text)
    digits = load_mnist(config.data.mnist.source if config.data.mnist.source != "auto" else "bundled")
    bank = mc.CompositeSampler(digits.x_train, digits.y_train, config.data.held_out).sample(
        args.bank, np.random.default_rng(args.seed + 123), "seen")
    held = [mc.parse_composition(c) for c in config.data.held_out]
    rows = [(c, k) for c in held for k in c.types for _ in range(args.samples)]
    types = np.array([k for _, k in rows])
    a = np.array([c.a for c, _ in rows])
    b = np.array([-1 if c.b is None else c.b for c, _ in rows])
    rng = np.random.default_rng(args.seed + 7)
    sources = []
    for c, k in rows:
        if k >= 4 and args.source == "other-corner":
            ok = (bank.types >= 4) & (bank.types != k) & (bank.a == c.a)
        elif k >= 4:
            ok = (bank.types == k) & (bank.a != c.a)
        elif args.source == "other-corner":
            ok = (bank.types == k) & ((bank.a == c.a) | (bank.b == c.b))
        else:
            ok = bank.types == k
        sources.append(rng.choice(np.flatnonzero(ok)))
    sources = np.array(sources)
    seeds = args.seed + np.arange(len(rows))
    noise = model.noise_for_seeds(seeds)
    target = tokenizer.encode([mc.caption(k, c.a, c.b) for c, k in rows])

    start = time.perf_counter()
    images = []
    for i in range(0, len(rows), 500):
        part = slice(i, i + 500)
        z = model.posterior_latents(bank.images[sources[part]],
                                    tokenizer.encode(list(bank.captions[sources[part]])), noise[part])
        context, state = model.caption_context(target[part]), model.initial_state(len(z))
        for t in range(model.num_steps):
            state, _ = model.draw_step(context, state, z[:, t])
        images.append(ops.convert_to_numpy(ops.sigmoid(state.canvas)))
    transferred = np.concatenate(images)
    seconds = (time.perf_counter() - start) / len(rows)
    plain = model.draw(target, noise)["images"]

    classifier = load_classifier()
    names = np.array([str(c) for c, _ in rows])
    results = {"run": run_lib.run_label(run_lib.resolve_run(args.run)), "source": args.source,
               "samples": args.samples, "seconds_per_image": seconds}
    for label, drawn in (("plain", plain), ("transferred", transferred)):
        right = caption_fidelity(classifier, drawn, types, a, b)
        results[label] = {"held_out": float(right.mean()),
                          "diversity": float(pairwise_pixel_distance(drawn, args.samples).mean()),
                          "per_composition": {n: float(right[names == n].mean()) for n in dict.fromkeys(names)}}
        print(f"{label:12s} held-out {right.mean():.3f} | "
              + " ".join(f"{n} {v:.2f}" for n, v in results[label]["per_composition"].items()), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
