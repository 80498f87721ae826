"""Image grids, captioned sample sheets, drawing animations and alignment figures.

Pure numpy + Pillow (no TensorFlow / Keras), so it can be used from training
callbacks, scripts and tests alike. Conventions:

* images are channels-last, ``[..., H, W, C]`` with C = 1 (grey) or 3 (RGB);
* float images are intensities in [0, 1] (clipped), uint8 images pass through;
* figure builders return ``PIL.Image.Image`` in mode "RGB"; ``save_*`` helpers
  create missing parent directories.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "to_uint8",
    "image_grid",
    "save_png",
    "captioned_grid",
    "save_canvas_gif",
    "AlignmentLayout",
    "alignment_layout",
    "alignment_figure",
    "save_alignment_figure",
]

_MARGIN = 4
_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)


# --------------------------------------------------------------------------
# arrays


def to_uint8(images) -> np.ndarray:
    """Float [..., H, W, C] in [0, 1] -> uint8 via round(clip(x) * 255).

    uint8 input is returned unchanged; bool maps to {0, 255}. NaN becomes 0
    and +/-inf are clipped. Other integer dtypes are rejected (ambiguous range).
    """
    arr = np.asarray(images)
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * np.uint8(255)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(
            f"images must be float in [0, 1] or uint8, got dtype {arr.dtype}")
    arr = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    return np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


def _check_channels(c: int, what: str) -> None:
    if c not in (1, 3):
        raise ValueError(f"{what} must have 1 (grey) or 3 (RGB) channels, got C={c}")


def _check_pad_value(pad_value: int) -> None:
    if not 0 <= int(pad_value) <= 255:
        raise ValueError(f"pad_value must be in [0, 255], got {pad_value}")


def image_grid(images, cols: int | None = None, pad: int = 2,
               pad_value: int = 255) -> np.ndarray:
    """Tile images [N, H, W, C] into one uint8 array.

    Output shape [rows*H + pad*(rows+1), cols*W + pad*(cols+1), C] with
    cols = ceil(sqrt(N)) by default and rows = ceil(N / cols); image k sits at
    row k // cols, column k % cols. Padding and empty cells are pad_value.
    """
    arr = np.asarray(images)
    if arr.ndim != 4:
        raise ValueError(
            f"images must have rank 4 [N, H, W, C], got shape {tuple(arr.shape)}")
    n, h, w, c = arr.shape
    if n == 0:
        raise ValueError("images is empty (N=0): nothing to put in a grid")
    if h == 0 or w == 0:
        raise ValueError(f"images have zero height or width: shape {tuple(arr.shape)}")
    _check_channels(c, "images")
    if cols is None:
        cols = math.ceil(math.sqrt(n))
    cols = int(cols)
    if cols < 1:
        raise ValueError(f"cols must be >= 1, got {cols}")
    pad = int(pad)
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    _check_pad_value(pad_value)
    arr = to_uint8(arr)
    rows = math.ceil(n / cols)
    out = np.full((rows * h + pad * (rows + 1), cols * w + pad * (cols + 1), c),
                  int(pad_value), dtype=np.uint8)
    for k in range(n):
        r, q = divmod(k, cols)
        y = pad + r * (h + pad)
        x = pad + q * (w + pad)
        out[y:y + h, x:x + w] = arr[k]
    return out


def _upscale(arr: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscale of [..., H, W, C] by an integer factor."""
    scale = int(scale)
    if scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale}")
    if scale == 1:
        return arr
    return np.repeat(np.repeat(arr, scale, axis=-3), scale, axis=-2)


def _to_pil(arr: np.ndarray) -> Image.Image:
    """uint8 [H, W] / [H, W, 1] -> mode "L"; [H, W, 3] -> mode "RGB"."""
    if arr.ndim == 2:
        return Image.fromarray(arr, mode=None)
    if arr.ndim != 3:
        raise ValueError(f"image must be [H, W, C] or [H, W], got shape {tuple(arr.shape)}")
    _check_channels(arr.shape[-1], "image")
    if arr.shape[-1] == 1:
        return Image.fromarray(np.ascontiguousarray(arr[..., 0]))
    return Image.fromarray(np.ascontiguousarray(arr))


def _ensure_parent(path) -> None:
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)


def save_png(path, array_uint8) -> None:
    """Write [H, W, C] (C=1 -> grey "L", C=3 -> "RGB") or [H, W] as a PNG.

    Float arrays are converted with `to_uint8`; a PIL image is saved as is.
    Missing parent directories are created.
    """
    img = array_uint8 if isinstance(array_uint8, Image.Image) \
        else _to_pil(to_uint8(array_uint8))
    _ensure_parent(path)
    img.save(path, format="PNG")


# --------------------------------------------------------------------------
# text helpers


