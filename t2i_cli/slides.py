"""The alignDRAW slides' colour figures, redrawn from a scenes run (`t2i slides`).

    t2i slides --run runs/scenes -o docs/slides [--samples 6] [--seed 0] [--checkpoint best]

One PNG per slide row, and slides.md showing them with what the scenes attribute
classifier (`t2i.scene_classifier`, the measuring tool of `t2i evaluate`) reads in them:

    colour-flips.png      a yellow / red / green / blue bus parked in a parking lot
    background-flips.png  a plane in clear / rainy skies; two elephants on dry / green grass
    object-flips.png      a vintage photo of a cat / a dog
    novel.png             a stop sign flying in blue skies, two elephants flying in blue skies
    alignment.png         where the attention sits, step by step, for the first novel caption

Every row's images use the same seeds (seed .. seed + samples - 1), so a flip row shows the
same draw under captions that differ in one word. Captions naming one of the run's held-out
compositions are marked as such; with the default held-out list (`DEFAULT_HELD_OUT`) the
green and blue buses, the vintage dog and both sky scenes are never drawn in training.
Under each row, slides.md gives the share of its images whose every named attribute the
classifier reads right, and the run's evaluation report (metrics.json beside the run, or
`--report`) adds the flip and fidelity figures measured on many captions.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from t2i.errors import T2IError


@dataclasses.dataclass(frozen=True)
class Slide:
    """One row of the slides: a file, a title, its captions, and what the paper's slide showed."""

    name: str
    title: str
    captions: tuple[str, ...]
    flip: str | None = None  # the flip_success kind of `t2i evaluate` that measures it


SLIDES = (
    Slide("colour-flips", "Flipping colours",
          ("a yellow bus parked in a parking lot", "a red bus parked in a parking lot",
           "a green bus parked in a parking lot", "a blue bus parked in a parking lot"), "colour"),
    Slide("background-flips", "Flipping backgrounds",
          ("a plane flying in blue skies", "a plane flying in rainy skies",
           "two elephants on a dry grass field", "two elephants on a green grass field"), "background"),
    Slide("object-flips", "Flipping objects",
          ("a vintage photo of a cat on green grass", "a vintage photo of a dog on green grass"), "object"),
    Slide("novel", "Novel compositions",
          ("a stop sign flying in blue skies", "two elephants flying in blue skies",
           "a stop sign on the street", "two elephants on a dry grass field")),
)
ALIGNMENT_CAPTION = SLIDES[3].captions[0]


