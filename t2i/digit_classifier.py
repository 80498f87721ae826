"""A small MNIST digit classifier for the caption-fidelity metric.

Caption fidelity asks whether a generated composite shows what its caption
says: for every digit the caption names, a 28x28 crop at the position the
caption's layout puts it is classified, and the example counts as right when
every crop is the named digit. The classifier is trained on MNIST *training*
digits with random shifts of up to 3 pixels (the composites' placement
jitter) and ships with the package (`t2i/data/digit_classifier.weights.h5`,
its accuracy beside it in `digit_classifier.json`).

Retrain (about a minute on a 2-core CPU):

    t2i classifier digits --out t2i/data/digit_classifier.weights.h5
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from t2i.data.mnist_captions import CORNER_OF_TYPE

CROP = 28
# Top-left corner of the 28x28 crop for each slot, at the middle of the
# placement ranges of docs/model.md §11 (rows/cols 16-18, 0-4, 28-32, 0-2, 30-32).
_SLOTS = {
    "left": (17, 2), "right": (17, 30), "top": (1, 17), "bottom": (31, 17),
    "top left": (1, 2), "top right": (1, 30), "bottom left": (31, 2), "bottom right": (31, 30),
}
MAX_SHIFT = 3


def build_classifier():
    """Three 3x3 convolutions (32, 64, 64) with pooling, Dense(64), Dense(10); 28x28x1 in [0, 1]."""
    import keras

    return keras.Sequential([
        keras.Input((CROP, CROP, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10),
    ], name="digit_classifier")


def _shifted(digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each 28x28 digit moved by up to MAX_SHIFT pixels in each direction (zero fill)."""
    pad = np.pad(digits, ((0, 0), (MAX_SHIFT, MAX_SHIFT), (MAX_SHIFT, MAX_SHIFT)))
    dr = rng.integers(0, 2 * MAX_SHIFT + 1, len(digits))
    dc = rng.integers(0, 2 * MAX_SHIFT + 1, len(digits))
    rows = dr[:, None] + np.arange(CROP)[None, :]
    cols = dc[:, None] + np.arange(CROP)[None, :]
    return pad[np.arange(len(digits))[:, None, None], rows[:, :, None], cols[:, None, :]]


def train_classifier(x_train, y_train, x_test, y_test, epochs: int = 15, seed: int = 0):
    """Trains on shifted training digits; returns (model, test accuracy on shifted test digits)."""
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_classifier()
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    x_train = np.asarray(x_train, np.float32) / 255.0
    for _ in range(epochs):
        model.fit(_shifted(x_train, rng)[..., None], np.asarray(y_train), batch_size=128, epochs=1,
                  verbose=0, shuffle=True)
    x_test = _shifted(np.asarray(x_test, np.float32) / 255.0, np.random.default_rng(seed + 1))
    accuracy = float(np.mean(np.argmax(model.predict(x_test[..., None], verbose=0), -1) == y_test))
    return model, accuracy


def load_classifier(path=None):
    """The bundled classifier (or the weights at `path`)."""
    from t2i.bundled import load_weights

    return load_weights(build_classifier(), "digit_classifier.weights.h5", path)


def expected_digits(types, a, b) -> list[list[tuple[str, int]]]:
    """Per example, the (slot, digit) pairs its caption names (docs/model.md §11 types 0-7)."""
    out = []
    for k, da, db in zip(np.asarray(types), np.asarray(a), np.asarray(b)):
        k = int(k)
        if k in (0, 1):
            out.append([("left", int(da)), ("right", int(db))])
        elif k in (2, 3):
            out.append([("top", int(da)), ("bottom", int(db))])
        else:
            out.append([(CORNER_OF_TYPE[k], int(da))])
    return out


def read_digits(classifier, images, types, a, b) -> list[list[int]]:
    """Per example, the digit the classifier reads at each place its caption names.

    The places come in `expected_digits` order (left, right / top, bottom / the
    corner). images: [N, 60, 60, 1] in [0, 1]; types, a, b as in `Composites`.
    """
    images = np.asarray(images, np.float32)
    wanted = expected_digits(types, a, b)
    crops = [images[i, _SLOTS[slot][0]:_SLOTS[slot][0] + CROP, _SLOTS[slot][1]:_SLOTS[slot][1] + CROP]
             for i, pairs in enumerate(wanted) for slot, _ in pairs]
    predicted = np.argmax(classifier.predict(np.stack(crops), batch_size=512, verbose=0), -1).tolist()
    out, at = [], 0
    for pairs in wanted:
        out.append(predicted[at:at + len(pairs)])
        at += len(pairs)
    return out


def caption_fidelity(classifier, images, types, a, b, read=None) -> np.ndarray:
    """Per example: True when every digit the caption names is at its place.

    images: [N, 60, 60, 1] in [0, 1]; types, a, b: the caption's type and
    digits (b unused for one-digit types), as in `Composites`. `read`: the
    `read_digits` of these images, if already computed.
    """
    wanted = expected_digits(types, a, b)
    if read is None:
        read = read_digits(classifier, images, types, a, b)
    elif len(read) != len(wanted):
        raise ValueError(f"read has {len(read)} entries for {len(wanted)} images")
    elif any(len(got) != len(pairs) for pairs, got in zip(wanted, read)):
        raise ValueError("read does not match the captions: give read_digits of the same images, types, a, b")
    return np.array([[d for _, d in pairs] == got for pairs, got in zip(wanted, read)], bool)


def main(argv=None, prog: str = "python -m t2i.digit_classifier") -> int:
    p = argparse.ArgumentParser(prog=prog, description="Train the caption-fidelity digit classifier.")
    p.add_argument("--out", default="t2i/data/digit_classifier.weights.h5")
    p.add_argument("--mnist-source", default="auto", help="auto, keras, bundled or an .npz path")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from t2i.data.mnist import load_mnist

    digits = load_mnist(args.mnist_source)
    model, accuracy = train_classifier(digits.x_train, digits.y_train, digits.x_test, digits.y_test,
                                       epochs=args.epochs, seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shipped = build_classifier()  # weights only, without the optimizer's state
    shipped.set_weights(model.get_weights())
    shipped.save_weights(str(out))
    info = {"test_accuracy_shifted": accuracy, "mnist_source": digits.source, "epochs": args.epochs,
            "seed": args.seed, "max_shift": MAX_SHIFT, "params": int(model.count_params()),
            "command": " ".join(["python -m t2i.digit_classifier"] + list(
                sys.argv[1:] if argv is None else argv))}
    out.with_name("digit_classifier.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
