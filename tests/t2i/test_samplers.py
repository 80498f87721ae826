"""The public step API and the named samplers (t2i.samplers) on the tiny preset."""

import dataclasses

import numpy as np
import pytest
from keras import ops

from t2i import config as C
from t2i import samplers
from t2i.errors import T2IError
from t2i.model import AlignDRAW
from t2i.text import CaptionTokenizer

CAPTIONS = ["the digit 3 is at the top left of the image .",
            "the digit 1 is on the left of the digit 7 .",
            "the digit 0 is at the bottom of the digit 5 ."]
SEEDS = [4, 11, 30]
# Eager step-by-step drawing against the compiled `generate`: the same float32 operations,
# fused or ordered differently, over T = 3 steps; images are sigmoids (slope <= 1/4).
ATOL = 1e-5


@pytest.fixture(scope="module")
def tiny():
    cfg = C.get_preset("tiny")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, init_stddev=0.3))
    model = AlignDRAW.from_config_dataclass(cfg, seed=3)
    tokens = CaptionTokenizer(cfg.text).encode(CAPTIONS)
    model.generate(tokens[:1], [0])  # builds the model
    # c_0 = 0 instead of -10: mid-grey images, where image differences show the canvases'.
    model.initial_canvas.assign(np.zeros(model.initial_canvas.shape, "float32"))
    digits = samplers.interchangeable_ids(cfg.text, [str(d) for d in range(10)])
    return model, tokens, digits


def test_draw_step_reproduces_generate(tiny):
    model, tokens, _ = tiny
    want = model.generate(tokens, SEEDS)
    noise = model.noise_for_seeds(SEEDS)
    context = model.caption_context(tokens)
    state = model.initial_state(len(tokens))
    alignments = []
    for t in range(model.num_steps):
        z = state.mu + ops.exp(state.log_sigma) * noise[:, t]
        state, weights = model.draw_step(context, state, z)
        alignments.append(ops.convert_to_numpy(weights))
    np.testing.assert_allclose(ops.convert_to_numpy(ops.sigmoid(state.canvas)), want["images"], atol=ATOL)
    np.testing.assert_allclose(np.stack(alignments, 1), want["alignments"], atol=ATOL)


def test_noise_streams_are_per_seed_and_independent():
    cfg = C.get_preset("tiny")
    model = AlignDRAW.from_config_dataclass(cfg, seed=3)
    base = model.noise_for_seeds([5, 6])
    np.testing.assert_array_equal(model.noise_for_seeds([5, 6], stream=0), base)
    one = model.noise_for_seeds([5, 6], stream=1)
    np.testing.assert_array_equal(model.noise_for_seeds([6], stream=1)[0], one[1])  # any batch
    assert not np.allclose(one, base)
    assert abs(np.corrcoef(one.ravel(), base.ravel())[0, 1]) < 0.5


def test_same_layout_negatives_swap_one_interchangeable_word_at_a_time():
    ids = np.array([10, 11, 12])
    tokens = np.array([[2, 10, 3, 12, 0], [2, 3, 4, 0, 0], [11, 5, 5, 5, 5]])
    negatives, owner = samplers.same_layout_negatives(tokens, ids)
    want = [(0, [2, 11, 3, 12, 0]), (0, [2, 12, 3, 12, 0]), (0, [2, 10, 3, 10, 0]),
            (0, [2, 10, 3, 11, 0]), (2, [10, 5, 5, 5, 5]), (2, [12, 5, 5, 5, 5])]
    assert sorted(zip(owner.tolist(), negatives.tolist())) == sorted(want)


