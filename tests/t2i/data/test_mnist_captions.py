"""Tests for t2i.data.mnist_captions against docs/model.md §11, written out here."""

import re
import time

import numpy as np
import pytest

from t2i.data.mnist_captions import (Composition, CompositeSampler, all_compositions, captions_for,
                                     composition_of, digit_slots, draw_held_out, parse_caption,
                                     parse_composition)
from t2i.errors import T2IError

# Spec 9.1 table, copied independently of the implementation.
SPEC_TEMPLATES = {
    0: "the digit {a} is on the left of the digit {b} .",
    1: "the digit {b} is on the right of the digit {a} .",
    2: "the digit {a} is at the top of the digit {b} .",
    3: "the digit {b} is at the bottom of the digit {a} .",
    4: "the digit {a} is at the top left of the image .",
    5: "the digit {a} is at the bottom right of the image .",
    6: "the digit {a} is at the top right of the image .",
    7: "the digit {a} is at the bottom left of the image .",
}
# Inclusive ranges of (row, col) of each digit's top-left corner, docs/model.md §11.
TOP, BOTTOM, LEFT, RIGHT, MIDDLE = (0, 2), (30, 32), (0, 4), (28, 32), (16, 18)
SPEC_PLACEMENT = {  # k -> ((rows of a, cols of a), (rows of b, cols of b) or None)
    0: ((MIDDLE, LEFT), (MIDDLE, RIGHT)),
    1: ((MIDDLE, LEFT), (MIDDLE, RIGHT)),
    2: ((TOP, MIDDLE), (BOTTOM, MIDDLE)),
    3: ((TOP, MIDDLE), (BOTTOM, MIDDLE)),
    4: ((TOP, LEFT), None),
    5: ((BOTTOM, RIGHT), None),
    6: ((TOP, RIGHT), None),
    7: ((BOTTOM, LEFT), None),
}
HELD = ("2 left of 9", "6 left of 3", "6 above 2", "2 above 4",
        "4 top left", "5 top right", "8 bottom left", "9 bottom right")


def block_digits(n=40):
    """Digit i is a solid 28x28 block of value i + 1, with label i % 10."""
    digits = np.repeat((np.arange(n, dtype=np.uint8) + 1)[:, None, None], 28, axis=1).repeat(28, axis=2)
    return digits, np.arange(n) % 10


def composition_from_caption(text):
    """Canonical composition of a caption, parsed independently of the library."""
    words = text.split()
    assert len(words) == 12, text
    m = re.fullmatch(r"the digit (\d) is (?:on|at) the (.+) of the (digit (\d)|image) \.", text)
    assert m, text
    x, where, y = m.group(1), m.group(2), m.group(4)
    if where == "left":
        return f"{x} left of {y}"
    if where == "right":
        return f"{y} left of {x}"
    if where == "top" and y is not None:
        return f"{x} above {y}"
    if where == "bottom" and y is not None:
        return f"{y} above {x}"
    assert y is None and where in ("top left", "top right", "bottom left", "bottom right"), text
    return f"{x} {where}"


def bbox(mask):
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return rows[0], rows[-1], cols[0], cols[-1]


def test_captions_match_spec_templates_and_have_12_tokens():
    digits, labels = block_digits()
    c = CompositeSampler(digits, labels).sample(2000, np.random.default_rng(1), which="all")
    assert set(c.types.tolist()) == set(range(8))
    for k, a, b, caption, ia, ib in zip(c.types, c.a, c.b, c.captions, c.index_a, c.index_b):
        # Labels come from the digits the example actually uses.
        assert a == labels[ia] and (b == labels[ib] if k < 4 else (b == -1 and ib == -1))
        assert caption == SPEC_TEMPLATES[k].format(a=a, b=b)
        assert len(caption.split(" ")) == 12


