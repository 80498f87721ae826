"""The shipped model draws the same images as when this reference was made.

`pretrained_images.json` holds, per caption and seed, the SHA-256 of the uint8
image that `t2i generate` writes for it (`AlignDRAW.generate` on the shipped
packed run, then `visualize.to_uint8`), made with the code of commit 4647b85
before the layout refactor (issue 17). A refactor that changes no behaviour
keeps every image bit-identical; a deliberate change of the model's arithmetic
regenerates the file with

    PYTHONPATH=. python tests/t2i/test_pretrained_images.py --write

and says why in its commit.
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

REFERENCE = Path(__file__).with_name("pretrained_images.json")
# Two seen compositions and two held out by the shipped run (run_info.json).
CAPTIONS = [
    "the digit 2 is on the left of the digit 9 .",    # held out
    "the digit 4 is at the top left of the image .",  # held out
    "the digit 3 is at the top of the digit 7 .",
    "the digit 5 is on the left of the digit 1 .",
]
SEEDS = [0, 1, 2, 3]


def draw() -> dict:
    """{caption: {seed: sha256 hex of the uint8 image}} for the shipped model."""
    from t2i import run as run_lib
    from t2i import visualize
    from t2i.text import CaptionTokenizer

    config, model = run_lib.load_model(None)
    tokens = CaptionTokenizer(config.text).encode(CAPTIONS)
    reps = np.repeat(tokens, len(SEEDS), axis=0)
    seeds = np.tile(np.array(SEEDS), len(CAPTIONS))
    images = visualize.to_uint8(model.generate(reps, seeds)["images"])
    out = {}
    for i, (caption, seed) in enumerate(zip(np.repeat(CAPTIONS, len(SEEDS)), seeds)):
        digest = hashlib.sha256(np.ascontiguousarray(images[i]).tobytes()).hexdigest()
        out.setdefault(str(caption), {})[str(int(seed))] = digest
    return out


def test_shipped_model_draws_the_reference_images():
    expected = json.loads(REFERENCE.read_text())
    assert expected["captions"] == CAPTIONS and expected["seeds"] == SEEDS
    got = draw()
    changed = [(c, s) for c in CAPTIONS for s in map(str, SEEDS)
               if got[c][s] != expected["sha256"][c][s]]
    assert not changed, f"images differ from the reference for {len(changed)} of 16: {changed[:4]}"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python tests/t2i/test_pretrained_images.py --write")
    REFERENCE.write_text(json.dumps({"captions": CAPTIONS, "seeds": SEEDS, "sha256": draw()},
                                    indent=1) + "\n")
    print(REFERENCE)