def test_plain_names_are_plain_sampling(tiny):
    model, tokens, digits = tiny
    plain = model.generate(tokens, SEEDS)["images"]
    reader = samplers.DigitReader(C.get_preset("tiny").text)
    for name in ("plain", "contrastive:g=1", "best_of_k:k=1", "rejection:k=1"):
        np.testing.assert_array_equal(
            samplers.sample(model, tokens, SEEDS, name, interchangeable=digits, reader=reader)["images"], plain)
    # The functions themselves, not just the shortcut: K = 1 keeps the plain candidate ...
    best = samplers.best_of_k(model, tokens, SEEDS, 1, digits)
    np.testing.assert_array_equal(best["images"], plain)
    assert best["candidate"].tolist() == [0, 0, 0]
    # ... and g = 1 contrastive guidance is the caption's own stream.
    noise = model.noise_for_seeds(SEEDS)
    for negatives in samplers.NEGATIVE_MODES:
        same = samplers.contrastive_sample(model, tokens, noise, 1.0, digits, negatives=negatives)
        np.testing.assert_allclose(same["images"], plain, atol=ATOL)


def test_contrastive_guidance_matches_a_numpy_mix_of_the_streams(tiny):
    """c = c^y + (g - 1)(c^y - mean c^-), each stream drawn separately with y's latents."""
    model, tokens, digits = tiny
    noise = model.noise_for_seeds(SEEDS)
    g = 2.5
    got = samplers.contrastive_sample(model, tokens, noise, g, digits, trace=True)
    negatives, owner = samplers.same_layout_negatives(tokens, digits)

    def canvas_with_latents(rows, zs):
        context = model.caption_context(rows)
        state = model.initial_state(len(rows))
        for t in range(model.num_steps):
            state, _ = model.draw_step(context, state, zs[t])
        return ops.convert_to_numpy(state.canvas).astype(np.float64)

    # y's own latents, step by step.
    context = model.caption_context(tokens)
    state = model.initial_state(len(tokens))
    zs = []
    for t in range(model.num_steps):
        z = state.mu + ops.exp(state.log_sigma) * noise[:, t]
        zs.append(ops.convert_to_numpy(z))
        state, _ = model.draw_step(context, state, z)
    own = ops.convert_to_numpy(state.canvas).astype(np.float64)
    neg = canvas_with_latents(negatives, [z[owner] for z in zs])
    mean_neg = np.stack([neg[owner == i].mean(0) for i in range(len(tokens))])
    want = 1 / (1 + np.exp(-(own + (g - 1) * (own - mean_neg))))
    np.testing.assert_allclose(got["images"], want, atol=ATOL * g)
    np.testing.assert_allclose(got["canvases"][:, -1], got["images"], atol=1e-7)
    assert not np.allclose(got["images"], 1 / (1 + np.exp(-own)), atol=1e-3)  # it does something


def test_caption_posterior_is_a_distribution_over_the_caption_and_its_negatives(tiny, rng):
    """Scored against each other, a corner caption and its 9 digit swaps share one image's noise:
    their posteriors are exp(B_i - logsumexp_j B_j), which sum to 1."""
    model, tokens, digits = tiny
    corner = tokens[:1]
    negatives, _ = samplers.same_layout_negatives(corner, digits)
    family = np.concatenate([corner, negatives])  # all 10 digits at the top left
    image = (rng.random((1, model.image_height, model.image_width, model.channels)) > 0.8).astype("float32")
    noise = rng.normal(size=(1, model.num_steps, model.latent_dim)).astype("float32")
    posts = [samplers.caption_log_posterior(model, image, family[i:i + 1], noise, digits)[0]
             for i in range(len(family))]
    assert all(p <= 0 for p in posts)
    # Each call scores the 10 captions in another order, and a float32 bound can round
    # differently at another batch position: a few ulps of |B|.
    bounds = np.array([model.lower_bound(image, family[i:i + 1], noise)[0] for i in range(len(family))])
    atol = 8 * np.finfo(np.float32).eps * np.abs(bounds).max()
    np.testing.assert_allclose(np.logaddexp.reduce(posts), 0.0, atol=atol)
    # The same from the bounds directly (float64 reference).
    # The bound against the model's own loss terms, computed eagerly.
    out = model({"images": image, "tokens": family[:1], "noise": noise})
    direct = -(float(ops.convert_to_numpy(out["reconstruction"])[0])
               + float(ops.convert_to_numpy(out["kl"]).sum()))
    np.testing.assert_allclose(bounds[0], direct, rtol=64 * np.finfo(np.float32).eps)
    np.testing.assert_allclose(posts, bounds - np.logaddexp.reduce(bounds), atol=2 * atol)


