"""An attribute classifier for scenes: the measuring tool of scenes caption fidelity.

One small convolutional network reads every attribute a scenes caption can name
(`t2i.data.scenes.captions`) from a 32x32 RGB image, with one softmax head each:

| head       | classes                                                          |
|------------|------------------------------------------------------------------|
| object     | the 32 concepts                                                  |
| background | the 8 backgrounds                                                |
| colour     | the 7 colours, and "not shown" (not recolourable, or vintage)    |
| count      | 1, 2                                                             |
| position   | left, right (one object), both (two)                             |
| vintage    | no, yes                                                          |

It is trained on fresh renders of every combination, held-out compositions
included (a measuring tool must know what it measures), and, with `--blur S`, on
renders blurred by a Gaussian of a random width up to S pixels: a model's samples
are blurred renders, and a tool that reads only sharp art measures sharpness, not
the caption. Where a caption names a colour, the colour is read among the seven
colours (`read_attributes(..., colour_named=...)`): which colour the object shows,
whatever object the classifier takes it for. It ships with the
package (`t2i/data/scene_classifier.weights.h5`, its per-attribute accuracy on
fresh renders in `scene_classifier.json`). Retrain:

    t2i classifier scenes --out t2i/data/scene_classifier.weights.h5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from t2i.data.scenes.art import CONCEPT_NAMES
from t2i.data.scenes.render import BACKGROUNDS, COLOUR_NAMES

HEADS = {"object": len(CONCEPT_NAMES), "background": len(BACKGROUNDS), "colour": len(COLOUR_NAMES) + 1,
         "count": 2, "position": 3, "vintage": 2}
NOT_SHOWN = len(COLOUR_NAMES)  # the colour head's class for "no colour named"


def build_classifier():
    """Conv(32, 32) pool Conv(64, 64) pool Conv(128) pool, Dense(256), one head per attribute;
    32x32x3 in [0, 1] -> {head: logits}."""
    import keras

    inputs = keras.Input((32, 32, 3))
    x = inputs
    for filters, convs in ((32, 2), (64, 2), (128, 1)):
        for _ in range(convs):
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.3)(x)
    x = keras.layers.Dense(256, activation="relu")(x)
    outputs = {name: keras.layers.Dense(n, name=name)(x) for name, n in HEADS.items()}
    return keras.Model(inputs, outputs, name="scene_classifier")


def labels(attributes: dict) -> dict[str, np.ndarray]:
    """The classifier's targets from a `Scenes.attributes` table."""
    shown = (attributes["colour"] >= 0) & ~attributes["vintage"]
    return {"object": attributes["object"], "background": attributes["background"],
            "colour": np.where(shown, attributes["colour"], NOT_SHOWN),
            "count": attributes["count"] - 1,
            "position": np.where(attributes["count"] == 2, 2, attributes["position"]),
            "vintage": attributes["vintage"].astype(np.int64)}


def training_scenes(sampler, n: int, rng: np.random.Generator):
    """n renders of every combination: 80% drawn as if nothing were held out, 20% of the
    held-out compositions (so that each is covered)."""
    held = n // 5 if sampler.held_out else 0
    parts = [sampler.sample(n - held, rng, "all")] + ([sampler.sample(held, rng, "held_out")] if held else [])
    images = np.concatenate([p.images for p in parts]).astype(np.float32) / 255.0
    table = {k: np.concatenate([p.attributes[k] for p in parts]) for k in parts[0].attributes}
    return images, labels(table)


def read_attributes(classifier, images, colour_named=None) -> dict[str, np.ndarray]:
    """{head: predicted class [N]} for float images [N, 32, 32, 3] in [0, 1].

    colour_named: bool [N]; where True the colour head's reading is the likeliest of
    the seven colours, never NOT_SHOWN (the caption says there is a colour; the question
    is which)."""
    out = classifier.predict(np.asarray(images, np.float32), batch_size=512, verbose=0)
    read = {name: np.argmax(np.asarray(out[name]), -1) for name in HEADS}
    if colour_named is not None:
        among_colours = np.argmax(np.asarray(out["colour"])[:, :NOT_SHOWN], -1)
        read["colour"] = np.where(np.asarray(colour_named, bool), among_colours, read["colour"])
    return read


def gaussian_blur(images, sigma: float) -> np.ndarray:
    """images [N, H, W, C] blurred over H and W by a Gaussian of standard deviation `sigma`
    pixels: the kernel cut at 4 sigma and normalised, edges mirrored (d c b a | a b c d),
    one axis after the other (as `scipy.ndimage.gaussian_filter(..., mode="reflect")`)."""
    images = np.asarray(images, np.float32)
    if sigma <= 0:
        return images.copy()
    radius = int(4.0 * sigma + 0.5)
    weights = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    weights /= weights.sum()
    for axis in (1, 2):
        pad = [(0, 0)] * images.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(images, pad, mode="symmetric")
        size = images.shape[axis]
        images = sum(w * np.take(padded, np.arange(k, k + size), axis=axis) for k, w in enumerate(weights))
    return images.astype(np.float32)


