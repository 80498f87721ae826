"""Tests for t2i.visualize: exact pixel checks on grids, PNG/GIF files and figures."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from t2i import visualize as vis


def _constant_images(n, h=3, w=4, c=1):
    """Image k is constant (10 * (k + 1)) / 255, so each cell has its own grey level."""
    vals = (10.0 * (np.arange(n) + 1) / 255.0).reshape(n, 1, 1, 1)
    return np.broadcast_to(vals, (n, h, w, c)).astype(np.float32).copy()


# ---------------------------------------------------------------- to_uint8

def test_to_uint8_rounds_and_clips():
    x = np.array([-0.5, 0.0, 0.4 / 255, 1.49 / 255, 1.51 / 255, 0.5, 1.0, 2.0, np.nan],
                 dtype=np.float32)
    out = vis.to_uint8(x)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [0, 0, 0, 1, 2, 128, 255, 255, 0])


def test_to_uint8_passes_uint8_through_and_rejects_other_ints():
    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    assert vis.to_uint8(x) is x
    with pytest.raises(ValueError, match="dtype"):
        vis.to_uint8(np.arange(4, dtype=np.int32))


# ---------------------------------------------------------------- image_grid

@pytest.mark.parametrize("cols", [None, 2, 4])
def test_image_grid_places_each_image_at_its_cell(cols):
    n, h, w, pad = 5, 3, 4, 2
    imgs = _constant_images(n, h, w)
    grid = vis.image_grid(imgs, cols=cols, pad=pad, pad_value=7)
    c = cols or 3  # ceil(sqrt(5))
    rows = -(-n // c)
    assert grid.dtype == np.uint8
    assert grid.shape == (rows * h + pad * (rows + 1), c * w + pad * (c + 1), 1)
    covered = np.zeros(grid.shape[:2], dtype=bool)
    for k in range(rows * c):
        r, q = divmod(k, c)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        cell = grid[y:y + h, x:x + w, 0]
        expected = 10 * (k + 1) if k < n else 7  # empty cells -> pad_value
        assert (cell == expected).all(), (k, cell)
        covered[y:y + h, x:x + w] = True
    assert (grid[~covered] == 7).all()  # padding


def test_image_grid_default_cols_and_rgb():
    imgs = np.zeros((10, 2, 2, 3), dtype=np.uint8)
    imgs[:, :, :, 0] = np.arange(10).reshape(10, 1, 1)  # red channel = index
    imgs[:, :, :, 2] = 200
    grid = vis.image_grid(imgs, pad=1, pad_value=255)
    # cols = ceil(sqrt(10)) = 4, rows = 3
    assert grid.shape == (3 * 2 + 4, 4 * 2 + 5, 3)
    y, x = 1 + 2 * 3, 1 + 1 * 3  # image 9 -> row 2, col 1
    np.testing.assert_array_equal(grid[y, x], [9, 0, 200])
    np.testing.assert_array_equal(grid[0, 0], [255, 255, 255])


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 2, 1)), "rank 4"),
    (np.zeros((1, 2, 2, 2, 1)), "rank 4"),
    (np.zeros((2, 3, 3, 2)), "channels"),
    (np.zeros((2, 3, 3, 4)), "channels"),
    (np.zeros((0, 3, 3, 1)), "N=0"),
])
def test_image_grid_rejects_bad_inputs(bad, match):
    with pytest.raises(ValueError, match=match):
        vis.image_grid(bad)


def test_image_grid_rejects_bad_cols():
    with pytest.raises(ValueError, match="cols"):
        vis.image_grid(np.zeros((2, 3, 3, 1)), cols=0)


# ---------------------------------------------------------------- save_png

@pytest.mark.parametrize("c, mode", [(1, "L"), (3, "RGB")])
def test_save_png_round_trip(tmp_path, c, mode):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(5, 7, c), dtype=np.uint8)
    path = tmp_path / "nested" / "dir" / "img.png"
    vis.save_png(path, arr)
    with Image.open(path) as im:
        assert im.mode == mode
        back = np.asarray(im)
    np.testing.assert_array_equal(back.reshape(arr.shape), arr)


# ---------------------------------------------------------------- captioned_grid

def test_captioned_grid_places_upscaled_samples_in_order():
    h, w, scale = 3, 4, 2
    colours = [[(255, 0, 0), (0, 255, 0)], [(0, 0, 255), (255, 0, 255)]]
    rows = [np.array([np.full((h, w, 3), col, dtype=np.uint8) for col in row])
            for row in colours]
    plain = vis.captioned_grid(rows, ["a red digit", "a blue digit"], scale=scale)
    titled = vis.captioned_grid(rows, ["a red digit", "a blue digit"], scale=scale,
                                section_titles={0: "seen captions", 1: "held-out captions"})
    assert titled.mode == "RGB" and titled.height > plain.height
    arr = np.asarray(titled)
    boxes = {}
    for r, row in enumerate(colours):
        for k, col in enumerate(row):
            ys, xs = np.nonzero((arr == col).all(axis=-1))
            assert len(ys) == h * scale * w * scale  # exactly one upscaled image
            assert ys.max() - ys.min() + 1 == h * scale
            assert xs.max() - xs.min() + 1 == w * scale
            boxes[r, k] = (ys.min(), xs.min())
    assert boxes[0, 0][0] == boxes[0, 1][0] < boxes[1, 0][0] == boxes[1, 1][0]
    assert boxes[0, 0][1] == boxes[1, 0][1] < boxes[0, 1][1] == boxes[1, 1][1]
    # caption text (dark pixels) is drawn left of the samples
    assert (arr[:, :boxes[0, 0][1]] < 100).any()


def test_captioned_grid_validates():
    with pytest.raises(ValueError, match="captions"):
        vis.captioned_grid([np.zeros((2, 3, 3, 1))], ["a", "b"])
    with pytest.raises(ValueError, match="row 1"):
        vis.captioned_grid([np.zeros((2, 3, 3, 1)), np.zeros((2, 4, 3, 1))], ["a", "b"])
    with pytest.raises(ValueError, match="section_titles"):
        vis.captioned_grid([np.zeros((2, 3, 3, 1))], ["a"], section_titles={3: "x"})


# ---------------------------------------------------------------- GIF

def test_save_canvas_gif_frames_loop_and_last_frame(tmp_path):
    t_steps, n, h, w, scale, pad = 4, 3, 5, 6, 2, 2
    rng = np.random.default_rng(1)
    levels = rng.integers(0, 256, size=(t_steps, n, h, w, 1)).astype(np.float64)
    canvases = levels / 255.0
    path = tmp_path / "out" / "draw.gif"
    vis.save_canvas_gif(path, canvases, cols=2, duration_ms=50, scale=scale, pad=pad)
    with Image.open(path) as im:
        assert im.n_frames == t_steps
        assert im.info.get("loop") == 0
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info.get("duration"))
        assert durations[0] == 50 and durations[-1] == 1000
        last = np.asarray(im.convert("L"))
    expected = vis.image_grid(vis.to_uint8(canvases[-1]), cols=2, pad=pad)
    expected = np.repeat(np.repeat(expected[..., 0], scale, 0), scale, 1)
    np.testing.assert_array_equal(last[:expected.shape[0]], expected)
    # sample 2 is in row 1, col 0: its upscaled top-left pixel
    y, x = (pad + (h + pad)) * scale, pad * scale
    assert last[y, x] == levels[-1, 2, 0, 0, 0]


def test_save_canvas_gif_rejects_wrong_rank(tmp_path):
    with pytest.raises(ValueError, match="rank 5"):
        vis.save_canvas_gif(tmp_path / "x.gif", np.zeros((3, 4, 4, 1)))


# ---------------------------------------------------------------- alignment figure

@pytest.mark.parametrize("with_canvases", [False, True])
def test_alignment_figure_one_hot_is_diagonal(with_canvases):
    t_steps = n_words = 4
    words = ["a", "digit", "seven", "top"]
    alignments = np.eye(t_steps, n_words)
    canvases = None
    if with_canvases:
        canvases = np.broadcast_to(
            (np.arange(t_steps) / 10.0 + 0.3).reshape(t_steps, 1, 1, 1),
            (t_steps, 5, 5, 1))
    img = vis.alignment_figure(alignments, words, canvases=canvases, scale=2)
    layout = vis.alignment_layout(t_steps, words, None if canvases is None else (5, 5),
                                  scale=2)
    assert img.size == (layout.width, layout.height)
    arr = np.asarray(img.convert("L"))
    dark = np.array([[arr[layout.cell_center(t, l)[::-1]] for l in range(n_words)]
                     for t in range(t_steps)])
    np.testing.assert_array_equal(dark, np.where(np.eye(t_steps) > 0, 0, 255))
    if with_canvases:
        for t in range(t_steps):
            x0, y0, x1, y1 = layout.canvas_box(t)
            assert x1 - x0 == 10 and y1 - y0 == 10
            assert (arr[y0:y1, x0:x1] == round((t / 10.0 + 0.3) * 255)).all()


def test_alignment_figure_grey_level_is_weight():
    words = ["x", "y", "z"]
    alignments = np.array([[0.25, 0.75, 0.0], [0.5, 0.5, 0.0]])
    arr = np.asarray(vis.alignment_figure(alignments, words).convert("L"))
    layout = vis.alignment_layout(2, words)
    got = [[arr[layout.cell_center(t, l)[::-1]] for l in range(3)] for t in range(2)]
    np.testing.assert_array_equal(got, np.round(255 * (1 - alignments)))


def test_alignment_figure_validates_shapes():
    with pytest.raises(ValueError, match=r"L=3.*len\(words\)=2"):
        vis.alignment_figure(np.full((2, 3), 1 / 3), ["a", "b"])
    with pytest.raises(ValueError, match="rank 2"):
        vis.alignment_figure(np.zeros((2, 3, 1)), ["a", "b", "c"])
    with pytest.raises(ValueError, match="T=3"):
        vis.alignment_figure(np.full((2, 2), 0.5), ["a", "b"], canvases=np.zeros((3, 4, 4, 1)))


def test_save_alignment_figure_writes_png(tmp_path):
    path = tmp_path / "fig" / "align.png"
    img = vis.save_alignment_figure(path, np.eye(2), ["one", "two"])
    with Image.open(path) as im:
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), np.asarray(img))


def test_imports_only_numpy_and_pillow():
    code = ("import sys, t2i.visualize; "
            "bad = [m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True,
                   cwd=pathlib.Path(vis.__file__).resolve().parents[1])


def test_grid_labels_keep_the_spaces_between_words():
    """Pillow's default 10 px font rounds a space to 1-2 px ("isat the topleft")."""
    from t2i.visualize import _text_size

    for a, b in [("is", "at"), ("left", "of"), ("digit", "4")]:
        assert _text_size(f"{a} {b}")[0] - _text_size(f"{a}{b}")[0] >= 3, (a, b)