def test_best_of_k_keeps_the_candidate_with_the_best_posterior(tiny):
    model, tokens, digits = tiny
    k = 3
    got = samplers.best_of_k(model, tokens, SEEDS, k, digits)
    scores, images = [], []
    for j in range(k):
        noise = model.noise_for_seeds(SEEDS, stream=j)
        drawn = model.predict({"tokens": tokens, "noise": noise}, verbose=0)["images"]
        images.append(drawn)
        scores.append(samplers.caption_log_posterior(
            model, drawn, tokens, model.noise_for_seeds(SEEDS, stream=samplers.SCORE_STREAM + j), digits))
    best = np.argmax(np.stack(scores, 1), 1)
    assert got["candidate"].tolist() == best.tolist()
    np.testing.assert_array_equal(got["images"], np.stack(images, 1)[np.arange(3), best])
    # An example's image depends only on its caption and seed.
    alone = samplers.best_of_k(model, tokens[1:2], SEEDS[1:2], k, digits)
    np.testing.assert_allclose(alone["images"][0], got["images"][1], atol=ATOL)


@pytest.mark.parametrize("text,message", [
    ("nope", "unknown sampler 'nope'; expected one of plain, guided, contrastive, best_of_k, rejection"),
    ("rejection:k=1.5", "k='1.5' is not a valid int"),
    ("contrastive:g=-1", "g must be a finite number >= 0, got -1.0"),
    ("contrastive:g=two", "g='two' is not a valid float"),
    ("best_of_k:k=0", "k must be an integer >= 1, got 0"),
    ("contrastive:negatives=far", "negatives must be one of mean, nearest, got 'far'"),
    ("contrastive:2", "parameters are key=value with keys g, k, negatives, project"),
    ("contrastive:g=2,project=2", "project must be 0 or 1, got 2"),
])
def test_bad_sampler_names_and_parameters_are_one_line_errors(text, message):
    with pytest.raises(T2IError) as info:
        samplers.Sampler.parse(text)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_resolve_falls_back_to_the_run_default():
    assert str(samplers.resolve(None, default="best_of_k:k=4")) == "best_of_k:k=4"
    assert str(samplers.resolve("plain", default="best_of_k:k=4")) == "plain"
    assert str(samplers.resolve(None, 2.0, default="best_of_k:k=4")) == "guided:g=2"  # --guidance G names one
    assert str(samplers.resolve()) == "plain"


def test_sampler_names_round_trip():
    for text in ("plain", "guided:g=2", "contrastive:g=2", "contrastive:g=1.5,negatives=nearest",
                 "contrastive:g=2,project=1", "best_of_k:k=8", "rejection:k=16"):
        assert str(samplers.Sampler.parse(text)) == text
        assert samplers.Sampler.parse(str(samplers.Sampler.parse(text))) == samplers.Sampler.parse(text)


def test_contrastive_sampling_needs_interchangeable_words(tiny):
    model, tokens, _ = tiny
    with pytest.raises(T2IError, match="needs the caption words it may swap"):
        samplers.sample(model, tokens, SEEDS, "contrastive:g=2")


