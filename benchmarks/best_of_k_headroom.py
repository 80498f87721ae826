"""How much best-of-K could gain on scenes, and how much the model's own score takes.

For each caption, K plain candidates are drawn at temperature 1 (streams 0..K-1, the
ones `best_of_k` draws). The scenes attribute classifier says which candidates are
right in every attribute their caption names (it only measures; no score sees it).
Then, for K' in (1, 4, K):

* plain: candidate 0 (best-of-1 is plain sampling);
* oracle: any of the first K' candidates right, the ceiling of any selector;
* each score: the candidate with the highest score among the first K' kept.

Scores, all from the model alone (`t2i.samplers`): the caption's log posterior
against every same-layout negative (`all`, what `best_of_k` uses), against the
noun negatives only (`noun`) or the colour negatives only (`colour`), the same with
the bounds averaged over two noise draws (`all, 2 draws`), and with the posterior
means instead of a draw (`all, zero noise`).

Captions: both sides of the colour flip pairs of `t2i evaluate` (the same pairs and
seeds), or `--captions test` for one caption each of fresh test scenes.

    python benchmarks/best_of_k_headroom.py --run pretrained:scenes_32 --k 8 \
        --json docs/best-of-k-headroom.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCORES = ("all", "noun", "colour", "all, 2 draws", "all, zero noise")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default="pretrained:scenes_32")
    p.add_argument("--checkpoint", default="best", choices=("last", "best"))
    p.add_argument("--captions", default="colour-flips", choices=("colour-flips", "test"))
    p.add_argument("--pairs", type=int, default=100, help="colour flip pairs (2 captions each)")
    p.add_argument("--scenes", type=int, default=200, help="test scenes (--captions test)")
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)

    from t2i import run as runs
    from t2i import samplers
    from t2i.data.scenes.sampler import SceneSampler
    from t2i.scene_classifier import load_classifier
    from t2i.text import CaptionTokenizer
    from training.scenes_eval import attribute_fidelity, flip_pairs

    config, model = runs.load_model(args.run, args.checkpoint)
    classifier = load_classifier()
    rng = np.random.default_rng(args.seed)
    if args.captions == "colour-flips":  # as `scenes_report` draws them: the same pairs and seeds
        pairs = flip_pairs(args.pairs, "colour", rng, config.data.held_out)
        captions = [a for a, _ in pairs] + [b for _, b in pairs]
        seeds = args.seed + 10**6 + np.concatenate([np.arange(len(pairs))] * 2)
    else:
        scenes = SceneSampler().sample(args.scenes, rng, "all")
        captions = [c[int(rng.integers(0, len(c)))] for c in scenes.captions]
        seeds = args.seed + np.arange(len(captions))
    tokens = CaptionTokenizer(config.text).encode(captions)
    groups = samplers.interchangeable_for(config)
    negatives, owner = samplers.same_layout_negatives(tokens, groups)
    colour_ids = next(g.ids for g in groups if g.before is not None)  # colours: swapped before a noun
    swapped = (negatives != tokens[owner]).argmax(1)
    is_colour = np.isin(tokens[owner, swapped], colour_ids)

    right = np.zeros((len(captions), args.k), bool)
    scores = {name: np.zeros((len(captions), args.k)) for name in SCORES}
    start = time.perf_counter()
    for j in range(args.k):
        images = model.draw(tokens, model.noise_for_seeds(seeds, stream=j))["images"]
        right[:, j], _ = attribute_fidelity(classifier, images, captions)
        noise = model.noise_for_seeds(seeds, stream=samplers.SCORE_STREAM + j)
        own, theirs, who = samplers.family_bounds(model, images, tokens, noise, groups)
        scores["all"][:, j] = samplers.log_posterior(own, theirs, who)
        scores["noun"][:, j] = samplers.log_posterior(own, theirs[~is_colour], who[~is_colour])
        scores["colour"][:, j] = samplers.log_posterior(own, theirs[is_colour], who[is_colour])
        noise2 = model.noise_for_seeds(seeds, stream=2 * samplers.SCORE_STREAM + j)
        own2, theirs2, _ = samplers.family_bounds(model, images, tokens, noise2, groups)
        scores["all, 2 draws"][:, j] = samplers.log_posterior((own + own2) / 2, (theirs + theirs2) / 2, who)
        own0, theirs0, _ = samplers.family_bounds(model, images, tokens, np.zeros_like(noise), groups)
        scores["all, zero noise"][:, j] = samplers.log_posterior(own0, theirs0, who)
        print(f"candidate {j + 1}/{args.k}: {time.perf_counter() - start:.0f} s", flush=True)

    rows = np.arange(len(captions))
    ks = sorted({1, min(4, args.k), args.k})
    table = {"plain (candidate 0)": float(right[:, 0].mean())}
    for k in ks:
        table[f"oracle, K={k}"] = float(right[:, :k].any(1).mean())
    for name in SCORES:
        for k in ks[1:]:
            table[f"{name}, K={k}"] = float(right[rows, scores[name][:, :k].argmax(1)].mean())
    result = {"run": runs.run_label(args.run), "captions": args.captions, "n": len(captions),
              "k": args.k, "all named attributes right": table}
    print(f"{result['run']}, {len(captions)} captions ({args.captions}), all named attributes right:")
    for name, value in table.items():
        print(f"  {name}: {100 * value:.1f}%")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
