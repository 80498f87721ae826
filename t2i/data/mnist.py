"""MNIST digits for MNIST with captions.

`load_mnist(source)` returns the digits as `MnistDigits`:

* "bundled": the 10,000-digit subset shipped as `t2i/data/mnist-10k.npz`
  (9,000 train + 1,000 test; see `MNIST-10K-README.md`);
* "keras": the full MNIST (60,000 + 10,000) via `keras.datasets.mnist`,
  downloaded into the Keras cache if needed;
* "auto": a cached full MNIST if there is one, else a download attempt
  (10 s socket timeout), else the bundled subset (saying so on stderr);
* any other string: a path to an `.npz` in Keras' `mnist.npz` layout.

Example:

    digits = load_mnist("bundled")
    x_tr, y_tr, x_val, y_val = split_validation(digits.x_train, digits.y_train, 1 / 6, seed=0)
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import socket
import sys
import zipfile

import numpy as np

from t2i.errors import T2IError

BUNDLED_FILE = "mnist-10k.npz"
KEYS = ("x_train", "y_train", "x_test", "y_test")
SOURCES = ("auto", "bundled", "keras")
DOWNLOAD_TIMEOUT_S = 10.0


@dataclasses.dataclass(frozen=True)
class MnistDigits:
    """MNIST digits and labels.

    Attributes:
        x_train: uint8 [N, 28, 28], pixel values 0..255.
        y_train: int64 [N], labels 0..9.
        x_test: uint8 [M, 28, 28].
        y_test: int64 [M].
        source: where the digits came from, e.g. "bundled:mnist-10k.npz",
            "keras:/root/.keras/datasets/mnist.npz" or a file path.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


def load_mnist(source: str = "auto") -> MnistDigits:
    """Loads MNIST from `source` ("auto", "bundled", "keras" or an `.npz` path).

    Raises:
        T2IError: the source is unknown, the file is missing or malformed, or
            (for "keras") the full MNIST cannot be downloaded.
    """
    if source == "bundled":
        return _load_bundled()
    if source == "keras":
        return _load_keras()
    if source == "auto":
        return _load_auto()
    if not isinstance(source, (str, os.PathLike)) or not os.path.exists(source):
        raise T2IError(
            f"MNIST source {str(source)!r}: no such file (expected 'auto', 'bundled', 'keras' "
            "or a path to an .npz in the layout of Keras' mnist.npz)")
    return load_npz(source)


