"""Tests for t2i.data.mnist: sources, validation of .npz files, the split."""

import socket
import zipfile

import numpy as np
import pytest

from t2i.data import mnist
from t2i.data.mnist import MnistDigits, load_mnist, load_npz, split_validation
from t2i.errors import T2IError


def _write_npz(path, n_train=12, n_test=5, **overrides):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return arrays


def _garbage_zip(path):
    with zipfile.ZipFile(path, "w") as z:
        for key in mnist.KEYS:
            z.writestr(key + ".npy", b"garbage")


def test_bundled_subset_shapes_and_dtypes():
    d = load_mnist("bundled")
    assert isinstance(d, MnistDigits)
    assert d.x_train.shape == (9000, 28, 28) and d.x_train.dtype == np.uint8
    assert d.x_test.shape == (1000, 28, 28) and d.x_test.dtype == np.uint8
    assert d.y_train.shape == (9000,) and d.y_train.dtype == np.int64
    assert d.y_test.shape == (1000,) and d.y_test.dtype == np.int64
    assert set(np.unique(d.y_train)) == set(range(10)) == set(np.unique(d.y_test))
    assert d.x_train.max() == 255 and d.source == "bundled:mnist-10k.npz"
    # Real digits: ink on a black background, mostly zeros.
    assert 0.05 < (d.x_train > 0).mean() < 0.4


def test_path_in_keras_layout(tmp_path):
    path = tmp_path / "digits.npz"
    arrays = _write_npz(path)
    d = load_mnist(str(path))
    np.testing.assert_array_equal(d.x_train, arrays["x_train"])
    np.testing.assert_array_equal(d.y_test, arrays["y_test"])
    assert d.y_train.dtype == np.int64 and d.source == str(path)


@pytest.mark.parametrize("make, expected", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_text("not a zip at all"), "not an .npz archive"),
    (lambda p: p.write_bytes(b"PK\x03\x04" + b"\0" * 40), "not an .npz archive"),
    (lambda p: _write_npz(p, y_test=None), "missing array(s) y_test"),
    (lambda p: _garbage_zip(p), "x_train, y_train, x_test, y_test are not NumPy arrays"),
    (lambda p: _write_npz(p, x_train=np.zeros((12, 28, 28), np.float32)), "x_train has dtype float32"),
    (lambda p: _write_npz(p, x_test=np.zeros((5, 28, 27), np.uint8)), "x_test has shape (5, 28, 27)"),
    (lambda p: _write_npz(p, y_train=np.zeros(11, np.int64)), "y_train has shape (11,)"),
    (lambda p: _write_npz(p, y_test=np.full(5, 10)), "labels outside 0..9"),
    (lambda p: _write_npz(p, y_train=np.zeros(12, np.float32)), "y_train has dtype float32"),
])
def test_bad_files_raise_one_line_errors(tmp_path, make, expected):
    path = tmp_path / "bad.npz"
    make(path)
    with pytest.raises(T2IError) as info:
        load_mnist(str(path))
    message = str(info.value)
    assert expected in message
    assert str(path) in message and "\n" not in message


def test_npz_saved_with_different_extension_and_directory(tmp_path):
    path = tmp_path / "digits.bin"
    with open(path, "wb") as f:
        _write_npz(f)
    assert load_npz(path).x_train.shape == (12, 28, 28)
    with pytest.raises(T2IError, match="is a directory"):
        load_mnist(str(tmp_path))


def test_unknown_source_names_the_choices():
    with pytest.raises(T2IError, match="'bundeld'.*'auto', 'bundled', 'keras'"):
        load_mnist("bundeld")


def test_keras_failure_is_a_t2i_error(monkeypatch):
    import keras

    def fail():
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", fail)
    with pytest.raises(T2IError, match="full MNIST could not be downloaded: network unreachable"):
        load_mnist("keras")


def test_auto_falls_back_to_bundled_and_restores_timeout(monkeypatch, tmp_path, capsys):
    import keras

    monkeypatch.setattr(mnist, "_keras_cache_candidates", lambda: [str(tmp_path / "mnist.npz")])
    seen_timeouts = []

    def fail():
        seen_timeouts.append(socket.getdefaulttimeout())
        raise OSError("no route to host")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", fail)
    before = socket.getdefaulttimeout()
    d = load_mnist("auto")
    assert d.source == "bundled:mnist-10k.npz" and d.x_train.shape == (9000, 28, 28)
    assert seen_timeouts == [10.0] and socket.getdefaulttimeout() == before
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no route to host" in err[0] and "bundled" in err[0]


def test_auto_prefers_a_valid_keras_cache(monkeypatch, tmp_path):
    import keras

    cache = tmp_path / "datasets" / "mnist.npz"
    cache.parent.mkdir()
    arrays = _write_npz(cache)
    monkeypatch.setattr(mnist, "_keras_cache_candidates", lambda: [str(cache)])
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: pytest.fail("must not download"))
    d = load_mnist("auto")
    assert d.source == f"keras:{cache}"
    np.testing.assert_array_equal(d.x_test, arrays["x_test"])


def test_keras_cache_location_follows_keras_home(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert mnist._keras_cache_candidates()[0] == str(tmp_path / "datasets" / "mnist.npz")


def test_split_is_deterministic_disjoint_and_complete():
    n = 600
    x = np.zeros((n, 28, 28), np.uint8)
    x[:, 0, 0], x[:, 0, 1] = np.arange(n) // 256, np.arange(n) % 256  # image id in two pixels
    y = np.arange(n) % 10

    def ids(images):
        return images[:, 0, 0].astype(int) * 256 + images[:, 0, 1]

    x_tr, y_tr, x_val, y_val = split_validation(x, y, fraction=1 / 6, seed=3)
    again = split_validation(x, y, fraction=1 / 6, seed=3)
    other = split_validation(x, y, fraction=1 / 6, seed=4)
    assert len(x_val) == 100 and len(x_tr) == 500
    tr, val = ids(x_tr), ids(x_val)
    assert not set(tr) & set(val) and set(tr) | set(val) == set(range(n))
    np.testing.assert_array_equal(y_tr, tr % 10)  # labels travel with their images
    np.testing.assert_array_equal(y_val, val % 10)
    np.testing.assert_array_equal(again[2], x_val)
    assert set(ids(other[2])) != set(val)
    # Not simply the first or last rows.
    assert set(val) != set(range(100)) and set(val) != set(range(500, 600))


def test_split_rejects_empty_parts():
    with pytest.raises(T2IError, match="empty split"):
        split_validation(np.zeros((3, 28, 28)), np.zeros(3), fraction=0.01, seed=0)