@pytest.mark.parametrize("k", range(8))
def test_placements_match_spec(k):
    digits, labels = block_digits()
    sampler = CompositeSampler(digits, labels)
    c = sampler.sample(3000, np.random.default_rng(k), which="all", dtype="uint8")
    sel = np.flatnonzero(c.types == k)
    assert len(sel) > 250
    (rows_a, cols_a), spec_b = SPEC_PLACEMENT[k]
    seen_a, seen_b, overlaps = set(), set(), 0
    for n in sel:
        img = c.images[n, :, :, 0]
        va, vb = c.index_a[n] + 1, c.index_b[n] + 1
        if spec_b is not None and va == vb:
            continue  # same digit drawn twice: positions cannot be told apart
        r0, r1, c0, c1 = bbox(img == va)
        assert rows_a[0] <= r0 <= rows_a[1] and cols_a[0] <= c0 <= cols_a[1], (k, r0, c0)
        assert r1 == r0 + 27
        seen_a.add((r0, c0))
        if spec_b is None:
            assert (img > 0).sum() == 28 * 28 and c1 == c0 + 27
            continue
        (rows_b, cols_b) = spec_b
        s0, s1, t0, t1 = bbox(img == vb)
        # b is pasted last: it is whole, and a is cut off where they overlap.
        assert (s1 - s0, t1 - t0) == (27, 27) and (img[s0:s1 + 1, t0:t1 + 1] == vb).all()
        assert rows_b[0] <= s0 <= rows_b[1] and cols_b[0] <= t0 <= cols_b[1], (k, s0, t0)
        if k < 2:
            assert s0 == r0  # left/right share the row offset
            assert c1 == min(c0 + 27, t0 - 1)
            overlaps += c0 + 27 >= t0
            assert (img > 0).sum() == 28 * 28 * 2 - max(0, c0 + 28 - t0) * 28
        else:
            assert t0 == c0  # top/bottom share the column offset
            assert c1 == c0 + 27
        seen_b.add((s0, t0))
    # Every offset of the inclusive ranges occurs (catches exclusive upper bounds).
    if spec_b is None or k in (2, 3):
        assert {r for r, _ in seen_a} == set(range(rows_a[0], rows_a[1] + 1))
    assert {col for _, col in seen_a} == set(range(cols_a[0], cols_a[1] + 1))
    if spec_b is not None:
        assert {r for r, _ in seen_b} == set(range(spec_b[0][0], spec_b[0][1] + 1))
        assert {col for _, col in seen_b} == set(range(spec_b[1][0], spec_b[1][1] + 1))
        if k < 2:
            assert overlaps > 0 and {r for r, _ in seen_a} == set(range(16, 19))