def write_slides(run_dir, out, samples: int = 6, seed: int = 0, checkpoint: str = "last",
                 sampler: str | None = None, report=None) -> list[Path]:
    """Draws every slide row from a scenes run into `out`; returns the written paths."""
    from t2i import samplers

    samplers.resolve(sampler)  # a mistake is reported before the model loads
    if samples < 1:
        raise T2IError(f"--samples must be >= 1, got {samples}")
    out = Path(out)
    if out.suffix:
        raise T2IError(f"-o names a folder for the slide figures, got a file name: {out}")

    from t2i import run as run_lib
    from t2i import visualize
    from t2i.data.scenes import captions as cap
    from t2i.data.scenes.sampler import parse_composition
    from t2i.scene_classifier import load_classifier
    from t2i.text import CaptionTokenizer
    from training.scenes_eval import attribute_fidelity

    given, run_dir = run_dir, run_lib.resolve_run(run_dir)
    config = run_lib.load_run_config(run_dir)
    if config.data.dataset != "scenes":
        raise T2IError(f"t2i slides draws the colour scenes of the slides; {run_lib.run_label(run_dir)} "
                       f"is a {config.data.dataset!r} run (train one with --preset scenes_32)")
    metrics = _report(run_dir, report)
    config, model = run_lib.load_model(run_dir, checkpoint)
    sampler = samplers.resolve(sampler, default=config.sample.sampler)
    tokenizer = CaptionTokenizer(config.text)
    classifier = load_classifier()
    held_out = [parse_composition(c) for c in config.data.held_out]
    out.mkdir(parents=True, exist_ok=True)

    written, sections = [], []
    seeds = seed + np.arange(samples)
    every = [c for slide in SLIDES for c in slide.captions]  # one batch: one traced graph
    drawn = samplers.generate(model, config, np.repeat(tokenizer.encode(every), samples, axis=0),
                              np.tile(seeds, len(every)), sampler)["images"]
    start = 0
    for slide in SLIDES:
        captions = list(slide.captions)
        images = drawn[start * samples:(start + len(captions)) * samples]
        start += len(captions)
        table = cap.attribute_table([cap.parse_caption(c) for c in captions])
        table["vintage"] = np.asarray(table["vintage"], bool)
        held = np.zeros(len(captions), bool)
        for composition in held_out:
            held |= composition.matches(table)
        labels = [c + (" (held out)" if h else "") for c, h in zip(captions, held)]
        path = out / f"{slide.name}.png"
        visualize.captioned_grid([images[i * samples:(i + 1) * samples] for i in range(len(captions))],
                                 labels, scale=3).save(path)
        written.append(path)
        focus = slide.flip or "object"  # the attribute the row is about
        rows = []
        for i, label in enumerate(labels):
            right, per = attribute_fidelity(classifier, images[i * samples:(i + 1) * samples],
                                            [captions[i]] * samples)
            rows.append(f"| {label} | {int(right.sum())} of {samples} | "
                        f"{round(per[focus] * samples)} of {samples} |")
        sections.append((slide, path.name, rows))

    trace = samplers.generate(model, config, tokenizer.encode([ALIGNMENT_CAPTION]), seeds[:1], sampler,
                              trace=True)
    words = ALIGNMENT_CAPTION.split()
    path = out / "alignment.png"
    visualize.save_alignment_figure(path, trace["alignments"][0, :, :len(words)], words,
                                    canvases=trace["canvases"][0], scale=3)
    written.append(path)
    markdown = out / "slides.md"
    markdown.write_text(_markdown(run_lib.run_label(run_dir), str(given), checkpoint, str(sampler), samples,
                                  seed, sections, metrics))
    written.append(markdown)
    return written


def _report(run_dir: Path, report) -> dict | None:
    """The run's evaluation report: `report` (metrics.json or its folder), else run/metrics.json."""
    path = Path(report) if report else run_dir / "metrics.json"
    if path.is_dir():
        path = path / "metrics.json"
    if not path.is_file():
        if report:
            raise T2IError(f"no evaluation report at {path} (write one with t2i evaluate)")
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise T2IError(f"cannot read the evaluation report {path}: {e}") from None


def _percent(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _markdown(label, given, checkpoint, sampler, samples, seed, sections, metrics) -> str:
    lines = [f"# The slides, redrawn from {label}", "",
             f"`t2i slides --run {given} --checkpoint {checkpoint} --sampler {sampler} --samples {samples} "
             f"--seed {seed}`: temperature 1, seeds {seed}..{seed + samples - 1} in every row. "
             "Beside each caption: how many of its images the scenes attribute classifier reads right "
             "in every attribute the caption names."]
    fidelity = (metrics or {}).get("scenes_fidelity")
    if fidelity:
        lines += ["", f"From the run's evaluation ({metrics.get('examples', '?')} test captions, one image each): "
                  f"every named attribute right for {_percent(fidelity.get('seen'))} of seen captions and "
                  f"{_percent(fidelity.get('held_out'))} of held-out compositions."]
    for slide, image, rows in sections:
        lines += ["", f"## {slide.title}", "", f"![{slide.title}]({image})", "",
                  f"| caption | every named attribute read right | its {slide.flip or 'object'} read right |",
                  "|---|---|---|", *rows]
        flip = (metrics or {}).get("flip_success", {}).get(slide.flip) if slide.flip else None
        if flip:
            lines += ["", f"Flip success in the evaluation ({flip['pairs']} caption pairs differing in the "
                      f"{slide.flip}, same seed): {_percent(flip['success'])}."]
        if slide.flip is None and fidelity and fidelity.get("held_out_compositions"):
            lines += ["", "Held-out compositions in the evaluation: " + ", ".join(
                f"{name} {_percent(v)}" for name, v in fidelity["held_out_compositions"].items()) + "."]
    lines += ["", "## Word alignment", "", f"![where the attention sits]({'alignment.png'})", "",
              f"\"{ALIGNMENT_CAPTION}\": the attention over the words at every drawing step (rows), "
              "beside the canvas after that step.", ""]
    return "\n".join(lines)