def load_npz(path, source: str | None = None) -> MnistDigits:
    """Loads and validates an `.npz` with x_train, y_train, x_test, y_test.

    Images must be uint8 [N, 28, 28] and labels integers 0..9 of shape [N].
    `source` is recorded in the result (default: the path).

    Raises:
        T2IError: naming the file and what is wrong with it.
    """
    name = os.fspath(path)
    if os.path.isdir(name):
        raise T2IError(f"MNIST file {name}: is a directory, not an .npz file")
    if not os.path.isfile(name):
        raise T2IError(f"MNIST file {name}: no such file")
    if not zipfile.is_zipfile(name):
        raise T2IError(f"MNIST file {name}: not an .npz archive (expected the layout of Keras' mnist.npz)")
    try:
        with np.load(name, allow_pickle=False) as f:
            missing = [k for k in KEYS if k not in f.files]
            if missing:
                raise T2IError(f"MNIST file {name}: missing array(s) {', '.join(missing)} "
                               f"(it has: {', '.join(f.files) or 'none'}); expected {', '.join(KEYS)}")
            arrays = {k: f[k] for k in KEYS}
        not_arrays = [k for k, v in arrays.items() if not isinstance(v, np.ndarray)]
        if not_arrays:  # NpzFile hands back raw bytes for members that are not .npy
            raise T2IError(f"MNIST file {name}: {', '.join(not_arrays)} are not NumPy arrays")
    except T2IError:
        raise
    except Exception as e:  # BadZipFile, pickled object arrays, truncated members...
        raise T2IError(f"MNIST file {name}: cannot be read as .npz ({type(e).__name__}: {e})") from None
    for split in ("train", "test"):
        x, y = arrays["x_" + split], arrays["y_" + split]
        if x.dtype != np.uint8:
            raise T2IError(f"MNIST file {name}: x_{split} has dtype {x.dtype}; expected uint8 pixels 0..255")
        if x.ndim != 3 or x.shape[1:] != (28, 28) or x.shape[0] == 0:
            raise T2IError(f"MNIST file {name}: x_{split} has shape {x.shape}; expected [N, 28, 28] with N >= 1")
        if not np.issubdtype(y.dtype, np.integer):
            raise T2IError(f"MNIST file {name}: y_{split} has dtype {y.dtype}; expected integer labels 0..9")
        if y.shape != (x.shape[0],):
            raise T2IError(f"MNIST file {name}: y_{split} has shape {y.shape}; expected [{x.shape[0]}] "
                           f"to match x_{split}")
        if y.min() < 0 or y.max() > 9:
            raise T2IError(f"MNIST file {name}: y_{split} has labels outside 0..9 "
                           f"(min {y.min()}, max {y.max()})")
    return MnistDigits(
        x_train=arrays["x_train"], y_train=arrays["y_train"].astype(np.int64),
        x_test=arrays["x_test"], y_test=arrays["y_test"].astype(np.int64),
        source=source or name)


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """Splits digits into training and validation parts by a seeded permutation.

    Args:
        x: [N, ...] images.
        y: [N] labels.
        fraction: share of the N digits that goes to validation, in (0, 1).
        seed: permutation seed; the same seed gives the same split.

    Returns:
        (x_train, y_train, x_val, y_val): disjoint subsets of the inputs, each
        in its original order; the validation part has round(N * fraction)
        digits.
    """
    n = len(x)
    if len(y) != n:
        raise T2IError(f"split_validation: {n} images but {len(y)} labels")
    if not 0.0 < fraction < 1.0:
        raise T2IError(f"split_validation: fraction must be in (0, 1), got {fraction}")
    n_val = int(round(n * fraction))
    if not 0 < n_val < n:
        raise T2IError(f"split_validation: a fraction of {fraction} of {n} digits leaves an empty split")
    perm = np.random.default_rng(seed).permutation(n)
    val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx]


# --- sources -----------------------------------------------------------------

def _load_bundled() -> MnistDigits:
    resource = importlib.resources.files("t2i.data").joinpath(BUNDLED_FILE)
    with importlib.resources.as_file(resource) as path:
        if not path.is_file():
            raise T2IError(f"the bundled MNIST subset {BUNDLED_FILE} is missing from the t2i package")
        return load_npz(path, source=f"bundled:{BUNDLED_FILE}")


def _load_keras() -> MnistDigits:
    import keras  # deferred: only this source needs it

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise T2IError(f"full MNIST could not be downloaded: {message}") from None
    cached = _cached_keras_file()
    return MnistDigits(x_train=np.asarray(x_train, np.uint8), y_train=np.asarray(y_train, np.int64),
                       x_test=np.asarray(x_test, np.uint8), y_test=np.asarray(y_test, np.int64),
                       source=f"keras:{cached or 'mnist.npz'}")


def _keras_cache_candidates() -> list[str]:
    """Where Keras' `get_file` keeps mnist.npz: $KERAS_HOME or ~/.keras, else /tmp/.keras."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return [os.path.join(home, "datasets", "mnist.npz"),
            os.path.join("/tmp", ".keras", "datasets", "mnist.npz")]


def _cached_keras_file() -> str | None:
    for path in _keras_cache_candidates():
        if os.path.isfile(path):
            return path
    return None


def _load_auto() -> MnistDigits:
    cached = _cached_keras_file()
    if cached is not None:
        try:
            return load_npz(cached, source=f"keras:{cached}")
        except T2IError:
            pass  # a corrupt cache: Keras re-downloads it (its hash check fails)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return _load_keras()
    except T2IError as e:
        reason = str(e)
    finally:
        socket.setdefaulttimeout(previous)
    print(f"t2i: {reason}; using the bundled 10,000-digit MNIST subset ({BUNDLED_FILE})",
          file=sys.stderr)
    return _load_bundled()