# Pillow's bundled FreeType font (Aileron) at 13 px: at its default 10 px, Pillow's basic
# layout rounds the spaces between words away ("isat the topleft").
FONT_SIZE = 13


@functools.lru_cache(maxsize=1)
def _font():
    return ImageFont.load_default(size=FONT_SIZE)


def _text_size(text: str) -> tuple[int, int]:
    """(width, height) of `text` in the default font; height is the line height."""
    font = _font()
    left, _, right, _ = font.getbbox(text) if text else (0, 0, 0, 0)
    return int(math.ceil(right - left)), _line_height()


@functools.lru_cache(maxsize=1)
def _line_height() -> int:
    _, top, _, bottom = _font().getbbox("Ag|jy")
    return int(math.ceil(bottom)) + 2


def _wrap(text: str, max_width: int) -> list[str]:
    """Greedy word wrap to `max_width` pixels (a single long word stays whole)."""
    lines: list[str] = []
    for para in str(text).split("\n"):
        current = ""
        for word in para.split():
            trial = f"{current} {word}" if current else word
            if current and _text_size(trial)[0] > max_width:
                lines.append(current)
                current = word
            else:
                current = trial
        lines.append(current)
    return lines or [""]


def _as_rgb_uint8(images: np.ndarray) -> np.ndarray:
    arr = to_uint8(images)
    return np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr


# --------------------------------------------------------------------------
# captioned sample sheet


def captioned_grid(rows_of_images: Sequence, captions: Sequence[str], scale: int = 2,
                   section_titles: Mapping[int, str] | None = None,
                   pad: int = 2, max_caption_width: int = 260) -> Image.Image:
    """One row per caption: the caption (wrapped) on the left, then its samples.

    rows_of_images: list of R arrays [K_r, H, W, C] (same H, W across rows;
    K may differ), upscaled by `scale` (nearest) and separated by `pad` px.
    captions: R strings. section_titles: optional {row_index: title}; each
    title is drawn as a header line above that row (e.g. "seen captions",
    "held-out captions"). Returns an RGB image on a white background.
    """
    if len(rows_of_images) != len(captions):
        raise ValueError(f"got {len(rows_of_images)} rows of images but "
                         f"{len(captions)} captions")
    if len(captions) == 0:
        raise ValueError("no rows: captions and rows_of_images are empty")
    section_titles = dict(section_titles or {})
    for idx in section_titles:
        if not 0 <= int(idx) < len(captions):
            raise ValueError(f"section_titles row index {idx} is out of range "
                             f"[0, {len(captions)})")
    scale = int(scale)
    rows = []
    hw = None
    for r, imgs in enumerate(rows_of_images):
        arr = np.asarray(imgs)
        if arr.ndim != 4:
            raise ValueError(f"row {r} images must have rank 4 [K, H, W, C], "
                             f"got shape {tuple(arr.shape)}")
        if arr.shape[0] == 0:
            raise ValueError(f"row {r} has no images (K=0)")
        _check_channels(arr.shape[-1], f"row {r} images")
        if hw is None:
            hw = arr.shape[1:3]
        elif arr.shape[1:3] != hw:
            raise ValueError(f"row {r} images are {arr.shape[1]}x{arr.shape[2]}, "
                             f"row 0 images are {hw[0]}x{hw[1]}")
        rows.append(_upscale(_as_rgb_uint8(arr), scale))
    h, w = hw[0] * scale, hw[1] * scale
    line_h = _line_height()

    wrapped = [_wrap(c, max_caption_width) for c in captions]
    text_w = max(_text_size(line)[0] for lines in wrapped for line in lines)
    text_w = min(max(text_w, 1), max(max_caption_width, 1))
    strip_x = _MARGIN + text_w + _MARGIN
    max_k = max(a.shape[0] for a in rows)
    titles_w = max((_text_size(str(t))[0] for t in section_titles.values()), default=0)
    width = max(strip_x + max_k * w + (max_k + 1) * pad, _MARGIN * 2 + titles_w)

    # vertical layout
    y = _MARGIN
    placements = []  # (title or None, title_y, row_y, row_h)
    for r, lines in enumerate(wrapped):
        title_y = None
        if r in section_titles:
            title_y = y
            y += line_h + _MARGIN
        row_h = max(h + 2 * pad, len(lines) * line_h)
        placements.append((title_y, y, row_h))
        y += row_h + _MARGIN
    height = y

    canvas = Image.new("RGB", (width, height), _WHITE)
    draw = ImageDraw.Draw(canvas)
    font = _font()
    for r, (title_y, row_y, row_h) in enumerate(placements):
        if title_y is not None:
            draw.text((_MARGIN, title_y), str(section_titles[r]), fill=_BLACK, font=font)
            draw.line([(_MARGIN, title_y + line_h), (width - _MARGIN, title_y + line_h)],
                      fill=(128, 128, 128))
        lines = wrapped[r]
        ty = row_y + (row_h - len(lines) * line_h) // 2
        for i, line in enumerate(lines):
            draw.text((_MARGIN, ty + i * line_h), line, fill=_BLACK, font=font)
        iy = row_y + (row_h - h) // 2
        for k, img in enumerate(rows[r]):
            canvas.paste(Image.fromarray(np.ascontiguousarray(img)),
                         (strip_x + pad + k * (w + pad), iy))
    return canvas


