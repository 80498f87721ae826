"""Classifier-free guidance for alignDRAW (a departure from the paper, for novel compositions).

A model trained with `model.caption_dropout` p > 0 is both a conditional model
(the caption's word states) and an unconditional one (the learned null caption,
`t2i.layers.NullCaption`). Guided sampling with scale g runs both generator
streams side by side on one shared latent sequence (Ho and Salimans,
"Classifier-free diffusion guidance", 2021, adapted to DRAW's recurrence):

    mu_t    = mu^u_t + g (mu^c_t - mu^u_t)        # guided prior mean
    z_t     = mu_t + sigma^c_t eps_t              # the conditional prior's scale
    h^c_t   = LSTM_gen(h^c_{t-1}, [z_t, s^c_t]);  h^u_t likewise with s^u_t
    c_T     = c^u_T + g (c^c_T - c^u_T)           # guided canvas (writes are additive)

or, with `canvas=False` (latent guidance only), c_T = c^c_T: the guided latents
drive the conditional stream, whose canvas is the image.

mu^c, sigma^c from the conditional stream's prior and mu^u from the
unconditional one's. g = 1 is the conditional model alone (`AlignDRAW.sample`),
g = 0 the unconditional one (at eps = 0), g > 1 pushes the drawing toward
what the caption changes. The noise keeps the conditional prior's scale, so
`temperature` still means what it means without guidance.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from t2i.errors import T2IError


def check_guidance(model, guidance: float, name: str = "guidance") -> None:
    """A `T2IError` unless `guidance` is a finite number >= 0 the model can use."""
    if not np.isfinite(guidance) or guidance < 0:
        raise T2IError(f"{name} must be a finite number >= 0, got {guidance}")
    if guidance != 1.0 and getattr(model, "null_caption", None) is None:
        raise T2IError(f"{name} {guidance:g} needs a model trained with model.caption_dropout > 0 "
                       "(it has no unconditional branch); use 1")


def guided_sample(model, tokens, noise, guidance: float, trace: bool = False, canvas: bool = True) -> dict:
    """Guided sampling of one batch (see the module docstring); tokens [B, L], noise [B, T, latent].

    Returns a dict of tensors like `AlignDRAW.sample`: "images" sigmoid(c_T),
    "alignments" of the conditional stream, and with `trace` "canvases".
    """
    g = float(guidance)
    g_canvas = g if canvas else 1.0
    words, mask = model.caption_encoder(ops.convert_to_tensor(tokens))
    batch, length = ops.shape(words)[0], ops.shape(words)[1]
    null_words, null_mask = model.null_caption.null_states(batch, length)
    context = model.caption_context((ops.concatenate([words, null_words], 0),
                                     ops.concatenate([ops.cast(mask, "bool"), null_mask], 0)))
    noise = ops.convert_to_tensor(noise, dtype=model.compute_dtype)
    state = model.initial_state(2 * batch)  # conditional rows, then unconditional ones
    alignments, canvases = [], []
    for t in range(model.num_steps):
        mu_c, mu_u = state.mu[:batch], state.mu[batch:]
        z = mu_u + g * (mu_c - mu_u) + ops.exp(state.log_sigma[:batch]) * noise[:, t]
        state, weights = model.draw_step(context, state, ops.concatenate([z, z], 0))
        alignments.append(weights[:batch])
        if trace:
            canvases.append(_mix(state.canvas, batch, g_canvas))
    out = {"images": ops.sigmoid(_mix(state.canvas, batch, g_canvas)),
           "alignments": ops.stack(alignments, axis=1)}
    if trace:
        out["canvases"] = ops.sigmoid(ops.stack(canvases, axis=1))
    return out


def _mix(canvas, batch, g):
    return canvas[batch:] + g * (canvas[:batch] - canvas[batch:])


def guided_generate(model, tokens, noise, guidance: float, trace: bool = False,
                    batch_size: int = 100, canvas: bool = True) -> dict:
    """`AlignDRAW.generate` with guidance: NumPy arrays, in batches of `batch_size`."""
    check_guidance(model, guidance)
    tokens, noise = np.asarray(tokens), np.asarray(noise, np.float32)
    parts = [guided_sample(model, tokens[i:i + batch_size], noise[i:i + batch_size], guidance, trace, canvas)
             for i in range(0, len(tokens), batch_size)]
    return {k: np.concatenate([ops.convert_to_numpy(p[k]) for p in parts]) for k in parts[0]}