def blur_augment(images, rng: np.random.Generator, max_sigma: float, share: float = 2 / 3) -> np.ndarray:
    """`share` of the images blurred (`gaussian_blur`) by a width drawn uniformly from
    (0, max_sigma], rounded to a tenth of a pixel; the rest left sharp."""
    images = np.asarray(images, np.float32).copy()
    sigmas = np.where(rng.random(len(images)) < share,
                      np.maximum(np.round(rng.uniform(0, max_sigma, len(images)), 1), 0.1), 0.0)
    for sigma in np.unique(sigmas[sigmas > 0]):
        rows = sigmas == sigma
        images[rows] = gaussian_blur(images[rows], float(sigma))
    return images


def accuracy(classifier, images, targets) -> dict[str, float]:
    """Per-attribute accuracy; colour over the images that show a colour."""
    got = read_attributes(classifier, images)
    out = {name: float(np.mean(got[name] == targets[name])) for name in HEADS}
    shown = targets["colour"] != NOT_SHOWN
    out["colour_where_shown"] = float(np.mean(got["colour"][shown] == targets["colour"][shown]))
    return out


BLUR_CHECKS = (1.0, 1.5, 2.0)  # the blur widths its accuracy is reported at


def train_classifier(epochs: int = 12, per_epoch: int = 20000, seed: int = 0, log=print, init=None,
                     blur: float = 0.0):
    """Trains on fresh renders every epoch (from the weights at `init`, if given), blurred
    up to `blur` pixels (`blur_augment`; 0: never); returns (model, accuracy on 6,000 fresh
    renders, {sigma: accuracy on the same renders blurred by sigma})."""
    import keras

    from t2i.data.scenes.sampler import SceneSampler

    keras.utils.set_random_seed(seed)
    sampler = SceneSampler()
    model = build_classifier()
    if init is not None:
        model.load_weights(str(init))
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss={name: keras.losses.SparseCategoricalCrossentropy(from_logits=True) for name in HEADS})
    for epoch in range(epochs):
        start = time.perf_counter()
        rng = np.random.default_rng([seed, epoch])
        images, targets = training_scenes(sampler, per_epoch, rng)
        if blur > 0:
            images = blur_augment(images, rng, blur)
        if epoch == epochs - 3:
            model.optimizer.learning_rate.assign(3e-4)
        history = model.fit(images, targets, batch_size=128, epochs=1, verbose=0, shuffle=True)
        log(f"epoch {epoch + 1}/{epochs}: loss {history.history['loss'][-1]:.4f} "
            f"({time.perf_counter() - start:.0f} s)")
    images, targets = training_scenes(sampler, 6000, np.random.default_rng([seed, 10**6]))
    blurred = {sigma: accuracy(model, gaussian_blur(images, sigma), targets) for sigma in BLUR_CHECKS}
    return model, accuracy(model, images, targets), blurred


def load_classifier(path=None):
    """The bundled classifier (or the weights at `path`)."""
    from t2i.bundled import load_weights

    return load_weights(build_classifier(), "scene_classifier.weights.h5", path)


def main(argv=None, prog: str = "python -m t2i.scene_classifier") -> int:
    p = argparse.ArgumentParser(prog=prog, description="Train the scenes attribute classifier.")
    p.add_argument("--out", default="t2i/data/scene_classifier.weights.h5")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--per-epoch", type=int, default=20000, help="fresh renders per epoch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", help="start from these weights (continue a training)")
    p.add_argument("--blur", type=float, default=0.0,
                   help="blur two renders in three by a Gaussian up to this many pixels wide (default 0: none)")
    args = p.parse_args(argv)
    if args.blur < 0:
        p.error(f"--blur must be >= 0, got {args.blur:g}")
    start = time.perf_counter()
    model, acc, blurred = train_classifier(args.epochs, args.per_epoch, args.seed, init=args.init, blur=args.blur)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shipped = build_classifier()
    shipped.set_weights(model.get_weights())
    shipped.save_weights(str(out))
    info = {"accuracy_on_fresh_renders": acc,
            "accuracy_on_blurred_renders": {f"sigma {sigma:g}": a for sigma, a in blurred.items()},
            "renders": 6000, "epochs": args.epochs, "blur": args.blur,
            "renders_per_epoch": args.per_epoch, "seed": args.seed, "params": int(model.count_params()),
            "init": args.init and Path(args.init).name,
            "train_seconds": round(time.perf_counter() - start),
            "command": " ".join(["python -m t2i.scene_classifier"] + list(sys.argv[1:] if argv is None else argv))}
    out.with_name("scene_classifier.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
