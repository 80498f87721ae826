"""Generation from a trained run: images, canvas animations, alignment figures.

The `t2i generate` command is a thin wrapper around `generate_files`: application code (it
writes files and its messages name the command's flags), so it lives with the command line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from t2i.errors import T2IError, check_temperature


def read_captions_file(path) -> list[str]:
    """One caption per line; blank lines are an error (they would be empty captions)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise T2IError(f"cannot read captions file {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise T2IError(f"captions file {path} is not UTF-8 text") from None
    while lines and not lines[-1].strip():
        lines.pop()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            raise T2IError(f"captions file {path}: line {i} is empty")
    if not lines:
        raise T2IError(f"captions file {path} holds no captions")
    return lines


def generate_files(run_dir, captions: list[str], out, samples: int = 8, seed: int = 0,
                   gif: bool = False, alignment: bool = False, checkpoint: str = "last",
                   warn=lambda msg: print(msg, file=sys.stderr), sharpen: bool = False,
                   temperature: float = 1.0, loop: str | None = None,
                   guidance: float = 1.0, sampler: str | None = None) -> list[Path]:
    """Generates images for `captions` and writes them; returns the written paths.

    `out` ending in `.npz`: one sample per caption (seeds seed, seed+1, ...),
    arrays `images` (uint8 [N, H, W, C]) and `captions`. Otherwise a PNG grid
    with one row of `samples` samples per caption (seeds seed..seed+samples-1);
    `gif` adds `<out>.gif` (the canvas over the T steps), `alignment` adds
    `<out>-alignment[-i].png` (word attention per step for the first sample of
    each caption). `sharpen` passes the images (not the gif's canvases) through
    the run's sharpener (`t2i.sharpen`; a `T2IError` if it has none).
    `temperature` scales the prior's noise (`AlignDRAW.generate`). `loop`
    overrides the run's `model.loop` ("while" starts sooner, at about the same steady speed; the two
    forms' images can differ in the last bit, see BENCHMARKS.md).
    `sampler` names how latents are drawn (`t2i.samplers`; "plain" is the
    paper's; None: the run's `sample.sampler`); `guidance` G is the older spelling
    of sampler "guided:g=G".
    """
    from t2i import samplers  # light: NumPy only until a sampler runs

    # Arguments first: a mistake is reported before TensorFlow and the model load.
    samplers.resolve(sampler, guidance)
    out = Path(out)
    if samples < 1:
        raise T2IError(f"--samples must be >= 1, got {samples}")
    check_temperature(temperature, "--temperature")
    if out.suffix.lower() not in (".png", ".npz"):
        raise T2IError(f"output {out} must end in .png or .npz")

    from t2i import run as run_lib
    from t2i import visualize
    from t2i.text import CaptionTokenizer

    config, model = run_lib.load_model(run_dir, checkpoint, loop=loop)
    sampler = samplers.resolve(sampler, guidance, config.sample.sampler)
    sharpener = _sharpener_of(run_dir, model) if sharpen else None
    tokenizer = CaptionTokenizer(config.text)
    tokens = tokenizer.encode(captions)
    unknown = tokenizer.unknown_words(captions)
    if unknown:
        warn(f"t2i: warning: words not in the vocabulary are read as {config.text.oov_token}: "
             + ", ".join(unknown))
    out.parent.mkdir(parents=True, exist_ok=True)

    if out.suffix.lower() == ".npz":
        seeds = seed + np.arange(len(captions))
        result = samplers.generate(model, config, tokens, seeds, sampler, temperature=temperature)
        if sharpener is not None:
            result["images"] = _sharpened(model, sharpener, tokens, result["images"])
        np.savez_compressed(out, images=visualize.to_uint8(result["images"]),
                            captions=np.array(captions), seeds=seeds, sampler=np.array(str(sampler)))
        return [out]

    reps = np.repeat(tokens, samples, axis=0)
    seeds = np.tile(seed + np.arange(samples), len(captions))
    result = samplers.generate(model, config, reps, seeds, sampler, trace=gif or alignment,
                               temperature=temperature)
    images = result["images"]
    if sharpener is not None:
        images = _sharpened(model, sharpener, reps, images)
    rows = [images[i * samples:(i + 1) * samples] for i in range(len(captions))]
    visualize.captioned_grid(rows, captions).save(out)
    written = [out]
    if gif:
        path = out.with_suffix(".gif")
        visualize.save_canvas_gif(path, np.swapaxes(result["canvases"], 0, 1), cols=samples)
        written.append(path)
    if alignment:
        words = [[w.decode() for w in ws] for ws in tokenizer.words(np.array(captions)).to_list()]
        for i, caption_words in enumerate(words):
            first = i * samples
            suffix = "-alignment" + (f"-{i + 1}" if len(captions) > 1 else "") + ".png"
            path = out.with_name(out.stem + suffix)
            length = len(caption_words)
            visualize.save_alignment_figure(path, result["alignments"][first, :, :length],
                                            caption_words, canvases=result["canvases"][first])
            written.append(path)
    return written


# --- sharpening (t2i.sharpen) ------------------------------------------------------

def _sharpener_of(run_dir, model):
    from t2i.sharpen import load_run_sharpener

    return load_run_sharpener(run_dir, model)[1]


def _sharpened(model, sharpener, tokens, images):
    from t2i.sharpen import caption_vectors

    return sharpener.sharpen(images, caption_vectors(model, tokens))