# --------------------------------------------------------------------------
# drawing animation


def save_canvas_gif(path, canvases, cols: int | None = None, duration_ms: int = 80,
                    scale: int = 2, hold_last_ms: int = 1000, pad: int = 2,
                    progress_bar: bool = True) -> None:
    """Animated GIF of the drawing process, one frame per step, looping forever.

    canvases: [T, N, H, W, C] in [0, 1] (or uint8), the canvas of each of N
    samples after each of T steps. Frame t is image_grid(canvases[t], cols,
    pad) upscaled by `scale`; the last frame is shown for `hold_last_ms`.
    With `progress_bar`, a 3 px bar of width ~ (t+1)/T is drawn below the
    grid, which keeps frames distinct (Pillow merges identical consecutive
    frames, summing their durations). Grey canvases are written in exact
    grey levels; RGB frames are palette-quantised by Pillow.
    """
    arr = np.asarray(canvases)
    if arr.ndim != 5:
        raise ValueError(f"canvases must have rank 5 [T, N, H, W, C], "
                         f"got shape {tuple(arr.shape)}")
    t_steps = arr.shape[0]
    if t_steps == 0:
        raise ValueError("canvases has no steps (T=0)")
    _check_channels(arr.shape[-1], "canvases")
    grey = arr.shape[-1] == 1
    frames = []
    for t in range(t_steps):
        grid = _upscale(image_grid(arr[t], cols=cols, pad=pad), scale)
        if progress_bar:
            bar = np.full((6, grid.shape[1], grid.shape[2]), 255, dtype=np.uint8)
            filled = int(round(grid.shape[1] * (t + 1) / t_steps))
            bar[2:5, :filled] = 0
            grid = np.concatenate([grid, bar], axis=0)
        frames.append(_to_pil(grid) if grey else _to_pil(grid).convert("RGB"))
    durations = [int(duration_ms)] * t_steps
    durations[-1] = int(hold_last_ms)
    _ensure_parent(path)
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:],
                   duration=durations, loop=0, optimize=False, disposal=1)


# --------------------------------------------------------------------------
# alignment figure


@dataclass(frozen=True)
class AlignmentLayout:
    """Pixel geometry of `alignment_figure` (boxes are (x0, y0, x1, y1), exclusive)."""

    num_steps: int
    num_words: int
    grid_x: int
    grid_y: int
    cell_w: int
    cell_h: int
    canvas_x: int | None
    canvas_hw: tuple[int, int] | None
    width: int
    height: int

    def cell_box(self, t: int, l: int) -> tuple[int, int, int, int]:
        x0 = self.grid_x + l * self.cell_w
        y0 = self.grid_y + t * self.cell_h
        return x0, y0, x0 + self.cell_w, y0 + self.cell_h

    def cell_center(self, t: int, l: int) -> tuple[int, int]:
        """(x, y) pixel at the centre of the cell for step t, word l."""
        x0, y0, x1, y1 = self.cell_box(t, l)
        return (x0 + x1) // 2, (y0 + y1) // 2

    def canvas_box(self, t: int) -> tuple[int, int, int, int]:
        if self.canvas_x is None:
            raise ValueError("this layout has no canvases")
        ch, cw = self.canvas_hw
        y0 = self.grid_y + t * self.cell_h + (self.cell_h - ch) // 2
        return self.canvas_x, y0, self.canvas_x + cw, y0 + ch


def alignment_layout(num_steps: int, words: Sequence[str],
                     canvas_hw: tuple[int, int] | None = None, scale: int = 2,
                     cell_size: int = 16) -> AlignmentLayout:
    """Geometry used by `alignment_figure` for T steps, L words, canvases [H, W]."""
    line_h = _line_height()
    cell_w = max(int(cell_size), line_h + 2)
    cell_h = max(int(cell_size), line_h + 2)
    canvas_x = None
    canvas_up = None
    if canvas_hw is not None:
        canvas_up = (int(canvas_hw[0]) * int(scale), int(canvas_hw[1]) * int(scale))
        cell_h = max(cell_h, canvas_up[0] + 2)
    step_w = _text_size(str(num_steps))[0]
    grid_x = _MARGIN + step_w + _MARGIN
    label_h = max((_text_size(str(wd))[0] for wd in words), default=0)
    grid_y = _MARGIN + label_h + _MARGIN
    right = grid_x + len(words) * cell_w
    if canvas_up is not None:
        canvas_x = right + 2 * _MARGIN
        right = canvas_x + canvas_up[1]
    return AlignmentLayout(
        num_steps=int(num_steps), num_words=len(words), grid_x=grid_x, grid_y=grid_y,
        cell_w=cell_w, cell_h=cell_h, canvas_x=canvas_x, canvas_hw=canvas_up,
        width=right + _MARGIN, height=grid_y + num_steps * cell_h + _MARGIN)