def test_float_images_are_uint8_over_255():
    digits, labels = block_digits()
    sampler = CompositeSampler(digits, labels)
    f = sampler.sample(50, np.random.default_rng(7))
    u = sampler.sample(50, np.random.default_rng(7), dtype="uint8")
    assert f.images.shape == (50, 60, 60, 1) and f.images.dtype == np.float32
    assert u.images.dtype == np.uint8
    np.testing.assert_array_equal(f.images, u.images.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(f.captions, u.captions)


def test_seen_never_shows_held_out_and_held_out_only_shows_held_out():
    digits, labels = block_digits()
    sampler = CompositeSampler(digits, labels, held_out=HELD)
    seen = sampler.sample(20000, np.random.default_rng(0), which="seen")
    comps = [composition_from_caption(t) for t in seen.captions]
    assert not set(comps) & set(HELD)
    assert not seen.held_out.any()
    # Rejection removes only the held-out compositions: the rest stay close to uniform.
    assert 0.9 < np.bincount(seen.types, minlength=8).min() / (20000 / 8)

    held = sampler.sample(2000, np.random.default_rng(1), which="held_out")
    comps = [composition_from_caption(t) for t in held.captions]
    assert set(comps) == set(HELD) and held.held_out.all()
    counts = {h: comps.count(h) for h in HELD}
    assert min(counts.values()) > 150  # uniform over the 8 compositions
    # Both phrasings of held-out pairs occur.
    assert {0, 1, 2, 3} <= set(held.types.tolist())
    assert (labels[held.index_a] == held.a).all()
    pair = held.types < 4
    assert (labels[held.index_b[pair]] == held.b[pair]).all()

    everything = sampler.sample(20000, np.random.default_rng(2), which="all")
    flags = np.array([composition_from_caption(t) in HELD for t in everything.captions])
    np.testing.assert_array_equal(everything.held_out, flags)
    assert 0.03 < flags.mean() < 0.09  # 4 pairs * 2/8 * 1/100 + 4 corners * 1/8 * 1/10 = 0.06


def test_sampling_is_deterministic_in_the_rng():
    digits, labels = block_digits()
    sampler = CompositeSampler(digits, labels, held_out=HELD)
    one = sampler.sample(300, np.random.default_rng(5))
    two = sampler.sample(300, np.random.default_rng(5))
    three = sampler.sample(300, np.random.default_rng(6))
    np.testing.assert_array_equal(one.images, two.images)
    np.testing.assert_array_equal(one.captions, two.captions)
    assert not np.array_equal(one.captions, three.captions)


def test_ten_thousand_composites_take_well_under_a_second():
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 256, (9000, 28, 28), dtype=np.uint8)
    sampler = CompositeSampler(digits, rng.integers(0, 10, 9000), held_out=HELD)
    best = min(_timed(lambda: sampler.sample(10000, rng, which="seen")) for _ in range(3))
    assert best < 1.0


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_parse_composition_round_trips_and_aliases():
    for c in all_compositions():
        assert parse_composition(str(c)) == c
    assert len(set(map(str, all_compositions()))) == 240
    assert parse_composition("2 left of 9") == Composition("left", 2, 9)
    assert parse_composition("9 right of 2") == parse_composition("2 left of 9")
    assert parse_composition("2 below 6") == Composition("above", 6, 2) == parse_composition("6 above 2")
    assert str(parse_composition("  9   RIGHT of 2 ")) == "2 left of 9"
    assert str(parse_composition("4 in the top left corner")) == "4 top left"
    assert str(parse_composition("4 in the bottom right")) == "4 bottom right"
    assert str(parse_composition("7 top right")) == "7 top right"
    assert parse_composition(Composition("bottom left", 3)) == Composition("bottom left", 3)


@pytest.mark.parametrize("text", ["", "2 left of", "12 left of 3", "2 diagonal of 3", "x top left",
                                  "4 top middle", "2 left of 9 and 3"])
def test_parse_composition_errors_list_accepted_forms(text):
    with pytest.raises(T2IError) as info:
        parse_composition(text)
    message = str(info.value)
    assert repr(text) in message and "'A left of B'" in message and "'A below B'" in message
    assert "\n" not in message


def test_composition_of_and_captions_for():
    assert str(composition_of(0, 3, 5)) == str(composition_of(1, 3, 5)) == "3 left of 5"
    assert str(composition_of(2, 3, 5)) == str(composition_of(3, 3, 5)) == "3 above 5"
    assert [str(composition_of(k, 3, 5)) for k in (4, 5, 6, 7)] == [
        "3 top left", "3 bottom right", "3 top right", "3 bottom left"]
    assert captions_for("3 left of 5") == ["the digit 3 is on the left of the digit 5 .",
                                           "the digit 5 is on the right of the digit 3 ."]
    assert captions_for("5 right of 3") == captions_for("3 left of 5")
    assert captions_for("3 below 5") == ["the digit 5 is at the top of the digit 3 .",
                                         "the digit 3 is at the bottom of the digit 5 ."]
    assert captions_for("1 bottom left") == ["the digit 1 is at the bottom left of the image ."]
    for c in all_compositions():
        assert {composition_from_caption(t) for t in captions_for(c)} == {str(c)}


