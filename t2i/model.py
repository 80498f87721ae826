"""alignDRAW: a conditional DRAW that attends over the caption's words.

Mansimov, Parisotto, Ba, Salakhutdinov, "Generating Images from Captions with
Attention", ICLR 2016 (arXiv 1511.02793); DRAW: Gregor et al. 2015. Section
numbers in comments (§N) refer to the project's description, `docs/model.md`.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import keras
import numpy as np
from keras import ops

from t2i.config import CONDITIONINGS, LIKELIHOODS, LOOPS, PRECISIONS, PRIORS
from t2i.errors import check_temperature
from t2i.layers import (CaptionAlignment, CaptionEncoder, DrawReadAttention, DrawWriteAttention,
                        LearnedPrior, LSTMCell, PosteriorHead)
from t2i.layers.alignment import masked_mean
from t2i.layers.null_caption import NullCaption
from t2i.losses import bernoulli_nll, discretized_logistic_nll, gaussian_kl, gaussian_log_ratio
from t2i.replicas import logs_for_reduction, replica_slice, scale_for_replicas
from t2i.seed_noise import seed_noise

# log s of the "logistic" likelihood at initialisation: s = e^-2 ~ 0.14 of the [0, 1] range.
LOGISTIC_LOG_SCALE_INIT = -2.0


class DrawState(NamedTuple):
    """The generator's state between drawing steps (`AlignDRAW.draw_step`).

    h, c: LSTM_gen's state [B, units]; canvas: c_t as logits [B, H, W, C];
    mu, log_sigma: the prior of z_{t+1} [B, latent].
    """

    h: object
    c: object
    canvas: object
    mu: object
    log_sigma: object


@keras.saving.register_keras_serializable(package="t2i")
class AlignDRAW(keras.Model):
    """alignDRAW, trained by maximising the variational lower bound.

    One training example is a caption and an image. At every step t = 1..T
    (docs/model.md §7):

        x_hat = x - sigmoid(c_{t-1})
        r_t   = read(x, x_hat; h^gen_{t-1})
        s_t   = align(h^lang, h^gen_{t-1})          # or the mean word state
        h^enc_t = LSTM_enc(h^enc_{t-1}, [r_t, h^gen_{t-1}])
        z_t ~ Q(Z_t | h^enc_t);   KL_t against the prior carried from t-1
        h^gen_t = LSTM_gen(h^gen_{t-1}, [z_t, s_t])
        prior for t+1 = tanh(W_p h^gen_t + b_p)    # N(0, I) at t = 1
        c_t = c_{t-1} + write(h^gen_t)

    and the loss is the negative lower bound in nats per image,
    sum_pixels BCE(sigmoid(c_T), x) + sum_t KL_t, averaged over the batch.
    Generation drops the inference network and samples z_t from the prior.

    Training uses Keras' own `train_step`/`test_step` on every backend: this
    class supplies `compute_loss` (the negative bound) and `compute_metrics`
    (its reconstruction and KL parts), so `fit` and `evaluate` report `loss`,
    `reconstruction_loss` and `kl_loss`, all in nats per image, without
    backend-specific gradient code.

    Args:
        vocab_size: size of the caption id space (0 = padding, 1 = OOV).
        image_height, image_width, channels: canvas geometry.
        num_steps: T.
        read_size, write_size: N of the read and write grids.
        encoder_units, decoder_units: inference and generator LSTM units.
        latent_dim: size of z_t.
        caption_units: caption BiLSTM units per direction.
        caption_embedding_dim: 0 for one-hot words into the BiLSTM (paper).
        align_units: alignment MLP width.
        conditioning: "align" (alignDRAW) or "mean" (noalignDRAW: the masked
            mean of the word states, the same vector at every step).
        caption_encoder: "bidirectional" (the paper's BiLSTM) or "forward"
            (one forward LSTM of 2 * caption_units; see `CaptionEncoder`).
        loop: how the T steps are run: "unrolled" (a Python loop: T copies
            of the step in the graph) or "while" (`keras.ops.fori_loop`: one
            copy, traced and compiled T times faster; same values). `trace`
            always unrolls.
        loop_unroll: with loop "while", steps unrolled inside one loop
            iteration (the largest divisor of T up to this): a trade between
            tracing time and the loop's per-iteration overhead.
        canvas_init: initial value of the learned canvas c_0 (logits).
        init_stddev: N(0, s^2) weight initialisation.
        caption_dropout: probability that training replaces an example's
            caption by the learned null caption (`NullCaption`; 0, the paper:
            never). Needed for guided sampling (`generate(guidance=...)`).
        prior_reconstruction: weight w of the hybrid objective's second
            term (Sohn et al. 2015): in training, the images' Bernoulli NLL
            under a canvas drawn from the prior for the same caption is added,
            w times, to the negative bound (`ModelConfig.prior_reconstruction`).
        prior: "learned" (the paper: `LearnedPrior` from h^gen_{t-1}) or
            "standard" (N(0, I) at every step; the learned prior's weights
            are still built, unused, so weights load either way).
        likelihood: the pixel likelihood p(x | c_T) (`pixel_nll`):
            "bernoulli" (the paper) or "logistic" (a discretised logistic
            with a learned scale per channel, `log_pixel_scale`).
        precision: "float32", or "mixed_bfloat16": the drawing LSTMs'
            matrix products with operands rounded to bfloat16, summed in
            float32, all else
            float32 (`LSTMCell`'s matmul_dtype; docs/model.md §7).
        seed: seed of the training noise.

    Call arguments:
        inputs: dict with "tokens" (int [B, L]) and
            - "images" (float [B, H, W, C] in [0, 1]): the inference path
              (training, evaluation); optional "noise" [B, T, latent], else
              drawn from the model's seed generator; or
            - no "images" but "noise" [B, T, latent]: generation from the
              prior (see `sample`), which is what `predict` runs.
            Instead of "tokens", "words" [B, L, 2u] and "word_mask" [B, L]
            give precomputed word states (see `caption_states`). Optional
            "drop_caption" bool [B] replaces those captions by the null
            caption; without it, training with `caption_dropout` draws it
            (and returns it as "caption_dropped"). Training with
            `prior_reconstruction` also returns "prior_reconstruction" [B],
            drawn with optional "prior_noise" [B, T, latent] (else from the
            model's seed generator).
        trace: also return per-step canvases and generator states.

    Returns (inference path):
        dict with "logits" [B, H, W, C] (c_T), "reconstruction" [B],
        "kl" [B, T] (closed form), "log_ratio" [B, T] (log q(z_t) - log p(z_t)
        at the drawn z_t, for importance weighting), "alignments" [B, T, L]; with `trace`, "canvases"
        [B, T, H, W, C] (logits c_1..c_T) and "decoder_states" [B, T, units].

    Example:

        model = AlignDRAW.from_config_dataclass(t2i.config.tiny())
        model.compile(optimizer=keras.optimizers.RMSprop(1e-3))
        model.fit(dataset)  # elements {"images": ..., "tokens": ...}
        out = model.generate(tokens, seeds=[0, 1])
    """

    def __init__(self, vocab_size: int, image_height: int = 60, image_width: int = 60,
                 channels: int = 1, num_steps: int = 32, read_size: int = 8, write_size: int = 8,
                 encoder_units: int = 300, decoder_units: int = 300, latent_dim: int = 150,
                 caption_units: int = 128, caption_embedding_dim: int = 0, align_units: int = 512,
                 conditioning: str = "align", canvas_init: float = -10.0, init_stddev: float = 0.01,
                 caption_encoder: str = "bidirectional", loop: str = "unrolled", loop_unroll: int = 1,
                 caption_dropout: float = 0.0, precision: str = "float32",
                 prior_reconstruction: float = 0.0, prior: str = "learned", likelihood: str = "bernoulli",
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {CONDITIONINGS}, got {conditioning!r}")
        if loop not in LOOPS:
            raise ValueError(f"loop must be one of {LOOPS}, got {loop!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        if loop_unroll < 1:
            raise ValueError(f"loop_unroll must be >= 1, got {loop_unroll}")
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        if not 0.0 <= caption_dropout < 1.0:
            raise ValueError(f"caption_dropout must be in [0, 1), got {caption_dropout}")
        if not (prior_reconstruction >= 0.0 and np.isfinite(prior_reconstruction)):
            raise ValueError(f"prior_reconstruction must be a finite number >= 0, got {prior_reconstruction}")
        self.vocab_size = vocab_size
        self.image_height = image_height
        self.image_width = image_width
        self.channels = channels
        self.num_steps = num_steps
        self.read_size = read_size
        self.write_size = write_size
        self.encoder_units = encoder_units
        self.decoder_units = decoder_units
        self.latent_dim = latent_dim
        self.caption_units = caption_units
        self.caption_embedding_dim = caption_embedding_dim
        self.align_units = align_units
        self.conditioning = conditioning
        self.canvas_init = canvas_init
        self.init_stddev = init_stddev
        self.caption_direction = caption_encoder
        self.loop = loop
        self.loop_unroll = loop_unroll
        self.caption_dropout = float(caption_dropout)
        self.prior_reconstruction = float(prior_reconstruction)
        self.prior_kind = prior
        self.likelihood = likelihood
        self.precision = precision
        self.seed = seed

        # === Layers ===
        geometry = dict(image_height=image_height, image_width=image_width, channels=channels,
                        init_stddev=init_stddev)
        self.caption_encoder = CaptionEncoder(vocab_size, caption_units, caption_embedding_dim,
                                              init_stddev, direction=caption_encoder,
                                              name="caption_encoder")
        self.alignment = CaptionAlignment(align_units, init_stddev, name="alignment")
        self.read_attention = DrawReadAttention(glimpse_size=read_size, name="read_attention",
                                                **geometry)
        self.write_attention = DrawWriteAttention(glimpse_size=write_size, name="write_attention",
                                                  **geometry)
        matmul_dtype = "bfloat16" if precision == "mixed_bfloat16" else "float32"
        self.encoder_cell = LSTMCell(encoder_units, init_stddev, matmul_dtype, name="encoder_cell")
        self.decoder_cell = LSTMCell(decoder_units, init_stddev, matmul_dtype, name="decoder_cell")
        self.posterior = PosteriorHead(latent_dim, init_stddev, name="posterior")
        self.prior = LearnedPrior(latent_dim, init_stddev, name="prior")
        self.prior.trainable = prior == "learned"  # kept for loading; "standard" never reads it
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed")
        # Only models trained with caption dropout have (and save) a null caption.
        self.null_caption = (NullCaption(2 * caption_units, name="null_caption")
                             if self.caption_dropout > 0 else None)

        # === Metrics (the loss itself is tracked by Keras) ===
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

        # All shapes follow from the constructor arguments, so build now:
        # the model is complete (and loadable) before it sees data.
        self.build()

    # === Construction ===
    @classmethod
    def from_config_dataclass(cls, experiment, seed: int | None = None) -> "AlignDRAW":
        """Builds the model described by an `ExperimentConfig`."""
        fields = dataclasses.asdict(experiment.model)
        return cls(vocab_size=experiment.text.vocab_size,
                   seed=experiment.train.seed if seed is None else seed, **fields)

    def build(self, input_shape=None):
        if self.built:
            return
        words_dim = 2 * self.caption_units
        image = (None, self.image_height, self.image_width, self.channels)
        self.caption_encoder.build((None, None))
        self.alignment.build((None, None, words_dim), (None, self.decoder_units))
        self.read_attention.build(image, image, (None, self.decoder_units))
        self.write_attention.build((None, self.decoder_units))
        read_dim = 2 * self.channels * self.read_size ** 2
        self.encoder_cell.build((None, read_dim + self.decoder_units))
        self.decoder_cell.build((None, self.latent_dim + words_dim))
        self.posterior.build((None, self.encoder_units))
        self.prior.build((None, self.decoder_units))
        if self.null_caption is not None:
            self.null_caption.build()
        # Learned initial states (docs/model.md §7); cell states start at 0.
        self.initial_encoder_state = self.add_weight(
            name="initial_encoder_state", shape=(self.encoder_units,), initializer="zeros")
        self.initial_decoder_state = self.add_weight(
            name="initial_decoder_state", shape=(self.decoder_units,), initializer="zeros")
        self.initial_canvas = self.add_weight(
            name="initial_canvas", shape=(self.image_height, self.image_width, self.channels),
            initializer=keras.initializers.Constant(self.canvas_init))
        if self.likelihood == "logistic":  # only these models have (and save) a pixel scale
            self.log_pixel_scale = self.add_weight(
                name="log_pixel_scale", shape=(self.channels,),
                initializer=keras.initializers.Constant(LOGISTIC_LOG_SCALE_INIT))
        self.built = True

    # === Forward passes ===
    def _encode_caption(self, caption, drop=None):
        """caption: int tokens [B, L], or precomputed (word states [B, L, 2u], mask [B, L]).

        Returns (context_of, L): context_of(h^gen_{t-1}) gives (s_t, alignment weights).
        """
        if isinstance(caption, (tuple, list)):
            words, mask = caption
        else:
            words, mask = self.caption_encoder(caption)  # [B, L, 2u], [B, L]
        if drop is not None:
            if self.null_caption is None:
                raise ValueError("drop_caption needs a model built with caption_dropout > 0")
            words, mask = self.null_caption(words, mask, drop)
        length = ops.shape(words)[1]
        if self.conditioning == "align":
            projected = self.alignment.project_words(words)  # U h^lang, once per caption
            return (lambda h: self.alignment(words, h, mask, projected_words=projected)), length
        context, weights = masked_mean(words, mask)
        return (lambda h: (context, weights)), length

    def _initial(self, batch, units_weight, units):
        return (ops.broadcast_to(units_weight, (batch, units)),
                ops.zeros((batch, units), dtype=self.compute_dtype))

    def _step(self, context_of, state, eps, images, last_step):
        """One drawing step: state (h_enc, c_enc, h_dec, c_dec, canvas, mu_p, log_sigma_p) at
        t-1 -> state at t, and (kl_t, log_ratio_t, alignment weights) (kl and log ratio None
        without images). `last_step`: skip the prior for t + 1 (Python unrolling only)."""
        h_enc, c_enc, h_dec, c_dec, canvas, mu_p, log_sigma_p = state
        context, weights = context_of(h_dec)  # s_t from h^gen_{t-1}
        kl = log_ratio = None
        if images is not None:
            h_enc, c_enc, mu_q, log_sigma_q = self._infer(images, canvas, h_dec, h_enc, c_enc)
            z = mu_q + ops.exp(log_sigma_q) * eps
            kl = gaussian_kl(mu_q, log_sigma_q, mu_p, log_sigma_p)
            log_ratio = gaussian_log_ratio(eps, log_sigma_q, z, mu_p, log_sigma_p)
        else:
            z = mu_p + ops.exp(log_sigma_p) * eps
        h_dec, c_dec, canvas, mu_p, log_sigma_p = self._decode(
            context, (h_dec, c_dec, canvas, mu_p, log_sigma_p), z, last_step)
        return (h_enc, c_enc, h_dec, c_dec, canvas, mu_p, log_sigma_p), (kl, log_ratio, weights)

    def _infer(self, images, canvas, h_dec, h_enc, c_enc):
        """Steps 1-4 of §7: read the image and its error, then Q(Z_t | h^enc_t) as
        (h_enc, c_enc, mu_q, log_sigma_q) at t."""
        error = images - ops.sigmoid(canvas)
        glimpse = self.read_attention(images, error, h_dec)
        h_enc, c_enc = self.encoder_cell(ops.concatenate([glimpse, h_dec], -1), h_enc, c_enc)
        mu_q, log_sigma_q = self.posterior(h_enc)
        return h_enc, c_enc, mu_q, log_sigma_q

    def _decode(self, context, generator_state, z, last_step=False):
        """Steps 6-8 of §7 given s_t and z_t: (h_dec, c_dec, canvas, mu_p, log_sigma_p) at t."""
        h_dec, c_dec, canvas, mu_p, log_sigma_p = generator_state
        h_dec, c_dec = self.decoder_cell(ops.concatenate([z, context], -1), h_dec, c_dec)
        if not last_step and self.prior_kind == "learned":  # "standard": N(0, I) stays
            mu_p, log_sigma_p = self.prior(h_dec)
        canvas = canvas + self.write_attention(h_dec)
        return h_dec, c_dec, canvas, mu_p, log_sigma_p

    # === The generator, one step at a time (for samplers: t2i.samplers) ===
    def caption_context(self, tokens):
        """Encodes captions once for `draw_step`: tokens int [B, L], or (word states, mask).

        Returns an opaque value to pass to `draw_step` (the word states and,
        for alignDRAW, their projection U h^lang, computed once per caption).
        """
        context_of, _ = self._encode_caption(tokens if isinstance(tokens, (tuple, list))
                                             else ops.convert_to_tensor(tokens))
        return context_of

    def initial_state(self, batch: int) -> "DrawState":
        """The generator's state before step 1: learned h^gen_0, c_0 = 0, the learned
        canvas c_0 and the N(0, I) prior of z_1."""
        h_dec, c_dec = self._initial(batch, self.initial_decoder_state, self.decoder_units)
        canvas = ops.broadcast_to(self.initial_canvas,
                                  (batch, self.image_height, self.image_width, self.channels))
        mu_p = ops.zeros((batch, self.latent_dim), dtype=self.compute_dtype)
        return DrawState(h_dec, c_dec, canvas, mu_p, ops.zeros_like(mu_p))

    def draw_step(self, context, state: "DrawState", z):
        """One generation step (§7 steps 3, 6, 7, 8) with a latent z_t chosen by the caller.

        z_t = state.mu + temperature * exp(state.log_sigma) * eps_t is the
        model's own sampler (`AlignDRAW.generate`); a sampler may choose
        another. Returns (state at t, alignment weights over the words [B, L]).
        """
        s_t, weights = context(state.h)
        return DrawState(*self._decode(s_t, tuple(state), z)), weights

    def posterior_latents(self, images, tokens, noise) -> np.ndarray:
        """The latents the inference network gives an image under a caption: float32 [B, T, latent].

        z_t = mu_q + sigma_q * noise_t with Q(Z_t | h^enc_t) along the
        inference path (§7), the draw the bound of `lower_bound` uses for the
        same noise. Feeding them to `draw_step` under the same caption
        redraws the model's reconstruction c_T; under another caption it
        draws that caption with this image's latents (`t2i.samplers`).
        """
        images = ops.convert_to_tensor(np.asarray(images, np.float32))
        noise = np.asarray(noise, np.float32)
        context = self.caption_context(np.asarray(tokens))
        state = self.initial_state(len(noise))
        h_enc, c_enc = self._initial(len(noise), self.initial_encoder_state, self.encoder_units)
        latents = []
        for t in range(self.num_steps):
            h_enc, c_enc, mu_q, log_sigma_q = self._infer(images, state.canvas, state.h, h_enc, c_enc)
            z = mu_q + ops.exp(log_sigma_q) * noise[:, t]
            latents.append(ops.convert_to_numpy(z))
            state, _ = self.draw_step(context, state, z)
        return np.stack(latents, axis=1)

    def lower_bound(self, images, tokens, noise, batch_size: int = 250) -> np.ndarray:
        """Per-example lower bound on log p(x | y), nats: float64 [B], closed-form KL.

        images float [B, H, W, C] in [0, 1]; tokens int [B, L]; noise
        [B, T, latent], the posterior's reparametrisation noise: scoring one
        image under several captions with the same noise makes their
        difference mostly the captions'. Runs the compiled inference path
        (`predict`) in batches of `batch_size`.
        """
        out = self.predict({"images": np.asarray(images, np.float32), "tokens": np.asarray(tokens),
                            "noise": np.asarray(noise, np.float32)}, batch_size=batch_size, verbose=0)
        return -(np.asarray(out["reconstruction"], np.float64)
                 + np.asarray(out["kl"], np.float64).sum(-1))

    def _steps_per_iteration(self) -> int:
        """The largest divisor of T that is at most `loop_unroll`."""
        return max(k for k in range(1, min(self.loop_unroll, self.num_steps) + 1)
                   if self.num_steps % k == 0)

    def _unroll(self, caption, noise, images=None, trace=False, drop=None):
        """Runs T steps: the inference path if `images` is given, else the prior.

        With `loop` "while" (and no `trace`) the step is one `keras.ops.fori_loop`
        body; "unrolled" puts T copies of it in the graph. Both compute the
        same values (tested); the loop traces and compiles T times faster.
        """
        batch = ops.shape(noise)[0]
        context_of, length = self._encode_caption(caption, drop)
        h_enc, c_enc = self._initial(batch, self.initial_encoder_state, self.encoder_units)
        h_dec, c_dec = self._initial(batch, self.initial_decoder_state, self.decoder_units)
        canvas = ops.broadcast_to(self.initial_canvas,
                                  (batch, self.image_height, self.image_width, self.channels))
        mu_p = ops.zeros((batch, self.latent_dim), dtype=self.compute_dtype)  # N(0, I) at t = 1
        log_sigma_p = ops.zeros_like(mu_p)
        state = (h_enc, c_enc, h_dec, c_dec, canvas, mu_p, log_sigma_p)
        T = self.num_steps
        canvases, states = [], []
        if self.loop == "while" and not trace:
            noise_steps = ops.transpose(noise, (1, 0, 2))  # [T, B, latent]
            steps = ops.arange(T)
            per_step = (ops.zeros((batch, T), dtype=self.compute_dtype),) * (2 if images is not None else 0)
            per_step += (ops.zeros((batch, T, length), dtype=self.compute_dtype),)

            k = self._steps_per_iteration()

            def body(i, carry):
                state, outputs = carry
                for j in range(k):  # k steps unrolled inside each iteration
                    t = i * k + j
                    state, results = self._step(context_of, state, noise_steps[t], images,
                                                last_step=False)
                    at_t = ops.equal(steps, t)
                    results = [r for r in results if r is not None]
                    outputs = tuple(
                        ops.where(ops.reshape(at_t, (1, T) + (1,) * (len(acc.shape) - 2)),
                                  ops.expand_dims(r, 1), acc)
                        for r, acc in zip(results, outputs))
                return state, outputs

            state, outputs = ops.fori_loop(0, T // k, body, (state, per_step))
            if images is not None:
                kls, log_ratios, alignments = outputs
            else:
                (alignments,) = outputs
        else:
            kl_list, ratio_list, weight_list = [], [], []
            for t in range(T):
                state, (kl, log_ratio, weights) = self._step(context_of, state, noise[:, t], images,
                                                             last_step=t + 1 == T)
                kl_list.append(kl)
                ratio_list.append(log_ratio)
                weight_list.append(weights)
                if trace:
                    canvases.append(state[4])
                    states.append(state[2])
            alignments = ops.stack(weight_list, axis=1)
            if images is not None:
                kls, log_ratios = ops.stack(kl_list, axis=1), ops.stack(ratio_list, axis=1)
        canvas = state[4]
        out = {"logits": canvas, "alignments": alignments}
        if images is not None:
            out["kl"] = kls
            out["log_ratio"] = log_ratios
            out["reconstruction"] = self.pixel_nll(canvas, images)
        if trace:
            out["canvases"] = ops.stack(canvases, axis=1)
            out["decoder_states"] = ops.stack(states, axis=1)
        return out

    def pixel_nll(self, canvas, images):
        """-log p(x | c_T) per example [B]: the model's pixel likelihood (docs/model.md §9).

        "bernoulli" (the paper): Bernoulli(x; sigmoid(c_T)) on intensities in
        [0, 1]. "logistic": each pixel's 8-bit value under a discretised
        logistic of mean sigmoid(c_T) and a learned scale per channel.
        """
        if self.likelihood == "logistic":
            return discretized_logistic_nll(ops.sigmoid(canvas), self.log_pixel_scale, images)
        return bernoulli_nll(canvas, images)

    def _noise(self, batch):
        # Under tf.distribute every replica draws the global batch's noise and
        # keeps its own rows: example i gets the same noise on any replica count.
        return replica_slice(
            lambda n: keras.random.normal((n, self.num_steps, self.latent_dim), seed=self.seed_generator),
            batch)

    def call(self, inputs, training=False, trace=False):
        if "words" in inputs:  # precomputed word states, e.g. a mean caption for retrieval
            caption = (ops.convert_to_tensor(inputs["words"], dtype=self.compute_dtype),
                       ops.cast(inputs["word_mask"], "bool"))
        else:
            caption = inputs["tokens"]
        noise = inputs.get("noise")
        if "images" not in inputs:
            if noise is None:
                raise ValueError("generation needs explicit noise: pass inputs['noise'] [B, T, latent]")
            return self.sample(caption, noise, trace=trace)
        images = ops.convert_to_tensor(inputs["images"], dtype=self.compute_dtype)
        if noise is None:
            noise = self._noise(ops.shape(images)[0])
        drop, drawn = inputs.get("drop_caption"), False
        if drop is None and training and self.caption_dropout > 0:
            drop, drawn = replica_slice(lambda n: keras.random.uniform(
                (n,), seed=self.seed_generator) < self.caption_dropout, ops.shape(images)[0]), True
        out = self._unroll(caption, noise, images=images, trace=trace, drop=drop)
        if drawn:
            out["caption_dropped"] = drop
        if training and self.prior_reconstruction > 0:
            # The hybrid objective's second term: the same caption drawn from the prior.
            prior_noise = inputs.get("prior_noise")
            if prior_noise is None:
                prior_noise = self._noise(ops.shape(images)[0])
            drawn_from_prior = self._unroll(caption, prior_noise, images=None, drop=drop)
            out["prior_reconstruction"] = self.pixel_nll(drawn_from_prior["logits"], images)
        return out

    def caption_states(self, tokens):
        """The caption encoder's word states and mask: ([B, L, 2u], bool [B, L])."""
        return self.caption_encoder(tokens)

    def sample(self, tokens, noise, trace=False):
        """Draws from the prior given explicit noise [B, T, latent] (tokens: ids or (words, mask)).

        Returns a dict with "images" (sigmoid(c_T), the Bernoulli mean, as in
        the paper's figures) [B, H, W, C] and "alignments" [B, T, L]; with
        `trace`, "canvases" sigmoid(c_t) [B, T, H, W, C].
        """
        out = self._unroll(tokens, noise, images=None, trace=trace)
        result = {"images": ops.sigmoid(out["logits"]), "alignments": out["alignments"]}
        if trace:
            result["canvases"] = ops.sigmoid(out["canvases"])
        return result

    # === Generation ===
    def noise_for_seeds(self, seeds, stream: int = 0) -> np.ndarray:
        """Per-example noise [B, T, latent]: example i uses only seeds[i]
        (`t2i.seed_noise.seed_noise`, which the exported serving graph reproduces).

        `stream` (default 0) picks another independent draw for the same seeds
        (samplers that need several per image: `t2i.samplers`).
        """
        return seed_noise(seeds, (self.num_steps, self.latent_dim), stream)

    def generate(self, tokens, seeds, trace: bool = False, batch_size: int = 100,
                 temperature: float = 1.0, guidance: float = 1.0) -> dict:
        """Generates one image per caption.

        Args:
            tokens: int [B, L] word ids (see `t2i.text.CaptionTokenizer`).
            seeds: B integers; the same seed and caption give the same image.
            trace: also return the canvas after every step.
            batch_size: generation batch size.
            temperature: scales the prior's standard deviation,
                z_t = mu_t + temperature * sigma_t * eps_t. 1 samples the
                model's prior (the paper's protocol); 0 follows the prior
                means, one image per caption; values between trade diversity
                for fidelity, as in reduced-temperature sampling (Kingma and
                Dhariwal, Glow, 2018).
            guidance: classifier-free guidance scale g (`t2i.guidance`; needs
                a model trained with caption_dropout). 1 (the default) is the
                conditional model alone, as without guidance.

        Returns:
            dict of NumPy arrays: "images" float [B, H, W, C] in [0, 1],
            "alignments" [B, T, L] and, with `trace`, "canvases"
            [B, T, H, W, C].
        """
        tokens = np.asarray(tokens)
        seeds = np.asarray(seeds).reshape(-1)
        if tokens.ndim != 2 or len(seeds) != len(tokens):
            raise ValueError(f"need tokens [B, L] and B seeds, got {tokens.shape} and {len(seeds)} seeds")
        check_temperature(temperature)
        noise = self.noise_for_seeds(seeds) * np.float32(temperature)
        if guidance != 1.0:
            from t2i.guidance import guided_generate

            return guided_generate(self, tokens, noise, guidance, trace=trace, batch_size=batch_size)
        return self.draw(tokens, noise, trace=trace, batch_size=batch_size)

    def draw(self, tokens, noise, trace: bool = False, batch_size: int = 100) -> dict:
        """`sample` for NumPy inputs of any size, in batches: tokens int [B, L], noise
        [B, T, latent] (already scaled by a temperature); returns NumPy arrays as `generate`."""
        if not trace:
            out = self.predict({"tokens": tokens, "noise": noise}, batch_size=batch_size, verbose=0)
            return {k: np.asarray(v) for k, v in out.items()}
        parts = [self.sample(tokens[i:i + batch_size], noise[i:i + batch_size], trace=True)
                 for i in range(0, len(tokens), batch_size)]
        return {k: np.concatenate([ops.convert_to_numpy(p[k]) for p in parts]) for k in parts[0]}

    # === Losses and metrics (used by Keras' train_step and test_step) ===
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Negative variational lower bound, nats per image (docs/model.md §9)."""
        del x, y, sample_weight, training
        loss = ops.mean(y_pred["reconstruction"] + ops.sum(y_pred["kl"], axis=-1))
        if "prior_reconstruction" in y_pred:  # training with the hybrid objective (`loss` only;
            # reconstruction_loss and kl_loss stay the bound's parts, validation the bound alone)
            loss = loss + self.prior_reconstruction * ops.mean(y_pred["prior_reconstruction"])
        # Keras sums gradients over tf.distribute replicas: each replica's mean
        # is divided by their number, so the update is the global-batch mean.
        return scale_for_replicas(loss)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        self.reconstruction_tracker.update_state(y_pred["reconstruction"])
        self.kl_tracker.update_state(ops.sum(y_pred["kl"], axis=-1))

        return logs_for_reduction(self.get_metrics_result())

    # Keras has no public way to build a model for a tf.distribute strategy without handing
    # it a data batch: `fit` under a strategy calls the TensorFlow trainer's private
    # `_maybe_symbolic_build`, which first reduces a batch of per-replica inputs with
    # `strategy.reduce`, and MultiWorkerMirroredStrategy cannot reduce a dict
    # (keras-team/keras#20329, open). This model is built in `__init__`, so only the
    # optimizer is left to build, which the public `optimizer.build` does in the scope.
    # tests/t2i/test_model.py::test_the_private_keras_hook_this_model_overrides fails when
    # Keras renames the hook or stops reducing the batch there (then delete this method).
    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = getattr(self, "_distribute_strategy", None)
        if strategy is not None and self.built:
            with strategy.scope():
                if not self.optimizer.built:
                    self.optimizer.build(self.trainable_variables)
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    # === Saving ===
    _NOISE_STATE_KEY = "noise_seed_state"

    def save_own_variables(self, store):
        super().save_own_variables(store)
        # Keras does not save SeedGenerator states; keep the training-noise
        # stream's position so that a resumed run continues it exactly.
        store[self._NOISE_STATE_KEY] = ops.convert_to_numpy(self.seed_generator.state.value)

    def load_own_variables(self, store):
        keys = list(store.keys())
        if self._NOISE_STATE_KEY in keys:
            self.seed_generator.state.assign(store[self._NOISE_STATE_KEY])
            store = {k: store[k] for k in keys if k != self._NOISE_STATE_KEY}
        super().load_own_variables(store)

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size, image_height=self.image_height, image_width=self.image_width,
            channels=self.channels, num_steps=self.num_steps, read_size=self.read_size,
            write_size=self.write_size, encoder_units=self.encoder_units,
            decoder_units=self.decoder_units, latent_dim=self.latent_dim,
            caption_units=self.caption_units, caption_embedding_dim=self.caption_embedding_dim,
            align_units=self.align_units, conditioning=self.conditioning,
            canvas_init=self.canvas_init, init_stddev=self.init_stddev,
            caption_encoder=self.caption_direction, loop=self.loop,
            loop_unroll=self.loop_unroll, caption_dropout=self.caption_dropout,
            prior_reconstruction=self.prior_reconstruction, prior=self.prior_kind,
            likelihood=self.likelihood,
            precision=self.precision, seed=self.seed)
        return config
