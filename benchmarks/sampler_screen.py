"""Screens samplers (t2i.samplers) on a trained run: novel compositions, seen ones, diversity, cost.

    python benchmarks/sampler_screen.py                                     # the shipped model
    python benchmarks/sampler_screen.py --samplers plain,contrastive:g=2 --held-out-samples 100 \\
        --seen-samples 4 --json docs/sampler-screen.json

For every sampler, at temperature 1 (`--temperature`), on the same captions and seeds:

- every caption of the run's held-out compositions (both phrasings of a pair), with
  `--held-out-samples` images each (100 gives a standard error of at most 5 points per
  caption), and every caption of the seen compositions with `--seen-samples` images each;
- caption fidelity as `t2i evaluate`'s composition probe reads it (the shipped digit
  classifier, at the places the caption names): held-out overall and per composition, seen;
- diversity: the mean pairwise pixel distance between the images of one caption, and its
  ratio to plain sampling's on the same captions and seeds (issue 25's floor: >= 0.9);
- cost: seconds per image of the sampler, and its ratio to plain's, in this process.

With `--self-classifier N` it first measures the model as its own classifier, the question
best-of-K rests on: on N real held-out test composites (MNIST test digits), how often is the
true caption the one with the highest bound among it and its same-layout negatives (each
image scored under all of them with one shared noise draw, `t2i.samplers.caption_log_posterior`)?

With `--reader N` it measures `t2i.samplers.DigitReader` (what `rejection:k=K` accepts by)
on N real held-out test composites: how often it reads every named digit right, and how
often it agrees with the digit classifier on plain samples of the held-out captions.

The classifier only measures; no sampler sees it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a trained MNIST-with-captions run (default: the shipped model)")
    p.add_argument("--samplers", default="plain,contrastive:g=2,contrastive:g=3,"
                                        "contrastive:g=2,negatives=nearest,best_of_k:k=4",
                   help="samplers, separated by ';' or ',' between names (default: the issue-25 screens)")
    p.add_argument("--held-out-samples", type=int, default=100)
    p.add_argument("--seen-samples", type=int, default=4)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--self-classifier", type=int, default=0, metavar="N",
                   help="first score N real held-out test composites under their captions' "
                        "same-layout negatives (default 0: skip)")
    p.add_argument("--reader", type=int, default=0, metavar="N",
                   help="first measure the digit reader on N real held-out test composites "
                        "(default 0: skip)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()

    from t2i import run as run_lib
    from t2i import samplers
    from t2i.data import mnist_captions as mc
    from t2i.digit_classifier import caption_fidelity, load_classifier
    from t2i.metrics import pairwise_pixel_distance
    from t2i.text import CaptionTokenizer

    names = _split_samplers(args.samplers)
    specs = [samplers.Sampler.parse(n) for n in names]
    config, model = run_lib.load_model(args.run)
    tokenizer = CaptionTokenizer(config.text)
    classifier = load_classifier()
    held = [mc.parse_composition(c) for c in config.data.held_out]
    held_names = {str(c) for c in held}
    seen = [c for c in mc.all_compositions() if str(c) not in held_names]

    def rows_of(compositions, samples):
        rows = [(c, k) for c in compositions for k in c.types for _ in range(samples)]
        return (rows, np.array([k for _, k in rows]), np.array([c.a for c, _ in rows]),
                np.array([-1 if c.b is None else c.b for c, _ in rows]),
                [mc.caption(k, c.a, c.b) for c, k in rows])

    parts = {"held_out": rows_of(held, args.held_out_samples)}
    if args.seen_samples > 0:  # 0: held-out captions only
        parts["seen"] = rows_of(seen, args.seen_samples)
    per_caption = {"held_out": args.held_out_samples, "seen": args.seen_samples}
    results = {"run": run_lib.run_label(run_lib.resolve_run(args.run)),
               "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               "temperature": args.temperature, "held_out_samples": args.held_out_samples,
               "seen_samples": args.seen_samples,
               "held_out_captions": len(parts["held_out"][0]) // args.held_out_samples,
               "seen_captions": len(parts["seen"][0]) // args.seen_samples if "seen" in parts else 0,
               "samplers": {}}
    if args.self_classifier:
        results["self_classifier"] = _self_classifier(model, config, tokenizer, args.self_classifier,
                                                      args.seed)
        print("model as its own classifier on real held-out composites:",
              json.dumps(results["self_classifier"]), flush=True)
    if args.reader:
        results["reader"] = _reader(model, config, tokenizer, classifier, args.reader, args.seed)
        print("digit reader:", json.dumps(results["reader"]), flush=True)
    plain_distance, plain_cost = {}, None
    for spec in specs:
        entry, cost, images_drawn = {}, 0.0, 0
        for part, (rows, types, a, b, captions) in parts.items():
            tokens = tokenizer.encode(captions)
            seeds = args.seed + np.arange(len(rows))
            start = time.perf_counter()
            images = samplers.generate(model, config, tokens, seeds, spec, temperature=args.temperature)["images"]
            cost += time.perf_counter() - start
            images_drawn += len(rows)
            right = caption_fidelity(classifier, images, types, a, b)
            distance = pairwise_pixel_distance(images, per_caption[part])
            entry[part] = float(right.mean())
            entry[f"{part}_diversity"] = float(distance.mean())
            if spec.is_plain:
                plain_distance[part] = distance
            if part in plain_distance:
                entry[f"{part}_diversity_vs_plain"] = float(distance.mean() / plain_distance[part].mean())
            if part == "held_out":
                names_ = np.array([str(c) for c, _ in rows])
                entry["per_composition"] = {n: float(right[names_ == n].mean()) for n in dict.fromkeys(names_)}
            entry["seconds_per_image"] = cost / images_drawn
            results["samplers"][str(spec)] = entry
            if args.json:  # after every part: a long screen keeps what it has measured
                Path(args.json).parent.mkdir(parents=True, exist_ok=True)
                Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
            print(f"{str(spec):38s} {part}: {entry[part]:.3f}", flush=True)
        entry["seconds_per_image"] = cost / images_drawn
        if spec.is_plain:
            plain_cost = entry["seconds_per_image"]
        if plain_cost:
            entry["cost_vs_plain"] = entry["seconds_per_image"] / plain_cost
        results["samplers"][str(spec)] = entry
        print(f"{str(spec):38s} held-out {entry['held_out']:.3f} seen {entry.get('seen', float('nan')):.3f} "
              f"diversity {entry.get('held_out_diversity_vs_plain', float('nan')):.2f}/"
              f"{entry.get('seen_diversity_vs_plain', float('nan')):.2f} "
              f"{entry['seconds_per_image'] * 1000:.1f} ms/image | "
              + " ".join(f"{n} {v:.2f}" for n, v in entry["per_composition"].items()), flush=True)
        if args.json:  # after every sampler: a long screen keeps what it has measured
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


def _self_classifier(model, config, tokenizer, n: int, seed: int) -> dict:
    """How often the true caption of a real held-out composite has the highest posterior."""
    from t2i import samplers
    from t2i.data import mnist_captions as mc
    from t2i.data.mnist import load_mnist

    digits = load_mnist(config.data.mnist.source if config.data.mnist.source != "auto" else "bundled")
    real = mc.CompositeSampler(digits.x_test, digits.y_test, config.data.held_out).sample(
        n, np.random.default_rng(seed), "held_out")
    tokens = tokenizer.encode(list(real.captions))
    interchangeable = samplers.interchangeable_for(config)
    noise = np.random.default_rng(seed + 1).standard_normal(
        (n, model.num_steps, model.latent_dim)).astype(np.float32)
    own, theirs, owner = samplers.family_bounds(model, real.images, tokens, noise, interchangeable)
    posterior = samplers.log_posterior(own, theirs, owner)
    wins = np.array([own[i] > theirs[owner == i].max() for i in range(n)])
    names = np.array(real.compositions())
    pair = real.types < 4
    return {"composites": n, "true_caption_wins": float(wins.mean()),
            "pairs": float(wins[pair].mean()), "corners": float(wins[~pair].mean()),
            "mean_posterior_of_true_caption": float(np.exp(posterior).mean()),
            "per_composition": {c: float(wins[names == c].mean()) for c in sorted(set(names))}}


def _reader(model, config, tokenizer, classifier, n: int, seed: int) -> dict:
    """The digit reader on real held-out composites, and against the classifier on samples."""
    from t2i import samplers
    from t2i.data import mnist_captions as mc
    from t2i.data.mnist import load_mnist
    from t2i.digit_classifier import read_digits

    reader = samplers.reader_for(config)
    digits = load_mnist(config.data.mnist.source if config.data.mnist.source != "auto" else "bundled")
    real = mc.CompositeSampler(digits.x_test, digits.y_test, config.data.held_out).sample(
        n, np.random.default_rng(seed), "held_out")
    tokens = tokenizer.encode(list(real.captions))
    noise = model.noise_for_seeds(seed + np.arange(n), stream=samplers.SCORE_STREAM)
    _, passed = reader.read(model, real.images, reader.layouts(tokens), noise)
    names = np.array(real.compositions())
    out = {"real_composites": n, "reads_every_named_digit": float(passed.mean()),
           "per_composition": {c: float(passed[names == c].mean()) for c in sorted(set(names))}}
    # On the model's own samples of the same captions: reader and classifier, slot by slot.
    seeds = seed + np.arange(n)
    images = model.draw(tokens, model.noise_for_seeds(seeds))["images"]
    reading, owner, named = reader.readings(model, images, reader.layouts(tokens),
                                            model.noise_for_seeds(seeds, stream=samplers.SCORE_STREAM))
    read = np.concatenate([np.asarray(r) for r in read_digits(classifier, images, real.types, real.a, real.b)])
    said = reading.argmax(axis=1) == named
    out["samples"] = {"slots": int(len(named)), "reader_reads_named": float(said.mean()),
                      "classifier_reads_named": float((read == named).mean()),
                      "agree": float((reading.argmax(axis=1) == read).mean()),
                      "classifier_named_where_reader_named": float((read[said] == named[said]).mean())}
    return out


def _split_samplers(text: str) -> list[str]:
    """"plain,contrastive:g=2,negatives=nearest,best_of_k:k=4" -> the three names: a comma
    starts a new sampler unless what follows is one of the current sampler's key=value."""
    if ";" in text:
        return [t.strip() for t in text.split(";") if t.strip()]
    out: list[str] = []
    for piece in (t.strip() for t in text.split(",")):
        if not piece:
            continue
        if out and "=" in piece and ":" not in piece:
            out[-1] += "," + piece
        else:
            out.append(piece)
    return out


if __name__ == "__main__":
    main()
