"""Caption fidelity and the composition probe of a run at several guidance scales, temperature 1.

    python benchmarks/guidance_probe.py --run runs/ft-cfg [--guidance 1,1.5,2,3] [--samples 20]
        [--examples 1000] [--checkpoint last] [--json out.json]

For a run trained with `model.caption_dropout` (see `t2i.guidance`). Reports the
single-sample test bound (guidance does not change it: it is a property of the
trained model), and for every guidance scale the caption fidelity of one sample
per test composite (seen / held-out) and the composition probe (seen, held-out,
each held-out composition), exactly as `t2i evaluate --guidance G` computes
them, at the paper's sampling temperature 1. Scale 1 is the model without
guidance. Without --run: the shipped model, which has no unconditional branch
(scale 1 only).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default=None)
    p.add_argument("--checkpoint", default="last", choices=("last", "best"))
    p.add_argument("--guidance", default="1,1.5,2,3")
    p.add_argument("--samples", type=int, default=20)
    p.add_argument("--latent-only", action="store_true",
                   help="guide only the prior means (t2i.guidance canvas=False), not the canvas")
    p.add_argument("--examples", type=int, default=1000)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    from t2i import metrics
    from t2i import run as run_lib
    from t2i.data.pipeline import make_datasets
    from t2i.digit_classifier import caption_fidelity, load_classifier
    from t2i.text import CaptionTokenizer
    from training.evaluate import composition_probe

    start = time.time()
    config, model = run_lib.load_model(args.run, args.checkpoint)
    tok = CaptionTokenizer(config.text)
    clf = load_classifier()
    images, captions, held, test = make_datasets(config, tok).test_examples.evaluation_set(args.examples)
    n = len(captions)
    tokens = tok.encode([str(c) for c in captions])
    held = np.asarray(held, bool)
    w = metrics.log_weights(model, images, tokens, 1, seed=0)
    report = {"run": args.run or "shipped", "checkpoint": args.checkpoint, "examples": n,
              "held_out_examples": int(held.sum()),
              "lower_bound": {"all": float(w.mean()), "seen": float(w[~held].mean()),
                              "held_out": float(w[held].mean())},
              "by_guidance": {}}
    print(f"bound {report['lower_bound']} {time.time() - start:.0f}s", file=sys.stderr)
    if args.latent_only:  # the probe calls model.generate; route it through latent-only guidance
        from t2i import guidance as guidance_lib

        plain = model.generate

        def generate(tokens, seeds, guidance=1.0, **kw):
            if guidance == 1.0:
                return plain(tokens, seeds, **kw)
            noise = model.noise_for_seeds(np.asarray(seeds).reshape(-1)) * np.float32(kw.get("temperature", 1.0))
            return guidance_lib.guided_generate(model, tokens, noise, guidance, canvas=False)

        model.generate = generate
        report["latent_only"] = True
    for g in [float(x) for x in args.guidance.split(",") if x.strip()]:
        drawn = model.generate(tokens, np.arange(n), guidance=g)["images"]
        right = caption_fidelity(clf, drawn, test.types[:n], test.a[:n], test.b[:n])
        probe = composition_probe(model, tok, clf, config.data.held_out, args.samples, 0, guidance=g)
        report["by_guidance"][f"{g:g}"] = {
            "fidelity": {"seen": float(right[~held].mean()), "held_out": float(right[held].mean())},
            "probe": {k: probe[k] for k in ("seen", "held_out", "seen_pairs", "seen_corners",
                                            "held_out_compositions", "held_out_read_as")}}
        print(f"g={g:g} fidelity {report['by_guidance'][f'{g:g}']['fidelity']} probe seen "
              f"{probe['seen']:.3f} held {probe['held_out']:.3f} {time.time() - start:.0f}s", file=sys.stderr)
    report["seconds"] = round(time.time() - start, 1)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