def alignment_figure(alignments, words: Sequence[str], canvases=None, scale: int = 2,
                     cell_size: int = 16) -> Image.Image:
    """Heatmap of attention over caption words per drawing step (paper's Fig. style).

    alignments: [T, L] weights (clipped to [0, 1]) over the L real words;
    words: L strings, written vertically above their columns; rows are steps
    1..T (numbered on the left). Cell grey level = 255 * (1 - weight): white
    for 0, black for 1. canvases: optional [T, H, W, C] canvas after each
    step, shown (upscaled by `scale`) at the right end of its row.
    Geometry: `alignment_layout(T, words, (H, W), scale, cell_size)`.
    """
    a = np.asarray(alignments, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"alignments must have rank 2 [T, L], got shape {tuple(a.shape)}")
    t_steps, n_words = a.shape
    if t_steps == 0 or n_words == 0:
        raise ValueError(f"alignments must be non-empty, got shape {tuple(a.shape)}")
    words = list(words)
    if len(words) != n_words:
        raise ValueError(f"alignments have L={n_words} word columns but "
                         f"len(words)={len(words)}")
    canvas_arr = None
    canvas_hw = None
    if canvases is not None:
        canvas_arr = np.asarray(canvases)
        if canvas_arr.ndim != 4:
            raise ValueError(f"canvases must have rank 4 [T, H, W, C], "
                             f"got shape {tuple(canvas_arr.shape)}")
        if canvas_arr.shape[0] != t_steps:
            raise ValueError(f"canvases have T={canvas_arr.shape[0]} steps but "
                             f"alignments have T={t_steps}")
        _check_channels(canvas_arr.shape[-1], "canvases")
        canvas_hw = canvas_arr.shape[1:3]
        canvas_arr = _upscale(_as_rgb_uint8(canvas_arr), scale)
    layout = alignment_layout(t_steps, words, canvas_hw, scale=scale, cell_size=cell_size)

    img = Image.new("RGB", (layout.width, layout.height), _WHITE)
    draw = ImageDraw.Draw(img)
    font = _font()
    line_h = _line_height()
    grey = np.round(255.0 * (1.0 - np.clip(np.nan_to_num(a, nan=0.0), 0.0, 1.0)))
    for t in range(t_steps):
        for l in range(n_words):
            x0, y0, x1, y1 = layout.cell_box(t, l)
            g = int(grey[t, l])
            draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=(g, g, g))
        # step number, right-aligned left of the grid, vertically centred
        label = str(t + 1)
        tw = _text_size(label)[0]
        _, cy = layout.cell_center(t, 0)
        draw.text((layout.grid_x - _MARGIN - tw, cy - line_h // 2), label,
                  fill=_BLACK, font=font)
        if canvas_arr is not None:
            x0, y0, _, _ = layout.canvas_box(t)
            img.paste(Image.fromarray(np.ascontiguousarray(canvas_arr[t])), (x0, y0))
    # frame around the heatmap (outside the cells)
    gx1 = layout.grid_x + n_words * layout.cell_w
    gy1 = layout.grid_y + t_steps * layout.cell_h
    draw.rectangle([layout.grid_x - 1, layout.grid_y - 1, gx1, gy1], outline=(128, 128, 128))
    # vertical word labels, reading bottom-to-top, bottom-aligned above columns
    for l, word in enumerate(words):
        word = str(word)
        tw = _text_size(word)[0]
        if tw == 0:
            continue
        label = Image.new("L", (tw + 2, line_h), 255)
        ImageDraw.Draw(label).text((0, 0), word, fill=0, font=font)
        label = label.rotate(90, expand=True)
        x0, _, x1, _ = layout.cell_box(0, l)
        px = (x0 + x1 - label.width) // 2
        py = layout.grid_y - _MARGIN // 2 - label.height
        img.paste(Image.merge("RGB", [label] * 3), (px, max(py, 0)))
    return img


def save_alignment_figure(path, alignments, words: Sequence[str], canvases=None,
                          scale: int = 2, cell_size: int = 16) -> Image.Image:
    """`alignment_figure(...)` saved as PNG at `path` (parent dirs created); returns it."""
    img = alignment_figure(alignments, words, canvases=canvases, scale=scale,
                           cell_size=cell_size)
    save_png(path, img)
    return img