def test_draw_held_out_is_deterministic_and_distinct():
    one, two, other = draw_held_out(12, seed=3), draw_held_out(12, seed=3), draw_held_out(12, seed=4)
    assert one == two and one != other
    assert len(one) == len(set(one)) == 12
    assert all(str(parse_composition(c)) == c for c in one)
    assert set(draw_held_out(240, seed=0)) == {str(c) for c in all_compositions()}
    with pytest.raises(T2IError):
        draw_held_out(241, seed=0)


def test_sampler_errors():
    digits, labels = block_digits(10)
    with pytest.raises(T2IError, match="no compositions are held out"):
        CompositeSampler(digits, labels).sample(3, np.random.default_rng(0), which="held_out")
    with pytest.raises(T2IError, match="which must be"):
        CompositeSampler(digits, labels).sample(3, np.random.default_rng(0), which="unseen")
    with pytest.raises(T2IError, match="need digits \\[9\\]"):
        CompositeSampler(digits[:9], labels[:9], ["9 top left"]).sample(
            3, np.random.default_rng(0), which="held_out")
    only_one = CompositeSampler(digits[:1], labels[:1], ["0 left of 0", "0 above 0"] + [
        f"0 {corner}" for corner in ("top left", "top right", "bottom left", "bottom right")])
    with pytest.raises(T2IError, match="every composition"):
        only_one.sample(3, np.random.default_rng(0))


def mnist_like_digits(n=40):
    """Digit i: ink of value i + 1 in its central 20x20 box (MNIST's 4-pixel empty border)."""
    digits = np.zeros((n, 28, 28), np.uint8)
    digits[:, 4:24, 4:24] = (np.arange(n, dtype=np.uint8) + 1)[:, None, None]
    return digits, np.arange(n) % 10


@pytest.mark.parametrize("k", range(8))
def test_digit_slots_hold_each_digits_ink_and_no_other(k):
    digits, labels = mnist_like_digits()
    c = CompositeSampler(digits, labels).sample(2000, np.random.default_rng(k), which="all", dtype="uint8")
    sel = np.flatnonzero(c.types == k)
    slots = digit_slots(k)
    assert [s.digit for s in slots] == (["a", "b"] if k < 4 else ["a"])
    (rows_a, cols_a), spec_b = SPEC_PLACEMENT[k]
    ranges = [(rows_a, cols_a)] + ([spec_b] if spec_b else [])
    for slot, (rows, cols) in zip(slots, ranges):
        # The nominal offset is the middle of the documented ranges.
        assert slot.offset == ((rows[0] + rows[1]) // 2, (cols[0] + cols[1]) // 2)
    for n in sel:
        img = c.images[n, :, :, 0]
        values = [c.index_a[n] + 1] + ([c.index_b[n] + 1] if k < 4 else [])
        if len(values) == 2 and values[0] == values[1]:
            continue
        for slot, value in zip(slots, values):
            part = np.zeros_like(img)
            part[slot.rows, slot.cols] = img[slot.rows, slot.cols]
            assert (part == value).sum() == (img == value).sum() == 400  # all of its ink ...
            assert set(np.unique(part)) <= {0, value}  # ... and nothing else


def test_parse_caption_reads_every_template():
    for k, template in SPEC_TEMPLATES.items():
        for a, b in [(0, 9), (4, 4), (7, 1)]:
            text = template.format(a=a, b=b)
            want = (k, a, b if k < 4 else -1)
            assert parse_caption(text) == want
            assert parse_caption(text.upper()) == want
            assert parse_caption(text.removesuffix(" .")) == want  # without the period
            assert parse_caption(text.split()) == want  # a list of words
    for other in ["", "the digit 3 is at the top left", "the digit x is at the top left of the image .",
                  "a digit 3 is at the top left of the image .", "the digit 12 is at the top left of the image ."]:
        assert parse_caption(other) is None, other