def test_projected_noise_loses_only_its_identity_component(tiny):
    """project=1: eps_t minus its component along d_t = (mu^y - mean mu^-) / sigma^y, in NumPy."""
    model, tokens, digits = tiny
    noise = model.noise_for_seeds(SEEDS)
    got = samplers.contrastive_sample(model, tokens, noise, 1.0, digits, project=True)
    negatives, owner = samplers.same_layout_negatives(tokens, digits)
    own_ctx, neg_ctx = model.caption_context(tokens), model.caption_context(negatives)
    own, neg = model.initial_state(len(tokens)), model.initial_state(len(negatives))
    removed = []
    for t in range(model.num_steps):
        mu, ls = (ops.convert_to_numpy(v).astype(np.float64) for v in (own.mu, own.log_sigma))
        mean_neg = np.stack([ops.convert_to_numpy(neg.mu)[owner == i].mean(0) for i in range(len(tokens))])
        d = (mu - mean_neg) / np.exp(ls)
        norm = np.linalg.norm(d, axis=-1, keepdims=True)
        u = np.where(norm > 0, d / np.maximum(norm, 1e-300), 0.0)
        eps = noise[:, t].astype(np.float64)
        projected = eps - (eps * u).sum(-1, keepdims=True) * u
        removed.append(np.abs((projected * u).sum(-1)).max())
        z = (mu + np.exp(ls) * projected).astype("float32")
        own, _ = model.draw_step(own_ctx, own, z)
        neg, _ = model.draw_step(neg_ctx, neg, z[owner])
    assert max(removed) < 1e-9  # what is left has no identity component
    want = 1 / (1 + np.exp(-ops.convert_to_numpy(own.canvas).astype(np.float64)))
    np.testing.assert_allclose(got["images"], want, atol=ATOL)
    plain = model.generate(tokens, SEEDS)["images"]
    assert not np.allclose(got["images"], plain, atol=1e-4)  # the projection changed something
    assert samplers.Sampler.parse("contrastive:g=1,project=1").is_plain is False


def test_shifted_moves_an_image_and_fills_with_zeros(rng):
    image = rng.random((6, 7, 1)).astype("float32")
    for rows, cols in [(0, 0), (2, -3), (-5, 6), (6, 0), (-1, 1)]:
        want = np.zeros_like(image)
        for r in range(6):
            for c in range(7):
                if 0 <= r + rows < 6 and 0 <= c + cols < 7:
                    want[r + rows, c + cols] = image[r, c]
        np.testing.assert_array_equal(samplers._shifted(image, rows, cols), want)


def test_digit_reader_reads_each_slot_at_every_corner(tiny, rng):
    """r(d) = sum over corners q of log softmax_d B(slot moved to q | "d at q"), against
    bounds taken one view at a time."""
    model, tokens, _ = tiny
    cfg = C.get_preset("tiny")
    reader = samplers.DigitReader(cfg.text)
    layouts = reader.layouts(tokens)
    assert layouts == [(4, 3, -1), (0, 1, 7), (3, 5, 0)]  # CAPTIONS, read back from ids
    assert reader.layouts(CaptionTokenizer(cfg.text).encode(["the digit 3 is big ."])) == [None]
    images = (rng.random((3, 60, 60, 1)) > 0.9).astype("float32")
    noise = rng.normal(size=(3, model.num_steps, model.latent_dim)).astype("float32")
    reading, owner, named = reader.readings(model, images, layouts, noise)
    assert owner.tolist() == [0, 1, 1, 2, 2] and named.tolist() == [3, 1, 7, 5, 0]
    tokenizer = CaptionTokenizer(cfg.text)
    corners = {"top left": (1, 2), "bottom right": (31, 30), "top right": (1, 30), "bottom left": (31, 2)}
    # Slot 1: the left digit of "1 left of 7": columns 0-29, nominal offset (17, 2).
    part = np.zeros_like(images[1])
    part[:, :30] = images[1][:, :30]
    want = np.zeros(10)
    for corner, (r, c) in corners.items():
        view = np.roll(np.roll(part, r - 17, axis=0), c - 2, axis=1)
        if r - 17 < 0:
            view[r - 17:] = 0
        else:
            view[:r - 17] = 0
        captions = [f"the digit {d} is at the {corner} of the image ." for d in range(10)]
        bounds = np.array([model.lower_bound(view[None], tokenizer.encode([cap]), noise[1:2])[0]
                           for cap in captions])
        want += bounds - np.logaddexp.reduce(bounds)
    # Bounds of one view batched with others round differently: a few ulps of |B|, summed
    # over 4 corners and a logsumexp of 10.
    atol = 4 * 16 * np.finfo(np.float32).eps * np.abs(bounds).max()
    np.testing.assert_allclose(reading[1], want, atol=atol)
    score, passed = reader.read(model, images, layouts + [None], np.concatenate([noise, noise[:1]]))
    np.testing.assert_allclose(score[:3], [reading[0, 3], reading[1, 1] + reading[2, 7],
                                           reading[3, 5] + reading[4, 0]], atol=1e-9)
    assert score[3] == -np.inf and not passed[3]
    assert passed[:3].tolist() == [reading[0].argmax() == 3,
                                   reading[1].argmax() == 1 and reading[2].argmax() == 7,
                                   reading[3].argmax() == 5 and reading[4].argmax() == 0]


