"""How the scenes attribute classifier reads a model's samples, against chance.

Draws one image per caption of fresh scenes (plain sampler, temperature 1), reads
each with the classifier (the shipped one, or `--classifier` weights), and reports
per attribute:

* fidelity: the share read as the caption names it (`training.scenes_eval`);
* chance: the same images read against the captions of other images (a fixed
  permutation), which says how much of a figure any image would get;
* the real renders of the same captions (the classifier's ceiling), sharp and
  blurred by a Gaussian of 1 and 2 pixels (`t2i.scene_classifier.gaussian_blur`);

and the object fidelity of each of the 32 objects, beside the same reading of the real
renders blurred by 2 pixels. A reading far above chance means
the classifier finds in the samples what their captions say, not what every sample
shows.

    python benchmarks/scenes_reading.py --run pretrained:scenes_32 --scenes 1000 \
        --json docs/scenes-reading.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default="pretrained:scenes_32")
    p.add_argument("--scenes", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classifier", help="weights to read with (default: the shipped classifier)")
    p.add_argument("--checkpoint", default="best", choices=("last", "best"))
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)

    from t2i import run as runs
    from t2i import samplers
    from t2i.data.scenes.art import CONCEPT_NAMES
    from t2i.data.scenes.sampler import SceneSampler
    from t2i.scene_classifier import gaussian_blur, load_classifier, read_attributes
    from t2i.text import CaptionTokenizer
    from training.scenes_eval import ATTRIBUTES, attribute_fidelity, named_targets

    config, model = runs.load_model(args.run, args.checkpoint)
    classifier = load_classifier(args.classifier)
    rng = np.random.default_rng(args.seed)
    scenes = SceneSampler().sample(args.scenes, rng, "all")
    captions = [c[int(rng.integers(0, len(c)))] for c in scenes.captions]
    tokens = CaptionTokenizer(config.text).encode(captions)
    images = samplers.generate(model, config, tokens, args.seed + np.arange(len(captions)))["images"]
    shuffled = [captions[i] for i in np.roll(np.arange(len(captions)), len(captions) // 2)]
    real = scenes.images.astype(np.float32) / 255.0

    rows = {}
    for name, imgs, caps in (("fidelity", images, captions), ("chance", images, shuffled),
                             ("real renders", real, captions),
                             ("real renders, 1 px blur", gaussian_blur(real, 1.0), captions),
                             ("real renders, 2 px blur", gaussian_blur(real, 2.0), captions)):
        right, per = attribute_fidelity(classifier, imgs, caps)
        rows[name] = {"all named": float(right.mean()), **per}
    targets, _ = named_targets(captions)

    def by_object(imgs):
        read = read_attributes(classifier, imgs)
        return {CONCEPT_NAMES[k]: float(np.mean(read["object"][targets["object"] == k] == k))
                for k in range(len(CONCEPT_NAMES)) if (targets["object"] == k).any()}

    per_object = by_object(images)
    blurred = by_object(gaussian_blur(real, 2.0))  # what blur alone costs each object
    result = {"run": runs.run_label(args.run), "scenes": len(captions),
              "classifier": args.classifier or "shipped", "rows": rows, "object_fidelity": per_object,
              "object_real_2px_blur": blurred}

    print(f"{result['run']}, {len(captions)} fresh scenes, classifier: {result['classifier']}")
    print("| reading | all named | " + " | ".join(ATTRIBUTES) + " |")
    print("|---" * (len(ATTRIBUTES) + 2) + "|")
    for name, r in rows.items():
        cells = ["–" if r[a] is None else f"{100 * r[a]:.1f}%" for a in ("all named",) + ATTRIBUTES]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("object fidelity by object (real renders blurred by 2 px): " + ", ".join(
        f"{k} {100 * v:.0f}% ({100 * blurred[k]:.0f}%)" for k, v in sorted(per_object.items(), key=lambda kv: kv[1])))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
