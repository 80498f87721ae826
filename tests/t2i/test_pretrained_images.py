"""The shipped model draws the same images as when this reference was made.

`pretrained_images.npz` holds the uint8 images that `t2i generate` writes for
four captions and four seeds (`AlignDRAW.generate` on the shipped packed run,
then `visualize.to_uint8`). A refactor that changes no behaviour keeps every
image bit-identical on one machine (another CPU's kernels may round a few
pixels the other way: at most MAX_ROUNDING_PIXELS, by one level); a deliberate change of the model's arithmetic (for
example a faster form of the same equations) regenerates the file with

    PYTHONPATH=. python tests/t2i/test_pretrained_images.py --write          # --write-scenes: scenes_32

and says in its commit how many pixels moved and by how much (the failure
message of this test prints both).

History: made at commit 4647b85, before issue 17's layout refactor (which kept
it bit-identical), as SHA-256 digests; stored as the images themselves for issue
15, when the shipped model moved to the `while` loop form and the attention
filterbanks to products instead of divisions. These 16 images kept their digests;
on 700 images (140 captions x 5 seeds) 9 of 2.52 M pixels moved by one level,
none by more.
"""

import sys
from pathlib import Path

import numpy as np

REFERENCE = Path(__file__).with_name("pretrained_images.npz")
# Two seen compositions and two held out by the shipped run (run_info.json).
CAPTIONS = [
    "the digit 2 is on the left of the digit 9 .",    # held out
    "the digit 4 is at the top left of the image .",  # held out
    "the digit 3 is at the top of the digit 7 .",
    "the digit 5 is on the left of the digit 1 .",
]
SEEDS = [0, 1, 2, 3]
# The shipped scenes model (t2i/pretrained/scenes_32), the same way: two held-out compositions.
SCENES = "pretrained:scenes_32"
SCENES_REFERENCE = Path(__file__).with_name("pretrained_scenes_32_images.npz")
SCENES_CAPTIONS = [
    "a stop sign flying in blue skies",      # held out
    "a green bus parked in a parking lot",   # held out
    "a red bus parked in a parking lot",
    "two elephants on a dry grass field",
]


# Float rounding differs between CPUs' matrix kernels and between batch sizes: values move by
# up to ~7e-6, which flips about one uint8 pixel in 60,000 by one level
# (benchmarks/batch_independence.py). The 16 images have 57,600 pixels; a change of behaviour
# moves thousands, by many levels.
MAX_ROUNDING_PIXELS = 4


def draw(one_at_a_time: bool = False, run=None, captions=CAPTIONS) -> np.ndarray:
    """uint8 [captions x seeds, H, W, C]: caption-major, a shipped model's images."""
    from t2i import run as run_lib
    from t2i import visualize
    from t2i.text import CaptionTokenizer

    config, model = run_lib.load_model(run)
    tokens = CaptionTokenizer(config.text).encode(captions)
    reps = np.repeat(tokens, len(SEEDS), axis=0)
    seeds = np.tile(np.array(SEEDS), len(captions))
    if one_at_a_time:
        images = np.concatenate([model.generate(reps[i:i + 1], seeds[i:i + 1])["images"]
                                 for i in range(len(seeds))])
    else:
        images = model.generate(reps, seeds)["images"]
    return visualize.to_uint8(images)


def _assert_same_up_to_rounding(got, expected, what, captions=CAPTIONS):
    assert got.shape == expected.shape and got.dtype == expected.dtype
    diff = np.abs(got.astype(np.int16) - expected.astype(np.int16))
    changed = np.flatnonzero(diff.reshape(len(diff), -1).max(axis=1))
    assert diff.max() <= 1 and (diff > 0).sum() <= MAX_ROUNDING_PIXELS, (
        f"{len(changed)} of {len(diff)} images differ from {what} "
        f"({int((diff > 0).sum())} pixels, up to {int(diff.max())} levels); first: "
        + ", ".join(f"{captions[i // len(SEEDS)]!r} seed {SEEDS[i % len(SEEDS)]}" for i in changed[:3]))


def test_shipped_model_draws_the_reference_images():
    with np.load(REFERENCE) as ref:
        assert list(ref["captions"]) == CAPTIONS and list(ref["seeds"]) == SEEDS
        expected = ref["images"]
    _assert_same_up_to_rounding(draw(), expected, "the reference")


def test_an_image_drawn_alone_is_the_one_drawn_in_a_batch():
    _assert_same_up_to_rounding(draw(one_at_a_time=True), draw(), "the batch of 16")


def test_shipped_scenes_model_draws_its_reference_images():
    from t2i import run as run_lib
    from t2i.data.scenes import DEFAULT_HELD_OUT

    config = run_lib.load_run_config(run_lib.resolve_run(SCENES))
    assert config.data.dataset == "scenes" and tuple(config.data.held_out or DEFAULT_HELD_OUT) == DEFAULT_HELD_OUT
    with np.load(SCENES_REFERENCE) as ref:
        assert list(ref["captions"]) == SCENES_CAPTIONS and list(ref["seeds"]) == SEEDS
        expected = ref["images"]
    got = draw(run=SCENES, captions=SCENES_CAPTIONS)
    assert got.shape == (16, 32, 32, 3)
    _assert_same_up_to_rounding(got, expected, "the scenes reference", SCENES_CAPTIONS)


if __name__ == "__main__":
    if sys.argv[1:] not in (["--write"], ["--write-scenes"]):
        raise SystemExit("usage: python tests/t2i/test_pretrained_images.py --write | --write-scenes")
    if sys.argv[1] == "--write":
        np.savez_compressed(REFERENCE, images=draw(), captions=np.array(CAPTIONS), seeds=np.array(SEEDS))
        print(REFERENCE)
    else:
        np.savez_compressed(SCENES_REFERENCE, images=draw(run=SCENES, captions=SCENES_CAPTIONS),
                            captions=np.array(SCENES_CAPTIONS), seeds=np.array(SEEDS))
        print(SCENES_REFERENCE)
