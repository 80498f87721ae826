"""Evaluation of a trained run on its test set (MNIST-with-captions composites or COCO).

    t2i evaluate --run runs/mnist -o report/ [--examples 1000] [--samples 50]

writes `report/metrics.json`, `report/metrics.md` and `report/samples.png`:

* the single-sample lower bound (nats per image, averaged over the test
  composites) and importance-weighted bounds with k = 1, 10, 100 on a subset;
* MNIST only: caption fidelity (the bundled digit classifier reads each digit at the place
  the caption names) of one generated sample per test caption, for seen and
  held-out compositions and per template, next to its ceiling (the real test
  composites) and floor (real composites with shuffled captions); also the
  composition probe: `--probe-samples` images for each caption of
  each of the 240 compositions, so the held-out figure rests on hundreds of
  images and every held-out composition gets its own score;
* SSI: SSIM of `--samples` samples per caption to the caption's true image
  (mean and std), and sample diversity (mean SSIM between samples of a caption).

* retrieval as in the paper: each query caption ranks its true image among
  `--candidates` (the image and its nearest neighbours in pixel space) by
  log p(x|y) - log p(x|ybar), ybar the mean word state of training captions;
  R@1/5/10/50 and the median rank.

* with a sharpener in the run (`t2i sharpen train`), `bound_sharpened`: the
  same single-sample bound (same noise) with the Bernoulli mean replaced by
  the sharpened sigmoid(c_T) (`t2i.sharpen.sharpened_log_weights`).
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np

from t2i.errors import T2IError, check_temperature


def _fidelity_table(right, types, held) -> dict:
    out = {"all": float(right.mean()), "seen": float(right[~held].mean()) if (~held).any() else None,
           "held_out": float(right[held].mean()) if held.any() else None, "per_template": {}}
    for k in range(8):
        sel = types == k
        if sel.any():
            out["per_template"][str(k)] = {
                "seen": float(right[sel & ~held].mean()) if (sel & ~held).any() else None,
                "held_out": float(right[sel & held].mean()) if (sel & held).any() else None}
    return out


_ROLES = {"digits": frozenset("0123456789"), "places": frozenset({"left", "right", "top", "bottom"})}


def attention_by_role(alignments, captions) -> dict:
    """Where the word attention goes: its share on digit words, place words and the rest.

    alignments: [N, T, L] (each step sums to 1 over a caption's words);
    captions: N captions already in token form (words split by spaces, as
    the MNIST templates are). Returns {"digits", "places", "other"}, each the
    share averaged over steps and captions; they sum to 1.
    """
    alignments = np.asarray(alignments, np.float64)
    shares = {role: 0.0 for role in (*_ROLES, "other")}
    for weights, caption in zip(alignments, captions):
        words = caption.split()
        per_word = weights[:, :len(words)].mean(0)
        role_of = [next((role for role, vocab in _ROLES.items() if word in vocab), "other") for word in words]
        for w, role in zip(per_word, role_of):
            shares[role] += float(w)
    return {role: v / max(len(captions), 1) for role, v in shares.items()}


def composition_probe(model, tokenizer, classifier, held_out, samples: int = 20, seed: int = 0,
                      temperature: float = 1.0, guidance: float = 1.0, sampler="plain",
                      config=None) -> dict:
    """Caption fidelity of every one of the 240 compositions, `samples` images per caption.

    Pairs are asked for in both phrasings, corners in their one phrasing. Unlike
    the test composites (where the 8 held-out compositions are about 4% of the
    examples), every composition gets the same number of images, so the held-out
    figure rests on 12 captions x `samples` images and each composition has its
    own score. `temperature` scales the prior's noise and `sampler` draws the
    latents (`t2i.samplers`; `guidance` G is the older spelling of "guided:g=G";
    samplers other than plain and guided need the run's `config`).
    "diversity" is the mean pairwise pixel distance (mean |x_i - x_j| over
    pixels) between the images of one caption, averaged over captions, for
    seen and held-out captions.
    "attention" gives where the word attention went (`attention_by_role`),
    for seen and held-out captions.
    """
    from t2i.data import mnist_captions as mc
    from t2i.digit_classifier import caption_fidelity, read_digits

    held = {str(mc.parse_composition(c)) for c in held_out}
    rows = [(c, k) for c in mc.all_compositions() for k in c.types for _ in range(samples)]
    types = np.array([k for _, k in rows])
    a = np.array([c.a for c, _ in rows])
    b = np.array([-1 if c.b is None else c.b for c, _ in rows])
    captions = [mc.caption(k, c.a, c.b) for c, k in rows]
    from t2i import samplers

    sampler = samplers.resolve(sampler, guidance)
    tokens, seeds = tokenizer.encode(captions), seed + np.arange(len(rows))
    if config is None:
        drawn = samplers.sample(model, tokens, seeds, sampler, temperature=temperature)
    else:
        drawn = samplers.generate(model, config, tokens, seeds, sampler, temperature=temperature)
    images = drawn["images"]
    read = read_digits(classifier, images, types, a, b)
    right = caption_fidelity(classifier, images, types, a, b, read=read)
    names = np.array([str(c) for c, _ in rows])
    per = {name: float(right[names == name].mean()) for name in dict.fromkeys(names.tolist())}
    is_held = np.array([name in held for name in names])
    # What the classifier reads where a held-out composition's digits should be ("2 9" for a pair).
    read_as = {}
    for name in per:
        if name in held:
            got = collections.Counter(" ".join(map(str, read[i])) for i in np.flatnonzero(names == name))
            read_as[name] = {k: v / sum(got.values()) for k, v in got.most_common(3)}
    pair = types < 4
    attention = {}
    if "alignments" in drawn:  # alignDRAW's word attention: does it read the digit and place words?
        for part, sel in (("seen_pairs", ~is_held & pair), ("seen_corners", ~is_held & ~pair),
                          ("held_out_pairs", is_held & pair), ("held_out_corners", is_held & ~pair)):
            if sel.any():
                attention[part] = attention_by_role(drawn["alignments"][sel], [captions[i] for i in np.flatnonzero(sel)])
    from t2i.metrics import pairwise_pixel_distance

    distance = pairwise_pixel_distance(images, samples) if samples > 1 else None
    held_group = is_held[::samples]
    diversity = None if distance is None else {
        "seen": float(distance[~held_group].mean()),
        "held_out": float(distance[held_group].mean()) if held_group.any() else None}
    return {"samples_per_caption": samples, "images": len(rows), "temperature": float(temperature),
            "sampler": str(sampler), "diversity": diversity,
            "seen": float(right[~is_held].mean()),
            "held_out": float(right[is_held].mean()) if is_held.any() else None,
            "seen_pairs": float(right[~is_held & pair].mean()),
            "seen_corners": float(right[~is_held & ~pair].mean()),
            "held_out_compositions": {name: per[name] for name in per if name in held},
            "held_out_read_as": read_as,
            "attention": attention,
            "per_composition": per}


def sampler_diversity(model, config, tokens, sampler, seed: int = 0, captions: int = 20,
                      samples: int = 10) -> dict:
    """Within-caption diversity of `sampler` and of plain sampling, on the same `captions`
    test captions and `samples` seeds each: mean SSIM between a caption's samples
    (`metrics.sample_diversity`, 1: always the same picture) and mean pairwise pixel
    distance (`metrics.pairwise_pixel_distance`), with its ratio to plain's."""
    from t2i import metrics, samplers

    reps = np.repeat(np.asarray(tokens)[:captions], samples, axis=0)
    seeds = seed + np.tile(np.arange(samples), len(reps) // samples)
    out = {"sampler": str(sampler), "captions": len(reps) // samples, "samples": samples}
    for name, how in (("sampler", sampler), ("plain", "plain")):
        drawn = samplers.generate(model, config, reps, seeds, how)["images"]
        out[f"{name}_ssim"] = metrics.sample_diversity(drawn.reshape((-1, samples) + drawn.shape[1:]))
        out[f"{name}_pixel_distance"] = float(metrics.pairwise_pixel_distance(drawn, samples).mean())
    out["pixel_distance_ratio"] = out["sampler_pixel_distance"] / max(out["plain_pixel_distance"], 1e-12)
    return out


def _digit_report(model, config, tokenizer, images, captions, tokens, held, layouts, *, sampler, seed,
                  probe_samples, probe_temperatures, finish=None) -> dict:
    """MNIST with captions: caption fidelity (the digit classifier reads each named digit at its
    place; `layouts` says where), with the real composites' ceiling and a shuffled floor, and the
    composition probe at temperature 1 and at `probe_temperatures`."""
    from t2i import samplers
    from t2i.digit_classifier import caption_fidelity, load_classifier

    n = len(captions)
    types, a, b = layouts.types, layouts.a, layouts.b
    classifier = load_classifier()
    generated = samplers.generate(model, config, tokens, seed + np.arange(n), sampler)["images"]
    if finish is not None:  # --sharpen: the test composites' fidelity (not the probe's)
        generated = finish(generated, tokens)
    report = {
        "fidelity": _fidelity_table(caption_fidelity(classifier, generated, types, a, b), types, held),
        "fidelity_ceiling_real": _fidelity_table(caption_fidelity(classifier, images, types, a, b), types, held)}
    perm = np.random.default_rng(seed).permutation(n)
    report["fidelity_floor_shuffled"] = float(
        caption_fidelity(classifier, images, types[perm], a[perm], b[perm]).mean())
    if probe_samples > 0:
        report["composition_probe"] = composition_probe(
            model, tokenizer, classifier, config.data.held_out, probe_samples, seed,
            sampler=sampler, config=config)
        # Reduced temperature separates conditioning from sampling noise:
        # at 0 every image follows the prior means the caption leads to.
        report["composition_probe_by_temperature"] = {
            f"{t:g}": {k: v for k, v in composition_probe(
                model, tokenizer, classifier, config.data.held_out, probe_samples, seed, t,
                sampler=sampler, config=config).items()
                if k != "per_composition"}
            for t in probe_temperatures}
    return report


def _scenes_report(model, config, tokenizer, images, captions, tokens, held, layouts, *, sampler, seed,
                   probe_samples, probe_temperatures, finish=None) -> dict:
    """Scenes: caption fidelity per named attribute and flip success (`training.scenes_eval`)."""
    from training.scenes_eval import scenes_report

    return scenes_report(model, config, tokenizer, captions, held, images, sampler, seed,
                         flip_pairs_per_kind=max(1, probe_samples * 5), finish=finish)


# `data.dataset` -> its own part of the report; a dataset without one gets the rest (COCO).
DATASET_REPORTS = {"mnist_captions": _digit_report, "scenes": _scenes_report}


def evaluate(run_dir, out_dir, examples: int = 1000, iw_examples: int = 100, iw_k=(1, 10, 100),
             ssi_captions: int = 100, samples: int = 50, retrieval_queries: int = 100,
             candidates: int = 100, checkpoint: str = "best", seed: int = 0,
             probe_samples: int = 20, probe_temperatures=(0.5, 0.0), guidance: float = 1.0,
             sampler=None, sharpen: bool = False) -> dict:
    """Evaluates a run; writes and returns the metrics (see the module docstring)."""
    from t2i import metrics
    from t2i import run as run_lib
    from t2i.data.datasets import open_datasets
    from t2i.visualize import captioned_grid

    if examples < 1 or iw_examples < 1 or ssi_captions < 1 or samples < 2:
        raise T2IError("--examples, --iw-examples and --ssi-captions must be >= 1 and --samples >= 2")
    check_temperature(list(probe_temperatures), "--probe-temperatures")
    from t2i import samplers

    samplers.resolve(sampler, guidance)  # a mistake is reported before the model loads
    config, model = run_lib.load_model(run_dir, checkpoint)
    sampler = samplers.resolve(sampler, guidance, config.sample.sampler)
    if sampler.name == "guided" and not sampler.is_plain:
        from t2i.guidance import check_guidance

        check_guidance(model, sampler.g, "--guidance")
    finish = None
    if sharpen:  # caption fidelity (and scenes' flips) of the sharpened images, as `generate --sharpen`
        from t2i import sharpen as sharpen_lib

        if not sharpen_lib.has_sharpener(run_dir):
            raise T2IError(f"--sharpen: {run_lib.run_label(run_dir)} has no sharpener (train one with "
                           f"t2i sharpen train --run {run_lib.run_label(run_dir)})")
        _, sharpener = sharpen_lib.load_run_sharpener(run_dir, model)
        finish = lambda drawn, drawn_tokens: sharpener.sharpen(  # noqa: E731
            drawn, sharpen_lib.caption_vectors(model, drawn_tokens))
    _, tokenizer, data = open_datasets(config)
    # One caption per test image; `layouts` (MNIST) says where each caption puts which digit.
    images, captions, held, layouts = data.test_examples.evaluation_set(examples)
    n = len(captions)
    tokens = tokenizer.encode(captions)

    report = {"run": run_lib.run_label(run_dir), "checkpoint": checkpoint, "dataset": config.data.dataset, "examples": n,
              "held_out_examples": int(held.sum()), "held_out": list(config.data.held_out)}
    if not sampler.is_plain:
        report["sampler"] = str(sampler)  # applies to fidelity and the probe
    if sharpen:
        report["sharpened"] = True  # applies to fidelity and scenes' flips, not MNIST's probe
    # Bounds (nats per image; the paper reports log-likelihood bounds as negatives).
    w1 = metrics.log_weights(model, images, tokens, 1, seed=seed)
    report["lower_bound"] = {"all": float(w1.mean()), "seen": float(w1[~held].mean()),
                             "held_out": float(w1[held].mean()) if held.any() else None}
    report.update(_sharpened_bound(run_dir, model, images, tokens, held, seed))
    m = min(iw_examples, n)
    wk = metrics.log_weights(model, images[:m], tokens[:m], max(iw_k), seed=seed + 1)
    report["importance_weighted_bound"] = {
        "examples": m, **{f"k={k}": float(np.mean([metrics.importance_weighted_bound(wk[:, i:i + k]).mean()
                                                    for i in range(0, max(iw_k) - k + 1, k)]))
                          for k in iw_k}}
    # What only this dataset can say: MNIST's caption fidelity (digits and places, with the
    # real composites' ceiling) and composition probe; scenes' fidelity per attribute and flips.
    dataset_report = DATASET_REPORTS.get(config.data.dataset)
    if dataset_report is not None:
        report.update(dataset_report(
            model, config, tokenizer, images, captions, tokens, held, layouts, sampler=sampler, seed=seed,
            probe_samples=probe_samples, probe_temperatures=probe_temperatures, finish=finish))
    # SSI and diversity.
    c = min(ssi_captions, n)
    reps = np.repeat(tokens[:c], samples, axis=0)
    drawn = model.generate(reps, seed + np.arange(len(reps)))["images"].reshape(
        (c, samples) + images.shape[1:])
    mean, std = metrics.ssi_to_reference(drawn, images[:c])
    report["ssi"] = {"captions": c, "samples": samples, "mean": mean, "std": std,
                     "diversity": metrics.sample_diversity(drawn)}
    if not sampler.is_plain:  # the sampler's own within-caption diversity, against plain's
        report["sampler_diversity"] = sampler_diversity(model, config, tokens, sampler, seed)

    # Retrieval (docs/model.md §13): rank each query's true image among it and its nearest
    # neighbours by log p(x|y) - log p(x|ybar), ybar the mean training word state.
    if retrieval_queries > 0:
        if candidates > n:
            raise T2IError(f"retrieval needs at least --candidates ({candidates}) examples, got {n}")
        stream = data.train_batches()
        batches = [np.asarray(next(stream)["tokens"]) for _ in range(max(1, 1000 // config.train.batch_size))]
        width = max(t.shape[1] for t in batches)  # COCO batches differ in caption length
        train_tokens = np.concatenate([np.pad(t, ((0, 0), (0, width - t.shape[1]))) for t in batches])
        mean_state = metrics.mean_word_state(model, train_tokens)
        shortlist = metrics.nearest_candidates(images, candidates)
        queries = np.arange(min(retrieval_queries, n))
        ranks = metrics.retrieval_ranks(
            metrics.retrieval_scores(model, images, tokens, mean_state, shortlist, queries, seed=seed),
            np.zeros(len(queries), int))
        report["retrieval"] = {"queries": len(queries), "candidates": candidates,
                               **metrics.retrieval_report(ranks)}

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "metrics.md").write_text(markdown(report))
    show = min(8, c)
    rows = [np.concatenate([images[i:i + 1], drawn[i, :7]]) for i in range(show)]
    captioned_grid(rows, [f"{captions[i]} (true, then samples)" for i in range(show)]).save(out / "samples.png")
    return report


def _sharpened_bound(run_dir, model, images, tokens, held, seed) -> dict:
    """{"bound_sharpened": ...} when the run has a sharpener, else {} (t2i.sharpen)."""
    from t2i import sharpen

    if not sharpen.has_sharpener(run_dir) or model.likelihood != "bernoulli":  # (the sharpened
        # bound swaps a Bernoulli likelihood; another likelihood's bound is not comparable)
        return {}
    _, sharpener = sharpen.load_run_sharpener(run_dir, model)
    w = sharpen.sharpened_log_weights(model, sharpener, images, tokens, 1, seed=seed)
    return {"bound_sharpened": {"all": float(w.mean()),
                                "seen": float(w[~held].mean()) if (~held).any() else None,
                                "held_out": float(w[held].mean()) if held.any() else None,
                                "epsilon": sharpen.BOUND_EPSILON}}


def markdown(r: dict) -> str:
    def pct(x):
        return "–" if x is None else f"{100 * x:.1f}%"

    if r.get("dataset") == "coco":
        what = f"{r['examples']} COCO test images, one caption each."
    elif r.get("dataset") == "scenes":
        what = (f"{r['examples']} test scenes, one caption each, {r['held_out_examples']} of them "
                "held-out compositions.")
    else:
        what = (f"{r['examples']} test composites from MNIST test digits, {r['held_out_examples']} of "
                "them held-out compositions.")
    if r.get("sharpened"):
        what += (" Caption fidelity" + (" and flips are" if r.get("dataset") == "scenes" else " is")
                 + " measured on the sharpened images (`--sharpen`).")
    lines = [f"# Evaluation of {r['run']} ({r['checkpoint']} checkpoint)", "", what, "",
             "| metric | value |", "|---|---|",
             f"| lower bound, nats/image (all / seen / held-out) | {r['lower_bound']['all']:.1f} / "
             f"{r['lower_bound']['seen']:.1f} / "
             + ("–" if r['lower_bound']['held_out'] is None else f"{r['lower_bound']['held_out']:.1f}") + " |"]
    if "bound_sharpened" in r:
        b = r["bound_sharpened"]
        parts = " / ".join("–" if b[k] is None else f"{b[k]:.1f}" for k in ("all", "seen", "held_out"))
        lines.append(f"| lower bound after sharpening, nats/image (all / seen / held-out) | {parts} |")
    iw = r["importance_weighted_bound"]
    for key, value in iw.items():
        if key.startswith("k="):
            lines.append(f"| importance-weighted bound {key} ({iw['examples']} examples) | {value:.1f} |")
    f, ceil = r.get("fidelity"), r.get("fidelity_ceiling_real")
    if f is not None:
        lines += [f"| caption fidelity, seen / held-out | {pct(f['seen'])} / {pct(f['held_out'])} |",
                  f"| ceiling (real composites), seen / held-out | {pct(ceil['seen'])} / "
                  f"{pct(ceil['held_out'])} |",
                  f"| floor (shuffled captions) | {pct(r['fidelity_floor_shuffled'])} |"]
    sf = r.get("scenes_fidelity")
    if sf is not None:
        ceil = sf["ceiling_real"]
        lines += [f"| caption fidelity, every named attribute, seen / held-out | {pct(sf['seen'])} / "
                  f"{pct(sf['held_out'])} |",
                  f"| ceiling (the classifier on the real test scenes), seen / held-out | {pct(ceil['seen'])} / "
                  f"{pct(ceil['held_out'])} |"]
        for name, v in sf["per_attribute"].items():
            lines.append(f"| fidelity of {name} (where named) | {pct(v)} (real: {pct(ceil['per_attribute'][name])}) |")
        for name, v in sf.get("held_out_compositions", {}).items():
            lines.append(f"| held-out composition {name} | {pct(v)} |")
        for kind, v in r.get("flip_success", {}).items():
            lines.append(f"| flip success, {kind} ({v['pairs']} pairs) | {pct(v['success'])} |")
    probe = r.get("composition_probe")
    if probe is not None:
        lines.append(f"| composition probe ({probe['samples_per_caption']} images per caption of all 240 "
                     f"compositions), seen / held-out | {pct(probe['seen'])} / {pct(probe['held_out'])} |")
        for t, p in r.get("composition_probe_by_temperature", {}).items():
            lines.append(f"| composition probe at temperature {t}, seen / held-out | {pct(p['seen'])} / "
                         f"{pct(p['held_out'])} |")
    lines += [f"| SSI ({r['ssi']['samples']} samples x {r['ssi']['captions']} captions) | "
              f"{r['ssi']['mean']:.3f} ± {r['ssi']['std']:.3f} |",
              f"| sample diversity (mean SSIM between samples) | {r['ssi']['diversity']:.3f} |"]
    if r.get("sampler_diversity"):
        d = r["sampler_diversity"]
        lines += [f"| diversity of sampler {d['sampler']} ({d['samples']} samples x {d['captions']} captions): "
                  f"mean SSIM, pixel distance vs plain | {d['sampler_ssim']:.3f} (plain {d['plain_ssim']:.3f}), "
                  f"{d['pixel_distance_ratio']:.2f} |"]
    if "retrieval" in r:
        t = r["retrieval"]
        lines.append(f"| retrieval ({t['queries']} queries x {t['candidates']} candidates): R@1 / R@5 / R@10 / "
                     f"R@50, median rank | {t['R@1']:.1f} / {t['R@5']:.1f} / {t['R@10']:.1f} / "
                     f"{t['R@50']:.1f}, {t['median_rank']:.0f} |")
    if f is not None:
        lines += ["", "Per template (seen / held-out fidelity):", "", "| template | seen | held-out |",
                  "|---|---|---|"]
        for k, v in f["per_template"].items():
            lines.append(f"| {k} | {pct(v['seen'])} | {pct(v['held_out'])} |")
    if probe is not None and probe["held_out_compositions"]:
        lines += ["", "Composition probe, each held-out composition (and the digits most often read where its",
                  "digits should be):", "", "| composition | fidelity | read as |", "|---|---|---|"]
        for name, v in probe["held_out_compositions"].items():
            read = ", ".join(f"{k} {pct(f)}" for k, f in probe.get("held_out_read_as", {}).get(name, {}).items())
            lines.append(f"| {name} | {pct(v)} | {read} |")
        if probe.get("attention"):
            lines += ["", "Where the word attention goes in the probe (share of all steps' attention):", "",
                      "| captions | digit words | place words | other words |", "|---|---|---|---|"]
            for part, share in probe["attention"].items():
                lines.append(f"| {part.replace('_', ' ').replace('held out', 'held-out')} | {pct(share['digits'])} | "
                             f"{pct(share['places'])} | {pct(share['other'])} |")
        by_t = r.get("composition_probe_by_temperature", {})
        if by_t:
            names = list(probe["held_out_compositions"])
            lines += ["", "Held-out compositions by sampling temperature (1: the paper's protocol):", "",
                      "| composition | " + " | ".join(["1", *by_t]) + " |",
                      "|---|" + "---|" * (1 + len(by_t))]
            for name in names:
                lines.append(f"| {name} | " + " | ".join(
                    [pct(probe["held_out_compositions"][name]),
                     *(pct(p["held_out_compositions"][name]) for p in by_t.values())]) + " |")
    return "\n".join(lines) + "\n"
