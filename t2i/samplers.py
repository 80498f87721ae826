"""Samplers: how a trained alignDRAW chooses its latents when it draws (docs/model.md §8).

The paper samples z_t from the learned prior at every step. The samplers here
are departures for novel compositions, selected by name (`t2i generate
--sampler`, `t2i evaluate --sampler`, `generate(..., sampler=...)`); each is
built on the model's public step API (`AlignDRAW.caption_context`,
`initial_state`, `draw_step`, `lower_bound`) and uses only the model's own
quantities, never a classifier:

    plain            z_t = mu_t + tau sigma_t eps_t                   (the paper)
    guided:g=G       classifier-free guidance against the learned null caption
                     (`t2i.guidance`; needs a model trained with caption dropout)
    contrastive:g=G  c_T = c^y_T + (G - 1) (c^y_T - c^-_T), where c^- is the mean
                     canvas (negatives=nearest: the closest one) of the captions
                     that differ from y in one interchangeable word (a digit for
                     MNIST; for scenes the object's colour or noun, each swapped
                     only with its own kind): the same layout, another identity. Every stream is
                     driven by y's latents, so the difference is the caption's.
                     With project=1 the noise of each step also loses its one
                     component along the direction in which y's prior mean differs
                     from the negatives' (the identity direction).
    rejection:k=K    plain samples drawn one after another (candidate j from the seed's
                     noise stream j) until the model itself reads every digit the
                     caption names as that digit (`DigitReader`), at most K; if none
                     passes, the candidate read best. Captions it cannot read (not in
                     the dataset's templates) get plain's sample.
    best_of_k:k=K    K plain samples (the first is plain's sample for the seed);
                     keeps the one whose caption the model itself prefers:
                     score(x) = B(x | y) - logsumexp_{y'' in {y} + negatives} B(x | y''),
                     B the lower bound with one shared noise draw per image.

With G = 1 contrastive and guided sampling are plain sampling, and so are
best-of-K and rejection with K = 1 (tested). Every sampler gives example i an image that
depends only on its caption and seed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from t2i.data import catalog
from t2i.errors import T2IError

SAMPLER_NAMES = ("plain", "guided", "contrastive", "best_of_k", "rejection")
NEGATIVE_MODES = ("mean", "nearest")
# Noise streams of a seed (`AlignDRAW.noise_for_seeds(seeds, stream)`): 0 is the sample
# itself; best-of-K's candidate j uses stream j and scores it with stream SCORE_STREAM + j.
SCORE_STREAM = 1000


@dataclasses.dataclass(frozen=True)
class Sampler:
    """A named sampler and its parameters; `Sampler.parse("contrastive:g=2")`.

    Attributes:
        name: one of SAMPLER_NAMES.
        g: guidance scale (guided, contrastive); 1 is plain sampling.
        k: candidates per image (best_of_k; at most, rejection).
        negatives: "mean" or "nearest" (contrastive).
        project: contrastive: also remove from each step's noise its component along
            the caption's identity direction (module docstring); 0 or 1.
    """

    name: str = "plain"
    g: float = 1.0
    k: int = 1
    negatives: str = "mean"
    project: int = 0

    def __post_init__(self):
        if self.name not in SAMPLER_NAMES:
            raise T2IError(f"unknown sampler {self.name!r}; expected one of {', '.join(SAMPLER_NAMES)}")
        if not np.isfinite(self.g) or self.g < 0:
            raise T2IError(f"sampler {self.name}: g must be a finite number >= 0, got {self.g}")
        if int(self.k) != self.k or self.k < 1:
            raise T2IError(f"sampler {self.name}: k must be an integer >= 1, got {self.k}")
        if self.project not in (0, 1):
            raise T2IError(f"sampler {self.name}: project must be 0 or 1, got {self.project}")
        if self.negatives not in NEGATIVE_MODES:
            raise T2IError(f"sampler {self.name}: negatives must be one of {', '.join(NEGATIVE_MODES)}, "
                           f"got {self.negatives!r}")

    @classmethod
    def parse(cls, text) -> "Sampler":
        """"plain", "guided:g=2", "contrastive:g=2,negatives=nearest", "best_of_k:k=8",
        "rejection:k=16"."""
        if isinstance(text, Sampler):
            return text
        text = str(text).strip()
        name, _, params = text.partition(":")
        fields = {"g": float, "k": int, "negatives": str, "project": int}
        values = {}
        for item in filter(None, (p.strip() for p in params.split(","))):
            key, eq, value = item.partition("=")
            if not eq or key.strip() not in fields:
                raise T2IError(f"cannot parse sampler {text!r}: parameters are key=value with keys "
                               f"{', '.join(fields)} (e.g. 'contrastive:g=2', 'best_of_k:k=8')")
            try:
                values[key.strip()] = fields[key.strip()](value.strip())
            except ValueError:
                raise T2IError(f"cannot parse sampler {text!r}: {key.strip()}={value.strip()!r} "
                               f"is not a valid {fields[key.strip()].__name__}") from None
        return cls(name.strip(), **values)

    def __str__(self) -> str:
        if self.name in ("best_of_k", "rejection"):
            return f"{self.name}:k={self.k}"
        if self.name == "contrastive":
            return (f"contrastive:g={self.g:g}" + (",negatives=nearest" if self.negatives == "nearest" else "")
                    + (",project=1" if self.project else ""))
        if self.name == "guided":
            return f"guided:g={self.g:g}"
        return "plain"

    @property
    def is_plain(self) -> bool:
        """Draws exactly what plain sampling draws."""
        return self.name == "plain" or (self.name in ("guided", "contrastive") and self.g == 1.0
                                         and not self.project) or (self.name in ("best_of_k", "rejection") and self.k == 1)


def resolve(sampler=None, guidance: float = 1.0, default="plain") -> Sampler:
    """The sampler a command asked for: `sampler`, or `guided:g=G` from the older
    `--guidance G` flag (the two cannot be combined), or, when it names neither, `default`
    (a run's `sample.sampler`)."""
    if sampler is None:
        sampler = "plain" if guidance != 1.0 else default
    sampler = Sampler.parse(sampler)
    if guidance != 1.0:
        if sampler.name != "plain":
            raise T2IError(f"--guidance {guidance:g} and --sampler {sampler} cannot be combined: "
                           f"use --sampler guided:g={guidance:g}")
        sampler = Sampler("guided", g=float(guidance))
    return sampler


def interchangeable_for(config) -> "list[SwapGroup] | None":
    """The words same-layout negatives swap for a run's dataset, as `SwapGroup`s of token
    ids: the ten digits of MNIST with captions, the colours and nouns of scenes; None
    where none are defined (COCO)."""
    groups = catalog.dataset_of(config).load("swap_groups")
    if not groups:
        return None
    return [SwapGroup(interchangeable_ids(config.text, g.words),
                      interchangeable_ids(config.text, g.before) if g.before else None) for g in groups]


def reader_for(config) -> "DigitReader | None":
    """The reader of the digits a caption names for a run's dataset: MNIST with captions;
    None where none is defined (COCO)."""
    reader = catalog.dataset_of(config).load("reader")
    return reader(config.text) if reader else None


def generate(model, config, tokens, seeds, sampler="plain", *, temperature: float = 1.0,
             trace: bool = False, batch_size: int = 100) -> dict:
    """`sample` with the interchangeable words (`interchangeable_for`) and the digit reader
    (`reader_for`) of the run's dataset."""
    sampler = Sampler.parse(sampler)
    if sampler.name == "guided" and not sampler.is_plain:
        from t2i.guidance import check_guidance

        check_guidance(model, sampler.g, "--sampler guided:g")
    return sample(model, tokens, seeds, sampler, temperature=temperature, trace=trace,
                  batch_size=batch_size, interchangeable=interchangeable_for(config),
                  reader=reader_for(config) if sampler.name == "rejection" else None)


def interchangeable_ids(text_config, words) -> np.ndarray:
    """The token ids of `words` (e.g. the ten digits) in a caption vocabulary."""
    vocabulary = list(text_config.vocabulary)
    missing = [w for w in words if w not in vocabulary]
    if missing:
        raise T2IError(f"words {missing} are not in the caption vocabulary")
    return np.array([2 + vocabulary.index(w) for w in words], np.int64)


@dataclasses.dataclass(frozen=True, eq=False)
class SwapGroup:
    """Token ids that replace each other in same-layout negatives (`catalog.WordGroup`
    in ids); with `before`, only at positions whose next token is one of those ids."""

    ids: np.ndarray
    before: np.ndarray | None = None


def swap_groups(interchangeable) -> list[SwapGroup]:
    """`interchangeable` as a list of `SwapGroup`s: token ids (one group) or groups."""
    if interchangeable is None:
        return []
    items = list(interchangeable)
    if items and all(isinstance(g, SwapGroup) for g in items):
        return items
    return [SwapGroup(np.asarray(items, np.int64))]


def same_layout_negatives(tokens, interchangeable) -> tuple[np.ndarray, np.ndarray]:
    """Every caption that differs from a caption in one interchangeable word.

    tokens int [B, L]; interchangeable: token ids that may replace each other, or
    `SwapGroup`s (a word is then swapped only within the first group holding it,
    and only before one of the group's `before` ids if it has them).
    Returns (negative tokens [N, L], owner int [N]: the row of `tokens` each
    belongs to). A caption without an interchangeable word has none.
    """
    tokens = np.asarray(tokens)
    groups = swap_groups(interchangeable)
    rows, owner = [], []
    for i, row in enumerate(tokens):
        for pos, token in enumerate(row):
            group = next((g for g in groups if token in g.ids), None)
            if group is None or (group.before is not None
                                 and (pos + 1 == len(row) or row[pos + 1] not in group.before)):
                continue
            for other in group.ids[group.ids != token]:
                negative = row.copy()
                negative[pos] = other
                rows.append(negative)
                owner.append(i)
    if not rows:
        return np.zeros((0, tokens.shape[1]), tokens.dtype), np.zeros(0, np.int64)
    return np.stack(rows), np.array(owner, np.int64)


def sample(model, tokens, seeds, sampler="plain", *, temperature: float = 1.0, trace: bool = False,
           batch_size: int = 100, interchangeable=None, reader=None) -> dict:
    """Draws one image per caption with `sampler`: NumPy "images" [B, H, W, C] in [0, 1],
    "alignments" [B, T, L] and, with `trace`, "canvases" [B, T, H, W, C].

    interchangeable: token ids of the words that contrastive and best-of-K
    sampling swap to make same-layout negatives (for MNIST captions the digits:
    `interchangeable_ids(config.text, DIGIT_WORDS)`). reader: the `DigitReader` that
    rejection sampling accepts candidates by.
    """
    sampler = Sampler.parse(sampler)
    tokens = np.asarray(tokens)
    seeds = np.asarray(seeds, np.int64).reshape(-1)
    if sampler.is_plain:
        return model.generate(tokens, seeds, trace=trace, batch_size=batch_size, temperature=temperature)
    if sampler.name == "guided":
        return model.generate(tokens, seeds, trace=trace, batch_size=batch_size, temperature=temperature,
                              guidance=sampler.g)
    if sampler.name == "rejection":
        if reader is None:
            raise T2IError(f"sampler {sampler} needs a reader of the digits a caption names; "
                           "this dataset defines none (MNIST with captions has one)")
        return rejection_sample(model, tokens, seeds, sampler.k, reader, temperature=temperature,
                                trace=trace, batch_size=batch_size)
    if not any(len(g.ids) >= 2 for g in swap_groups(interchangeable)):
        raise T2IError(f"sampler {sampler} needs the caption words it may swap (interchangeable ids); "
                       "this dataset defines none (MNIST with captions: the digits; scenes: colours and nouns)")
    if sampler.name == "contrastive":
        parts = []
        step = max(1, batch_size // 4)  # each caption brings 9 to 18 negative streams
        for i in range(0, len(tokens), step):
            part = slice(i, i + step)
            noise = model.noise_for_seeds(seeds[part]) * np.float32(temperature)
            parts.append(contrastive_sample(model, tokens[part], noise, sampler.g, interchangeable,
                                            negatives=sampler.negatives, trace=trace,
                                            project=bool(sampler.project)))
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return best_of_k(model, tokens, seeds, sampler.k, interchangeable, temperature=temperature,
                     trace=trace, batch_size=batch_size)


def contrastive_sample(model, tokens, noise, g: float, interchangeable, negatives: str = "mean",
                       trace: bool = False, project: bool = False) -> dict:
    """Contrastive guidance with same-layout negatives (module docstring), one batch.

    tokens int [B, L]; noise [B, T, latent] (already scaled by the temperature).
    project: remove from eps_t its component along u_t = d_t / |d_t|, d_t = (mu^y_t -
    mean mu^-_t) / sigma^y_t, the direction in which the caption's prior differs from its
    negatives' (the same latents drove every stream so far): the noise no longer pushes the
    drawing toward or away from the digit, and keeps every other direction.
    """
    tokens = np.asarray(tokens)
    neg_tokens, owner = same_layout_negatives(tokens, interchangeable)
    batch, total = len(tokens), len(tokens) + len(neg_tokens)
    counts = np.bincount(owner, minlength=batch)
    if (counts == 0).any():
        raise T2IError("contrastive sampling needs captions with an interchangeable word "
                       "(a digit; for scenes a colour or an object noun)")
    width = tokens.shape[1]
    context = model.caption_context(np.concatenate([tokens, neg_tokens.reshape(-1, width)]))
    state = model.initial_state(total)
    from keras import ops

    noise = ops.convert_to_tensor(noise, dtype=model.compute_dtype)
    owner_t = ops.convert_to_tensor(owner, dtype="int32")
    alignments, canvases = [], []
    counts_t = ops.reshape(ops.convert_to_tensor(counts, model.compute_dtype), (-1, 1))
    for t in range(model.num_steps):
        eps = noise[:, t]
        if project:
            mean_negative = ops.segment_sum(state.mu[batch:], owner_t, num_segments=batch) / counts_t
            d = (state.mu[:batch] - mean_negative) * ops.exp(-state.log_sigma[:batch])
            u = d / (ops.sqrt(ops.sum(d * d, axis=-1, keepdims=True)) + 1e-12)  # 0 where d = 0 (t = 1)
            eps = eps - ops.sum(eps * u, axis=-1, keepdims=True) * u
        z = state.mu[:batch] + ops.exp(state.log_sigma[:batch]) * eps
        state, weights = model.draw_step(context, state, ops.concatenate([z, ops.take(z, owner_t, 0)], 0))
        alignments.append(weights[:batch])
        if trace:
            canvases.append(_contrast(state.canvas, batch, owner_t, counts, g, negatives))
    final = canvases[-1] if trace else _contrast(state.canvas, batch, owner_t, counts, g, negatives)
    out = {"images": ops.convert_to_numpy(ops.sigmoid(final)),
           "alignments": ops.convert_to_numpy(ops.stack(alignments, axis=1))}
    if trace:
        out["canvases"] = ops.convert_to_numpy(ops.sigmoid(ops.stack(canvases, axis=1)))
    return out


def _contrast(canvas, batch, owner, counts, g, negatives):
    """c^y + (g - 1) (c^y - c^-) for the first `batch` rows against their negatives."""
    from keras import ops

    own, negs = canvas[:batch], canvas[batch:]
    if negatives == "mean":
        total = ops.segment_sum(negs, owner, num_segments=batch)
        reference = total / ops.reshape(ops.convert_to_tensor(counts, own.dtype), (-1, 1, 1, 1))
    else:  # the negative whose image is closest to the caption's own
        dist = ops.mean(ops.abs(ops.sigmoid(negs) - ops.sigmoid(ops.take(own, owner, 0))), axis=(1, 2, 3))
        dist_np, owner_np = ops.convert_to_numpy(dist), ops.convert_to_numpy(owner)
        pick = [int(np.flatnonzero(owner_np == i)[np.argmin(dist_np[owner_np == i])]) for i in range(batch)]
        reference = ops.take(negs, ops.convert_to_tensor(pick, "int32"), 0)
    return own + (g - 1.0) * (own - reference)


def family_bounds(model, images, tokens, score_noise, interchangeable):
    """(B(x | y) [B], B(x | y') of every same-layout negative [N], owner [N]): each image's
    bound under its caption and under its negatives, with the image's one noise draw."""
    tokens = np.asarray(tokens)
    neg_tokens, owner = same_layout_negatives(tokens, interchangeable)
    rows = np.concatenate([np.arange(len(tokens)), owner])
    all_tokens = np.concatenate([tokens, neg_tokens.reshape(-1, tokens.shape[1])])
    bounds = model.lower_bound(np.asarray(images, np.float32)[rows], all_tokens,
                               np.asarray(score_noise, np.float32)[rows])
    return bounds[:len(tokens)], bounds[len(tokens):], owner


def caption_log_posterior(model, images, tokens, score_noise, interchangeable) -> np.ndarray:
    """log p(y | x) under a uniform prior over y and its same-layout negatives: float64 [B].

    B(x | y) - logsumexp over {y} and the negatives of B(x | y''), each B the
    lower bound with the image's one noise draw `score_noise` [B, T, latent].
    0 for a caption without negatives.
    """
    return log_posterior(*family_bounds(model, images, tokens, score_noise, interchangeable))


def log_posterior(own, theirs, owner) -> np.ndarray:
    """B(x | y) - logsumexp over y and its negatives, from `family_bounds`' output."""
    return np.array([own[i] - np.logaddexp.reduce(np.concatenate([[own[i]], theirs[owner == i]]))
                     for i in range(len(own))])


def best_of_k(model, tokens, seeds, k: int, interchangeable, temperature: float = 1.0,
              trace: bool = False, batch_size: int = 100) -> dict:
    """K plain candidates per caption, the one with the highest `caption_log_posterior` kept."""
    tokens = np.asarray(tokens)
    seeds = np.asarray(seeds, np.int64)
    candidates, scores = [], []
    for j in range(k):
        noise = model.noise_for_seeds(seeds, stream=j) * np.float32(temperature)
        drawn = model.draw(tokens, noise, trace=trace, batch_size=batch_size)
        score_noise = model.noise_for_seeds(seeds, stream=SCORE_STREAM + j)
        scores.append(caption_log_posterior(model, drawn["images"], tokens, score_noise, interchangeable))
        candidates.append(drawn)
    best = np.argmax(np.stack(scores, axis=1), axis=1)  # ties: the lowest j, so K = 1 is plain
    out = {key: np.stack([c[key] for c in candidates], axis=1)[np.arange(len(tokens)), best]
           for key in candidates[0]}
    out["candidate"] = best
    return out


class DigitReader:
    """The model as a reader of the digits a caption names (MNIST with captions).

    For every digit slot of the caption's layout (`mnist_captions.digit_slots`: two for
    a pair, one for a corner) the slot's part of the image is moved to each of the four
    corners q, and scored under the ten captions "the digit d is at the q of the image ."
    with the model's lower bound B (one shared noise draw per image):

        r(d) = sum_q [ B(x_q | d at q) - logsumexp_d' B(x_q | d' at q) ]

    The slot reads as argmax_d r(d). Reading at every corner, not only where the caption
    puts the digit, is what makes it work for held-out compositions: where a digit was
    never drawn in training the model does not know it (on real held-out test composites
    the caption's own place alone reads 62% of the corner digits right, the four corners
    96%: BENCHMARKS "Samplers for novel compositions"). Only the model's quantities are used.
    """

    def __init__(self, text_config):
        from t2i.data import mnist_captions as mc
        from t2i.text_numpy import NumpyCaptionTokenizer

        self._mc = mc
        self._vocabulary = NumpyCaptionTokenizer(text_config).vocabulary
        tokenizer = NumpyCaptionTokenizer(text_config)
        self.corners = tuple(mc.CORNER_OFFSETS)
        # [corners, 10, L]: "the digit d is at the <corner q> of the image ."
        self.corner_tokens = np.stack([tokenizer([mc.caption(q, d) for d in range(10)])
                                       for q in self.corners])

    def layouts(self, tokens) -> list:
        """(k, a, b) of each caption (`mnist_captions.parse_caption`), None if unreadable."""
        words = [[self._vocabulary[int(t)] for t in row if t != 0] for row in np.asarray(tokens)]
        return [self._mc.parse_caption(w) if w else None for w in words]

    def views(self, images, layouts):
        """Every slot of every image moved to every corner: (views [S, 4, H, W, C],
        slot owner [S], named digit [S])."""
        images = np.asarray(images, np.float32)
        views, owner, named = [], [], []
        for i, layout in enumerate(layouts):
            if layout is None:
                continue
            k, a, b = layout
            for slot in self._mc.digit_slots(k):
                part = np.zeros_like(images[i])
                part[slot.rows, slot.cols] = images[i][slot.rows, slot.cols]
                r0, c0 = slot.offset
                views.append([_shifted(part, self._mc.CORNER_OFFSETS[q][0] - r0,
                                       self._mc.CORNER_OFFSETS[q][1] - c0) for q in self.corners])
                owner.append(i)
                named.append(a if slot.digit == "a" else b)
        shape = (len(views), len(self.corners)) + images.shape[1:]
        return (np.array(views, np.float32).reshape(shape),
                np.array(owner, np.int64), np.array(named, np.int64))

    def readings(self, model, images, layouts, score_noise):
        """r(d) of every slot (class docstring): (float64 [S, 10], owner [S], named [S])."""
        views, owner, named = self.views(images, layouts)
        if not len(views):
            return np.zeros((0, 10)), owner, named
        q, digits = len(self.corners), 10
        x = np.repeat(views[:, :, None], digits, axis=2).reshape((-1,) + views.shape[2:])
        tokens = np.tile(self.corner_tokens.reshape(q * digits, -1), (len(views), 1))
        noise = np.repeat(np.asarray(score_noise, np.float32)[owner], q * digits, axis=0)
        bounds = model.lower_bound(x, tokens, noise).reshape(len(views), q, digits)
        posterior = bounds - np.logaddexp.reduce(bounds, axis=2, keepdims=True)
        return posterior.sum(axis=1), owner, named

    def read(self, model, images, layouts, score_noise) -> tuple[np.ndarray, np.ndarray]:
        """(score [B]: sum over slots of r(named digit), -inf for unreadable captions;
        passed [B]: every slot reads as its named digit)."""
        reading, owner, named = self.readings(model, images, layouts, score_noise)
        batch = len(layouts)
        score = np.full(batch, -np.inf)
        passed = np.zeros(batch, bool)
        if len(owner):
            own = reading[np.arange(len(owner)), named]
            right = reading.argmax(axis=1) == named
            readable = np.unique(owner)
            score[readable] = np.bincount(owner, own, minlength=batch)[readable]
            passed[readable] = np.bincount(owner, ~right, minlength=batch)[readable] == 0
        return score, passed


def _shifted(image, rows: int, cols: int):
    """`image` [H, W, C] moved down `rows` and right `cols` (negative: up, left), zero-filled."""
    out = np.zeros_like(image)
    height, width = image.shape[:2]
    out[max(0, rows):height + min(0, rows), max(0, cols):width + min(0, cols)] = \
        image[max(0, -rows):height - max(0, rows), max(0, -cols):width - max(0, cols)]
    return out


def rejection_sample(model, tokens, seeds, k: int, reader: DigitReader, temperature: float = 1.0,
                     trace: bool = False, batch_size: int = 100) -> dict:
    """Rejection sampling by the model's own reading (module docstring): candidate j of a
    caption is plain sampling's draw from noise stream j of its seed, read with the score
    noise of stream SCORE_STREAM + j; the first candidate that passes is kept, else the one
    read best. Returns `sample`'s arrays and "candidate" (int [B], which one was kept).
    """
    tokens = np.asarray(tokens)
    seeds = np.asarray(seeds, np.int64).reshape(-1)
    layouts = reader.layouts(tokens)
    out, best = None, np.full(len(tokens), -np.inf)
    pending = np.arange(len(tokens))
    for j in range(k):
        noise = model.noise_for_seeds(seeds[pending], stream=j) * np.float32(temperature)
        drawn = model.draw(tokens[pending], noise, trace=trace, batch_size=batch_size)
        drawn["candidate"] = np.full(len(pending), j, np.int64)
        if out is None:
            out = drawn
        if k == 1:
            break
        rows = [layouts[i] for i in pending]
        score, passed = reader.read(model, drawn["images"], rows,
                                    model.noise_for_seeds(seeds[pending], stream=SCORE_STREAM + j))
        better = (score > best[pending]) | passed
        for key in out:
            out[key][pending[better]] = drawn[key][better]
        best[pending[better]] = score[better]
        pending = pending[~passed & np.array([r is not None for r in rows], bool)]
        if not len(pending):
            break
    return out
