"""Why held-out compositions fail at temperature 1: cheap probes of a trained run.

    python benchmarks/compose_diagnosis.py [--run RUN] [--samples 20] [--json out.json]

Without --run it diagnoses the shipped model. Minutes of CPU, no training.
It re-runs the model's unroll step by step (`unroll` below, checked against
`AlignDRAW.generate` at start-up) so that it can

1. measure, on real test composites (inference path), the KL per step, the
   prior's and the posterior's standard deviations, and how many latent units
   are active;
2. run the composition probe with the sampling noise switched off (temperature
   0) in one window of steps and on (1) elsewhere, or the reverse, to find
   which steps' noise spoils held-out compositions;
3. swap captions under fixed latents: infer z_1..z_T from a real composite
   with its own caption, then decode them with a caption naming other digits
   at the same places; the digits drawn then follow either the caption or the
   latents, which says how much of a digit's identity the latents carry;
4. record where the write attention goes and how much it writes per step.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from keras import ops  # noqa: E402


def unroll(model, tokens, noise, tau=None, z_fixed=None, images=None):
    """The model's unroll (`AlignDRAW._unroll`) with per-step hooks, eager.

    tau: [T] noise scale per step (generation path: z_t = mu_t + tau_t sigma_t eps_t).
    z_fixed: [B, T, latent] latents to decode instead of drawing them.
    images: run the inference path instead (z from the posterior).
    Returns NumPy: images, per-step prior (mu, log_sigma), posterior (mu,
    log_sigma, z) on the inference path, kl [B, T], write ink [B, T] and the
    write attention's (g_x, g_y, delta) [B, T, 3].
    """
    from t2i.layers.draw_attention import attention_params
    from t2i.losses import gaussian_kl

    T = model.num_steps
    tau = np.ones(T, np.float32) if tau is None else np.asarray(tau, np.float32)
    batch = len(tokens)
    context_of, _ = model._encode_caption(ops.convert_to_tensor(tokens))
    h_enc, c_enc = model._initial(batch, model.initial_encoder_state, model.encoder_units)
    h_dec, c_dec = model._initial(batch, model.initial_decoder_state, model.decoder_units)
    canvas = ops.broadcast_to(model.initial_canvas, (batch, model.image_height, model.image_width, model.channels))
    mu_p = ops.zeros((batch, model.latent_dim))
    ls_p = ops.zeros_like(mu_p)
    rec = {k: [] for k in ("mu_p", "ls_p", "mu_q", "ls_q", "z", "kl", "ink", "where")}
    if images is not None:
        images = ops.convert_to_tensor(images)
    for t in range(T):
        context, _ = context_of(h_dec)
        eps = ops.convert_to_tensor(noise[:, t])
        rec["mu_p"].append(mu_p)
        rec["ls_p"].append(ls_p)
        if images is not None:
            error = images - ops.sigmoid(canvas)
            glimpse = model.read_attention(images, error, h_dec)
            h_enc, c_enc = model.encoder_cell(ops.concatenate([glimpse, h_dec], -1), h_enc, c_enc)
            mu_q, ls_q = model.posterior(h_enc)
            z = mu_q + ops.exp(ls_q) * eps
            rec["mu_q"].append(mu_q)
            rec["ls_q"].append(ls_q)
            rec["kl"].append(gaussian_kl(mu_q, ls_q, mu_p, ls_p))
        elif z_fixed is not None:
            z = ops.convert_to_tensor(z_fixed[:, t])
        else:
            z = mu_p + float(tau[t]) * ops.exp(ls_p) * eps
        rec["z"].append(z)
        h_dec, c_dec = model.decoder_cell(ops.concatenate([z, context], -1), h_dec, c_dec)
        if t + 1 < T:
            mu_p, ls_p = model.prior(h_dec)
        write = model.write_attention(h_dec)
        canvas = canvas + write
        rec["ink"].append(ops.sum(ops.abs(write), axis=(1, 2, 3)))
        gx, gy, delta, _, _ = attention_params(model.write_attention.params(h_dec), model.image_height,
                                               model.image_width, model.write_attention.glimpse_size)
        rec["where"].append(ops.concatenate([gx, gy, delta], -1))
    out = {"images": ops.convert_to_numpy(ops.sigmoid(canvas))}
    for k, v in rec.items():
        if v:
            out[k] = np.stack([ops.convert_to_numpy(x) for x in v], 1)
    return out


def batched(model, tokens, noise, batch=500, **kw):
    parts = []
    for i in range(0, len(tokens), batch):
        sub = {k: (v[i:i + batch] if isinstance(v, np.ndarray) and v.ndim > 1 else v) for k, v in kw.items()}
        parts.append(unroll(model, tokens[i:i + batch], noise[i:i + batch], **sub))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def probe_rows(samples):
    from t2i.data import mnist_captions as mc

    rows = [(c, k) for c in mc.all_compositions() for k in c.types for _ in range(samples)]
    types = np.array([k for _, k in rows])
    a = np.array([c.a for c, _ in rows])
    b = np.array([-1 if c.b is None else c.b for c, _ in rows])
    names = np.array([str(c) for c, _ in rows])
    captions = [mc.caption(k, c.a, c.b) for c, k in rows]
    return captions, types, a, b, names


def probe(model, tokenizer, classifier, held, samples, tau, seed=0):
    """The composition probe (as `training.evaluate.composition_probe`) with a per-step noise scale."""
    from t2i.digit_classifier import caption_fidelity

    captions, types, a, b, names = probe_rows(samples)
    tokens = tokenizer.encode(captions)
    noise = model.noise_for_seeds(seed + np.arange(len(captions)))
    images = batched(model, tokens, noise, tau=tau)["images"]
    right = caption_fidelity(classifier, images, types, a, b)
    is_held = np.isin(names, list(held))
    per = {h: float(right[names == h].mean()) for h in held}
    return {"seen": float(right[~is_held].mean()), "held_out": float(right[is_held].mean()),
            "seen_pairs": float(right[~is_held & (types < 4)].mean()),
            "seen_corners": float(right[~is_held & (types >= 4)].mean()), "held_out_compositions": per}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default=None, help="run directory (default: the shipped model)")
    p.add_argument("--samples", type=int, default=20, help="probe images per caption")
    p.add_argument("--examples", type=int, default=1000, help="test composites for the KL/swap parts")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    from t2i import run as run_lib
    from t2i.data import mnist_captions as mc
    from t2i.data.pipeline import make_datasets
    from t2i.digit_classifier import caption_fidelity, load_classifier, read_digits
    from t2i.text import CaptionTokenizer

    start = time.time()
    config, model = run_lib.load_model(args.run)
    tok = CaptionTokenizer(config.text)
    clf = load_classifier()
    held = [str(mc.parse_composition(c)) for c in config.data.held_out]
    T, L = model.num_steps, model.latent_dim
    report = {"run": args.run or "shipped", "num_steps": T, "latent_dim": L}

    # 0. The re-implemented unroll reproduces the model's own generation.
    caps = [mc.caption(4, 4), mc.caption(0, 2, 9)]
    ref = model.generate(tok.encode(caps), [0, 1])["images"]
    mine = unroll(model, tok.encode(caps), model.noise_for_seeds([0, 1]))["images"]
    report["unroll_max_abs_diff_vs_generate"] = float(np.abs(ref - mine).max())
    assert report["unroll_max_abs_diff_vs_generate"] < 1e-4, report

    # 1. KL per step and the prior's / posterior's scales on real test composites.
    images, caps_t, _, test = make_datasets(config, tok).test_examples.evaluation_set(args.examples)
    n = len(caps_t)
    ttok = tok.encode([str(c) for c in caps_t])
    rng = np.random.default_rng(0)
    post = batched(model, ttok, rng.standard_normal((n, T, L)).astype(np.float32), images=images)
    kl = post["kl"]  # [n, T]
    sig_p, sig_q = np.exp(post["ls_p"]), np.exp(post["ls_q"])
    kl_dim = (post["ls_p"] - post["ls_q"] + (sig_q ** 2 + (post["mu_q"] - post["mu_p"]) ** 2)
              / (2 * sig_p ** 2) - 0.5)  # [n, T, L]
    active = kl_dim.mean(0) > 0.05  # [T, L]: units carrying information at step t
    report["kl"] = {
        "total": float(kl.sum(1).mean()),
        "per_step": [round(float(v), 3) for v in kl.mean(0)],
        "share_steps_1": float(kl[:, :1].sum() / kl.sum()), "share_steps_1_4": float(kl[:, :4].sum() / kl.sum()),
        "share_steps_1_8": float(kl[:, :8].sum() / kl.sum()),
        "active_units_per_step": [int(v) for v in active.sum(1)],
        "prior_sigma_active_median_per_step": [round(float(np.median(sig_p[:, t][:, active[t]])), 3)
                                               if active[t].any() else None for t in range(T)],
        "posterior_sigma_active_median_per_step": [round(float(np.median(sig_q[:, t][:, active[t]])), 3)
                                                   if active[t].any() else None for t in range(T)],
        "prior_sigma_at_floor_share": float((post["ls_p"][:, 1:] < -0.95).mean()),  # tanh bound: sigma >= 1/e
        "prior_sigma_at_floor_share_active": float((post["ls_p"][:, 1:][:, active[1:]] < -0.95).mean()),
    }
    # KL by caption type (pairs against corners).
    report["kl"]["total_pairs"] = float(kl[test.types[:n] < 4].sum(1).mean())
    report["kl"]["total_corners"] = float(kl[test.types[:n] >= 4].sum(1).mean())

    # 2. Which steps' noise spoils held-out compositions: temperature 0 in a window, 1 elsewhere.
    windows = {"none": [], "1": [0], "1-4": range(0, 4), "1-8": range(0, 8), "5-8": range(4, 8),
               "9-16": range(8, 16), "17-32": range(16, 32), "9-32": range(8, 32), "all": range(T)}
    report["probe_noise_off_in_window"] = {}
    for name, steps in windows.items():
        tau = np.ones(T, np.float32)
        tau[list(steps)] = 0.0
        report["probe_noise_off_in_window"][name] = probe(model, tok, clf, held, args.samples, tau)
        print(name, {k: v for k, v in report["probe_noise_off_in_window"][name].items()
                     if k != "held_out_compositions"}, f"{time.time() - start:.0f}s", file=sys.stderr)
    report["probe_noise_on_only_in_window"] = {}
    for name in ("1", "1-4", "1-8", "9-32"):
        tau = np.zeros(T, np.float32)
        tau[list(windows[name])] = 1.0
        report["probe_noise_on_only_in_window"][name] = probe(model, tok, clf, held, args.samples, tau)
        print("on", name, report["probe_noise_on_only_in_window"][name]["held_out"], file=sys.stderr)

    # 3. Caption swap under fixed posterior latents: same type and places, other digits.
    types, a, b = test.types[:n], test.a[:n], test.b[:n]
    shift = rng.integers(1, 10, size=n)
    a2 = (a + shift) % 10
    b2 = np.where(types < 4, (b + rng.integers(1, 10, size=n)) % 10, b)
    swapped = tok.encode([mc.caption(int(k), int(x), int(y) if k < 4 else None)
                          for k, x, y in zip(types, a2, b2)])
    z = post["z"]
    same = unroll_fixed = batched(model, ttok, np.zeros((n, T, L), np.float32), z_fixed=z)["images"]
    other = batched(model, swapped, np.zeros((n, T, L), np.float32), z_fixed=z)["images"]
    read_same = read_digits(clf, same, types, a, b)
    read_other = read_digits(clf, other, types, a2, b2)
    follows_caption = np.array([r == [x] + ([y] if k < 4 else []) for r, k, x, y in zip(read_other, types, a2, b2)])
    follows_latents = np.array([r == [x] + ([y] if k < 4 else []) for r, k, x, y in zip(read_other, types, a, b)])
    corners = types >= 4
    report["caption_swap"] = {
        "reconstruction_fidelity_own_caption": float(caption_fidelity(clf, same, types, a, b, read=read_same).mean()),
        "swapped_follows_caption": float(follows_caption.mean()),
        "swapped_follows_latents": float(follows_latents.mean()),
        "swapped_follows_caption_corners": float(follows_caption[corners].mean()),
        "swapped_follows_latents_corners": float(follows_latents[corners].mean()),
        "swapped_follows_caption_pairs": float(follows_caption[~corners].mean()),
        "swapped_follows_latents_pairs": float(follows_latents[~corners].mean()),
    }
    # Same, keeping only z_1 (the one latent whose prior, N(0, I), cannot see the caption),
    # or only z_2..z_T from the posterior, the rest from the swapped caption's prior means.
    del unroll_fixed
    for part, steps in (("z1_only", [0]), ("z1_4_only", range(0, 4)), ("z5_32_only", range(4, T))):
        mask = np.zeros((1, T, 1), np.float32)
        mask[:, list(steps)] = 1
        # Steps outside the window: the prior mean given the swapped caption (tau = 0 there).
        imgs = _mixed(model, swapped, z, mask)
        r = read_digits(clf, imgs, types, a2, b2)
        fc = np.array([x == [p] + ([q] if k < 4 else []) for x, k, p, q in zip(r, types, a2, b2)])
        fl = np.array([x == [p] + ([q] if k < 4 else []) for x, k, p, q in zip(r, types, a, b)])
        report["caption_swap"][part] = {"follows_caption": float(fc.mean()), "follows_latents": float(fl.mean()),
                                        "follows_caption_corners": float(fc[corners].mean()),
                                        "follows_latents_corners": float(fl[corners].mean())}

    # 4. The write attention for held-out corner captions against seen ones of the same corner.
    capsw, tw, aw, bw, names = probe_rows(10)
    sel = np.array([k >= 4 for k in tw])
    out = batched(model, tok.encode([c for c, s in zip(capsw, sel) if s]),
                  model.noise_for_seeds(np.arange(sel.sum())))
    nm = names[sel]
    hc = np.isin(nm, held)
    ink = out["ink"]
    report["write"] = {
        "ink_share_steps_1_8": float(ink[:, :8].sum() / ink.sum()),
        "ink_share_steps_9_16": float(ink[:, 8:16].sum() / ink.sum()),
        "ink_share_steps_17_32": float(ink[:, 16:].sum() / ink.sum()),
        "ink_per_step_corners": [round(float(v), 1) for v in ink.mean(0)],
    }
    # Ink-weighted mean write centre (g_x, g_y) and stride per corner: held-out composition vs seen ones.
    w = ink / ink.sum(1, keepdims=True)
    where = (out["where"] * w[..., None]).sum(1)  # [N, 3]
    kk = tw[sel]
    for k in range(4, 8):
        corner = mc.CORNER_OF_TYPE[k]
        report["write"][corner] = {"held_out": where[(kk == k) & hc].mean(0).round(2).tolist(),
                                   "seen": where[(kk == k) & ~hc].mean(0).round(2).tolist()}
    report["seconds"] = round(time.time() - start, 1)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return 0


def _mixed(model, tokens, z_post, mask, batch=500):
    """Decodes with z_t = z_post where mask_t, else the prior mean (given `tokens`) at step t."""
    T = model.num_steps
    parts = []
    for i in range(0, len(tokens), batch):
        tk, zp = tokens[i:i + batch], z_post[i:i + batch]
        bsz = len(tk)
        context_of, _ = model._encode_caption(ops.convert_to_tensor(tk))
        h, c = model._initial(bsz, model.initial_decoder_state, model.decoder_units)
        canvas = ops.broadcast_to(model.initial_canvas, (bsz, model.image_height, model.image_width, model.channels))
        mu_p = ops.zeros((bsz, model.latent_dim))
        for t in range(T):
            context, _ = context_of(h)
            z = mu_p if mask[0, t, 0] == 0 else ops.convert_to_tensor(zp[:, t])
            h, c = model.decoder_cell(ops.concatenate([z, context], -1), h, c)
            if t + 1 < T:
                mu_p, _ = model.prior(h)
            canvas = canvas + model.write_attention(h)
        parts.append(ops.convert_to_numpy(ops.sigmoid(canvas)))
    return np.concatenate(parts)


if __name__ == "__main__":
    raise SystemExit(main())