def test_rejection_keeps_the_first_candidate_the_reader_passes_else_the_best(tiny, monkeypatch):
    model, tokens, _ = tiny
    reader = samplers.DigitReader(C.get_preset("tiny").text)
    k = 4
    # The reference: every candidate of every caption drawn and read, then chosen in NumPy.
    images, scores, passes = [], [], []
    for j in range(k):
        drawn = model.predict({"tokens": tokens, "noise": model.noise_for_seeds(SEEDS, stream=j)},
                              verbose=0)["images"]
        score, passed = reader.read(model, drawn, reader.layouts(tokens),
                                    model.noise_for_seeds(SEEDS, stream=samplers.SCORE_STREAM + j))
        images.append(drawn), scores.append(score), passes.append(passed)
    scores, passes = np.stack(scores, 1), np.stack(passes, 1)
    want = [int(np.flatnonzero(p)[0]) if p.any() else int(np.argmax(s)) for s, p in zip(scores, passes)]
    got = samplers.rejection_sample(model, tokens, SEEDS, k, reader)
    assert got["candidate"].tolist() == want
    np.testing.assert_allclose(got["images"], np.stack(images, 1)[np.arange(3), want], atol=ATOL)
    # An example's image depends only on its caption and seed.
    alone = samplers.rejection_sample(model, tokens[2:], SEEDS[2:], k, reader)
    assert alone["candidate"].tolist() == want[2:]
    # A caption the reader cannot read gets plain sampling's image, and costs one draw.
    odd = CaptionTokenizer(C.get_preset("tiny").text).encode(["the digit 3 is big ."])
    calls = []
    monkeypatch.setattr(reader, "read", lambda *a: calls.append(1) or reader.__class__.read(reader, *a))
    plain = model.generate(odd, [9])["images"]
    got = samplers.rejection_sample(model, odd, [9], k, reader)
    np.testing.assert_array_equal(got["images"], plain)
    assert got["candidate"].tolist() == [0] and len(calls) == 1


def test_rejection_sampling_needs_a_reader(tiny):
    model, tokens, _ = tiny
    with pytest.raises(T2IError, match="needs a reader of the digits"):
        samplers.sample(model, tokens, SEEDS, "rejection:k=2")


def test_scenes_negatives_swap_the_colour_before_the_noun_and_the_noun_within_its_number():
    from t2i.data.scenes import captions as cap

    config = C.get_preset("scenes_tiny")
    groups = samplers.interchangeable_for(config)
    tokenizer = CaptionTokenizer(config.text)
    vocab = tokenizer.vocabulary
    captions = ["a green grass field with a red bus on the left", "two stop signs flying in blue skies"]
    negatives, owner = samplers.same_layout_negatives(tokenizer.encode(captions), groups)
    texts = [" ".join(vocab[t] for t in row if t) for row in negatives]
    first = sorted(t for t, o in zip(texts, owner) if o == 0)
    colours = [c for c in cap.COLOUR_NAMES if c != "red"]
    nouns = [c.name.split()[-1] for c in cap.CONCEPTS if c.name != "bus"]
    want = [f"a green grass field with a {c} bus on the left" for c in colours] \
        + [f"a green grass field with a red {n} on the left" for n in nouns]
    assert first == sorted(want)  # the background's "green" stays
    second = sorted(t for t, o in zip(texts, owner) if o == 1)
    plurals = [w for w in dict.fromkeys(c.plural.split()[-1] for c in cap.CONCEPTS)
               if w not in {c.name.split()[-1] for c in cap.CONCEPTS} and w != "signs"]
    assert second == sorted(f"two stop {p} flying in blue skies" for p in plurals)  # "blue skies" stays
