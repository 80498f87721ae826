"""MNIST with captions: 60x60 composites of one or two digits, with a caption.

This follows the original `mnist-captions/create-captions.py` (docs/model.md
§11) for the caption types, templates and placements. For each example:

1. a caption type k is drawn uniformly from 0..7;
2. two digit indices i, j are drawn uniformly, with replacement; a and b are
   their labels (types 4..7 use only the first digit);
3. the digits are pasted by assignment into a 60x60 canvas of zeros, a first
   and then b (b overwrites any overlap), at the offsets below.

| k | caption                                            | layout            |
|---|----------------------------------------------------|-------------------|
| 0 | the digit {a} is on the left of the digit {b} .    | a left, b right   |
| 1 | the digit {b} is on the right of the digit {a} .   | a left, b right   |
| 2 | the digit {a} is at the top of the digit {b} .     | a top, b bottom   |
| 3 | the digit {b} is at the bottom of the digit {a} .  | a top, b bottom   |
| 4 | the digit {a} is at the top left of the image .    | a in a corner     |
| 5 | the digit {a} is at the bottom right of the image .|                   |
| 6 | the digit {a} is at the top right of the image .   |                   |
| 7 | the digit {a} is at the bottom left of the image . |                   |

Offsets (row r, column c of a digit's top-left corner, bounds inclusive):
left/right share r in [16, 18], left c in [0, 4], right c in [28, 32];
top/bottom share c in [16, 18], top r in [0, 2], bottom r in [30, 32];
corners: top r in [0, 2], bottom r in [30, 32], left c in [0, 4],
right c in [28, 32].

Held-out protocol (t2i's, in place of the original per-slot "banned" digits):
a *composition* is a layout with its digits, e.g. "2 left of 9" (captions
k=0 and k=1 both describe it), "6 above 2" (k=2, k=3) or "4 top left" (k=4).
Held-out compositions never appear in training or validation composites, under
either phrasing, and are used to show generalisation to unseen combinations.

Example:

    sampler = CompositeSampler(digits.x_train, digits.y_train, held_out=["2 left of 9"])
    batch = sampler.sample(100, np.random.default_rng(0))  # which="seen"
    batch.images.shape  # (100, 60, 60, 1), float32 in [0, 1]
"""

from __future__ import annotations

import dataclasses
import re
from typing import Iterable

import numpy as np

from t2i.data.catalog import DIGITS, WordGroup
from t2i.errors import T2IError

CANVAS_SIZE = 60
DIGIT_SIZE = 28
NUM_TYPES = 8
CAPTION_LENGTH = 12
# Same-layout negatives (`t2i.samplers`) swap a caption's digits for each other digit.
SWAP_GROUPS = (WordGroup(DIGITS),)

PAIR_RELATIONS = ("left", "above")
CORNERS = ("top left", "top right", "bottom left", "bottom right")
RELATIONS = PAIR_RELATIONS + CORNERS
NUM_COMPOSITIONS = 10 * 10 * len(PAIR_RELATIONS) + 10 * len(CORNERS)  # 240

TEMPLATES = (
    "the digit {a} is on the left of the digit {b} .",
    "the digit {b} is on the right of the digit {a} .",
    "the digit {a} is at the top of the digit {b} .",
    "the digit {b} is at the bottom of the digit {a} .",
    "the digit {a} is at the top left of the image .",
    "the digit {a} is at the bottom right of the image .",
    "the digit {a} is at the top right of the image .",
    "the digit {a} is at the bottom left of the image .",
)
# Caption type k (4..7) -> corner, and corner -> k.
CORNER_OF_TYPE = {4: "top left", 5: "bottom right", 6: "top right", 7: "bottom left"}
TYPE_OF_CORNER = {corner: k for k, corner in CORNER_OF_TYPE.items()}

ACCEPTED_FORMS = ("'A left of B', 'A right of B', 'A above B', 'A below B', "
                  "'A top left', 'A top right', 'A bottom left', 'A bottom right' "
                  "(also 'A in the top left corner'), with digits A, B in 0-9")


@dataclasses.dataclass(frozen=True)
class Composition:
    """A layout with its digits.

    Attributes:
        relation: "left" (a left of b), "above" (a above b), or a corner
            "top left", "top right", "bottom left", "bottom right" (a alone).
        a: the left / top / only digit, 0..9.
        b: the right / bottom digit, 0..9; None for corners.

    `str()` gives the canonical form: "2 left of 9", "6 above 2", "4 top left".
    """

    relation: str
    a: int
    b: int | None = None

    def __post_init__(self):
        if self.relation not in RELATIONS:
            raise T2IError(f"unknown composition relation {self.relation!r}; expected one of {RELATIONS}")
        if not (isinstance(self.a, (int, np.integer)) and 0 <= self.a <= 9):
            raise T2IError(f"composition digit a must be 0..9, got {self.a!r}")
        if self.relation in PAIR_RELATIONS:
            if not (isinstance(self.b, (int, np.integer)) and 0 <= self.b <= 9):
                raise T2IError(f"composition {self.relation!r} needs a second digit b in 0..9, got {self.b!r}")
        elif self.b is not None:
            raise T2IError(f"corner composition {self.relation!r} takes one digit, got b={self.b!r}")
        object.__setattr__(self, "a", int(self.a))
        if self.b is not None:
            object.__setattr__(self, "b", int(self.b))

    def __str__(self) -> str:
        if self.relation == "left":
            return f"{self.a} left of {self.b}"
        if self.relation == "above":
            return f"{self.a} above {self.b}"
        return f"{self.a} {self.relation}"

    @property
    def index(self) -> int:
        """A dense id in 0..239: pairs 0..199 (relation, a, b), corners 200..239."""
        if self.relation in PAIR_RELATIONS:
            return PAIR_RELATIONS.index(self.relation) * 100 + self.a * 10 + self.b
        return 200 + CORNERS.index(self.relation) * 10 + self.a

    @property
    def types(self) -> tuple[int, ...]:
        """The caption types k that describe this composition."""
        if self.relation == "left":
            return (0, 1)
        if self.relation == "above":
            return (2, 3)
        return (TYPE_OF_CORNER[self.relation],)

    @staticmethod
    def from_index(index: int) -> "Composition":
        """Inverse of `index`."""
        index = int(index)
        if not 0 <= index < NUM_COMPOSITIONS:
            raise T2IError(f"composition index must be in 0..{NUM_COMPOSITIONS - 1}, got {index}")
        if index < 200:
            return Composition(PAIR_RELATIONS[index // 100], (index % 100) // 10, index % 10)
        return Composition(CORNERS[(index - 200) // 10], index % 10)


_DIGIT = r"(\d)"
_CORNER = r"(top left|top right|bottom left|bottom right)"
_PATTERNS = (
    (re.compile(rf"^{_DIGIT} (?:is )?(?:on the )?left of {_DIGIT}$"), lambda x, y: Composition("left", x, y)),
    (re.compile(rf"^{_DIGIT} (?:is )?(?:on the )?right of {_DIGIT}$"), lambda x, y: Composition("left", y, x)),
    (re.compile(rf"^{_DIGIT} (?:is )?above {_DIGIT}$"), lambda x, y: Composition("above", x, y)),
    (re.compile(rf"^{_DIGIT} (?:is )?below {_DIGIT}$"), lambda x, y: Composition("above", y, x)),
    (re.compile(rf"^{_DIGIT} (?:is )?(?:(?:in|at) (?:the )?)?{_CORNER}(?: corner)?$"),
     lambda x, corner: Composition(corner, x)),
)


def parse_composition(text) -> Composition:
    """Parses "2 left of 9", "9 right of 2", "6 above 2", "2 below 6",
    "4 top left", "4 in the top left corner", ... into a `Composition`.

    A `Composition` is returned unchanged. Case and extra spaces are ignored.

    Raises:
        T2IError: naming the text and listing the accepted forms.
    """
    if isinstance(text, Composition):
        return text
    if not isinstance(text, str):
        raise T2IError(f"a composition must be text like '2 left of 9', got {text!r}")
    norm = " ".join(text.lower().split())
    for pattern, build in _PATTERNS:
        m = pattern.match(norm)
        if m:
            g1, g2 = m.groups()
            return build(int(g1), g2 if not g2.isdigit() else int(g2))
    raise T2IError(f"cannot parse composition {text!r}; accepted forms: {ACCEPTED_FORMS}")


def all_compositions() -> tuple[Composition, ...]:
    """The 240 compositions, in `index` order."""
    return tuple(Composition.from_index(i) for i in range(NUM_COMPOSITIONS))


def draw_held_out(n: int, seed: int) -> tuple[str, ...]:
    """Draws `n` distinct compositions (canonical strings) by `seed`.

    Draws uniformly without replacement from all 240 compositions
    (10 * 10 * 2 pairs + 10 * 4 corners).
    """
    if not 0 <= n <= NUM_COMPOSITIONS:
        raise T2IError(f"cannot hold out {n} compositions: there are {NUM_COMPOSITIONS}")
    picks = np.random.default_rng(seed).choice(NUM_COMPOSITIONS, size=n, replace=False)
    return tuple(str(Composition.from_index(i)) for i in picks)


def composition_of(k: int, a: int, b: int | None = None) -> Composition:
    """The composition that caption type `k` with digits `a`, `b` shows.

    k 0, 1 -> "a left of b"; k 2, 3 -> "a above b"; k 4..7 -> a in a corner
    (b is ignored).
    """
    k = int(k)
    if k in (0, 1):
        return Composition("left", a, b)
    if k in (2, 3):
        return Composition("above", a, b)
    if k in CORNER_OF_TYPE:
        return Composition(CORNER_OF_TYPE[k], a)
    raise T2IError(f"caption type k must be 0..7, got {k}")


# Where the digits of each caption type lie (`digit_slots`): the middle of each offset range
# of `CompositeSampler._positions`, and the line between the two digits of a pair. MNIST
# digits have an empty border of 4 pixels, so the ink of the left (top) digit ends before
# column (row) 28 and that of the right (bottom) one begins after 32: 30 splits them.
CORNER_OFFSETS = {4: (1, 2), 5: (31, 30), 6: (1, 30), 7: (31, 2)}
PAIR_SPLIT = 30


@dataclasses.dataclass(frozen=True)
class DigitSlot:
    """One digit of a caption type: which one ("a" or "b"), the part of the canvas
    that holds its ink and no other digit's (rows, columns: slices), and its nominal
    top-left offset (row, column)."""

    digit: str
    rows: slice
    cols: slice
    offset: tuple[int, int]


def digit_slots(k: int) -> tuple[DigitSlot, ...]:
    """The digits of caption type `k` and where they lie (`DigitSlot`): two for pairs,
    one for corners."""
    k = int(k)
    whole, first, second = slice(0, CANVAS_SIZE), slice(0, PAIR_SPLIT), slice(PAIR_SPLIT, CANVAS_SIZE)
    if k in (0, 1):
        return (DigitSlot("a", whole, first, (17, 2)), DigitSlot("b", whole, second, (17, 30)))
    if k in (2, 3):
        return (DigitSlot("a", first, whole, (1, 17)), DigitSlot("b", second, whole, (31, 17)))
    if k in CORNER_OFFSETS:
        return (DigitSlot("a", whole, whole, CORNER_OFFSETS[k]),)
    raise T2IError(f"caption type k must be 0..7, got {k}")


_TEMPLATE_PATTERNS = tuple(
    re.compile("^" + t.removesuffix(" .").replace("{a}", r"(?P<a>\d)").replace("{b}", r"(?P<b>\d)") + "$")
    for t in TEMPLATES)


def parse_caption(words) -> tuple[int, int, int] | None:
    """(k, a, b) of a caption in one of the TEMPLATES' forms, with or without its final
    period (b = -1 for corners), from its text or its list of words; None for any other
    caption."""
    words = words.lower().split() if isinstance(words, str) else list(words)
    text = " ".join(words[:-1] if words[-1:] == ["."] else words)
    for k, pattern in enumerate(_TEMPLATE_PATTERNS):
        m = pattern.match(text)
        if m:
            return k, int(m.group("a")), int(m.group("b")) if k < 4 else -1
    return None


def caption(k: int, a: int, b: int | None = None) -> str:
    """The caption of type `k` for digits `a` (left/top/only) and `b` (right/bottom)."""
    composition_of(k, a, b)  # validates
    return TEMPLATES[k].format(a=a, b=b)


def captions_for(composition) -> list[str]:
    """Captions of a composition: both phrasings for pairs, one for corners."""
    c = parse_composition(composition)
    return [caption(k, c.a, c.b) for k in c.types]


def held_out_captions(config) -> list[str]:
    """One caption per held-out composition of a run ("the digit 2 is on the left of the
    digit 9 .": the first phrasing of each)."""
    return [captions_for(parse_composition(c))[0] for c in config.data.held_out]


# Layouts (type, a, b) of the seen captions the demo and the sample figures offer; those a
# run holds out are left out.
EXAMPLES = ((0, 7, 1), (2, 3, 8), (1, 5, 0), (4, 6, None), (3, 4, 9), (5, 2, None),
            (0, 1, 4), (7, 8, None), (2, 9, 6), (6, 0, None))


def seen_examples(config) -> list[str]:
    """Captions of `EXAMPLES` whose compositions a run saw in training."""
    held = {parse_composition(h) for h in config.data.held_out}
    return [caption(k, a, b) for k, a, b in EXAMPLES if composition_of(k, a, b) not in held]


def composition_indices(types: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Vectorised `composition_of(k, a, b).index`: int [n] -> int64 [n]."""
    types, a, b = (np.asarray(v, np.int64) for v in (types, a, b))
    corner = np.array([0, 0, 0, 0, 0, 3, 1, 2], np.int64)[types]  # CORNERS position of types 4..7
    return np.where(types < 2, a * 10 + b,
                    np.where(types < 4, 100 + a * 10 + b, 200 + corner * 10 + a))


# [8, 10, 10] table of every caption, indexed by (k, a, b); corners ignore b.
_CAPTION_TABLE = np.array(
    [[[TEMPLATES[k].format(a=a, b=b) for b in range(10)] for a in range(10)] for k in range(NUM_TYPES)])


@dataclasses.dataclass
class Composites:
    """A batch of MNIST-with-captions examples.

    Attributes:
        images: float32 [n, 60, 60, 1] in [0, 1] (uint8 0..255 when sampled
            with dtype="uint8").
        captions: str [n].
        types: int64 [n], caption type k in 0..7.
        a: int64 [n], label of the left / top / only digit.
        b: int64 [n], label of the right / bottom digit; -1 for corners.
        held_out: bool [n], whether the example's composition is held out.
        index_a: int64 [n], index into the sampler's digits of digit a.
        index_b: int64 [n], index of digit b; -1 for corners.
    """

    images: np.ndarray
    captions: np.ndarray
    types: np.ndarray
    a: np.ndarray
    b: np.ndarray
    held_out: np.ndarray
    index_a: np.ndarray
    index_b: np.ndarray

    def __len__(self) -> int:
        return len(self.types)

    def compositions(self) -> list[str]:
        """Canonical composition of every example, e.g. "2 left of 9"."""
        return [str(composition_of(k, a, b if b >= 0 else None))
                for k, a, b in zip(self.types.tolist(), self.a.tolist(), self.b.tolist())]


class CompositeSampler:
    """Draws MNIST-with-captions composites from a set of digits.

    Args:
        digits: uint8 [N, 28, 28], pixel values 0..255.
        labels: int [N], 0..9.
        held_out: compositions (strings or `Composition`s) to hold out.

    `sample(n, rng, which)` draws n examples with NumPy generator `rng`:

    * "seen": the original protocol, rejecting (and redrawing) every example
      whose composition is held out;
    * "held_out": only held-out compositions, each drawn uniformly from the
      held-out list, with a random phrasing and random digits of its labels;
    * "all": the original protocol without rejection.
    """

    def __init__(self, digits: np.ndarray, labels: np.ndarray, held_out: Iterable = ()):
        digits = np.asarray(digits)
        labels = np.asarray(labels).astype(np.int64)
        if digits.dtype != np.uint8 or digits.ndim != 3 or digits.shape[1:] != (DIGIT_SIZE, DIGIT_SIZE):
            raise T2IError(f"CompositeSampler needs uint8 digits [N, 28, 28], got {digits.dtype} {digits.shape}")
        if labels.shape != (len(digits),) or len(digits) == 0:
            raise T2IError(f"CompositeSampler needs one label per digit, got {labels.shape} for {len(digits)} digits")
        if labels.min() < 0 or labels.max() > 9:
            raise T2IError("CompositeSampler labels must be 0..9")
        self.digits = digits
        self.labels = labels
        self.held_out: tuple[Composition, ...] = tuple(dict.fromkeys(parse_composition(c) for c in held_out))
        self._held_table = np.zeros(NUM_COMPOSITIONS, bool)
        self._held_table[[c.index for c in self.held_out]] = True
        # Digits grouped by label, for drawing a digit of a given label.
        self._by_label = np.argsort(labels, kind="stable")
        counts = np.bincount(labels, minlength=10)
        self._label_count = counts
        self._label_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self._accept = 1.0 - self._held_probability(counts / counts.sum())

    def _held_probability(self, freq: np.ndarray) -> float:
        """P(a draw of the original protocol shows a held-out composition)."""
        p = 0.0
        for c in self.held_out:
            if c.relation in PAIR_RELATIONS:
                p += 2 / NUM_TYPES * freq[c.a] * freq[c.b]
            else:
                p += 1 / NUM_TYPES * freq[c.a]
        return p

    def is_held_out(self, composition) -> bool:
        """Whether `composition` (a string or `Composition`) is held out."""
        return bool(self._held_table[parse_composition(composition).index])

    def sample(self, n: int, rng: np.random.Generator, which: str = "seen",
               dtype: str = "float32", digit_transform=None) -> Composites:
        """Draws `n` composites; see the class docstring for `which`.

        Args:
            n: number of examples.
            rng: a `np.random.Generator`; the result depends only on its state.
            which: "seen", "held_out" or "all".
            dtype: "float32" (images in [0, 1]) or "uint8" (0..255).
            digit_transform: optional callable uint8 [m, 28, 28] -> uint8
                [m, 28, 28] applied to the digits just before pasting (first
                all a digits, then the b digits of pair types), e.g. a
                `t2i.data.augment.DigitAugmentation` bound to its own
                generator; it does not touch `rng`.

        Returns:
            `Composites` with images [n, 60, 60, 1].
        """
        if n < 0:
            raise T2IError(f"cannot sample {n} composites")
        if dtype not in ("float32", "uint8"):
            raise T2IError(f"composite dtype must be 'float32' or 'uint8', got {dtype!r}")
        if which == "all":
            d = self._draw(n, rng)
        elif which == "seen":
            d = self._draw_seen(n, rng)
        elif which == "held_out":
            d = self._draw_held_out(n, rng)
        else:
            raise T2IError(f"which must be 'seen', 'held_out' or 'all', got {which!r}")
        images = self._paste(d, digit_transform)
        if dtype == "float32":
            images = images.astype(np.float32)
            np.divide(images, np.float32(255.0), out=images)
        pair = d["types"] < 4
        b = np.where(pair, d["b"], -1)
        return Composites(
            images=images[..., None],
            captions=_CAPTION_TABLE[d["types"], d["a"], np.maximum(b, 0)],
            types=d["types"], a=d["a"], b=b,
            held_out=self._held_table[composition_indices(d["types"], d["a"], np.maximum(b, 0))],
            index_a=d["i"], index_b=np.where(pair, d["j"], -1))

    # --- drawing ----------------------------------------------------------------
    def _positions(self, types: np.ndarray, rng: np.random.Generator) -> dict:
        """Top-left offsets of digits a and b for caption types [n] (docs/model.md §11)."""
        n = len(types)
        shared = rng.integers(0, 3, n)
        a_row, b_row = rng.integers(0, 3, n), rng.integers(0, 3, n)
        a_col, b_col = rng.integers(0, 5, n), rng.integers(0, 5, n)
        horizontal, vertical = types < 2, (types >= 2) & (types < 4)
        top = np.isin(types, (4, 6))  # corners: top left, top right
        left = np.isin(types, (4, 7))  # corners: top left, bottom left
        ra = np.where(horizontal, 16 + shared, np.where(vertical | top, a_row, 30 + a_row))
        ca = np.where(vertical, 16 + shared, np.where(horizontal | left, a_col, 28 + a_col))
        rb = np.where(horizontal, 16 + shared, 30 + b_row)
        cb = np.where(vertical, 16 + shared, 28 + b_col)
        return {"ra": ra, "ca": ca, "rb": rb, "cb": cb}

    def _draw(self, n: int, rng: np.random.Generator) -> dict:
        """The original protocol: k uniform in 0..7, digits i, j uniform with replacement."""
        types = rng.integers(0, NUM_TYPES, n)
        i = rng.integers(0, len(self.digits), n)
        j = rng.integers(0, len(self.digits), n)
        d = {"types": types, "i": i, "j": j, "a": self.labels[i], "b": self.labels[j]}
        d.update(self._positions(types, rng))
        return d

    def _draw_seen(self, n: int, rng: np.random.Generator) -> dict:
        if not self.held_out:
            return self._draw(n, rng)
        if self._accept <= 0.0:
            raise T2IError("every composition that these digits can form is held out: nothing left to sample")
        parts, have = [], 0
        while have < n:
            want = n - have
            m = min(int(want / self._accept * 1.1) + 16, 50 * want + 100_000)
            d = self._draw(m, rng)
            keep = ~self._held_table[composition_indices(d["types"], d["a"], d["b"])]
            d = {key: v[keep][:want] for key, v in d.items()}
            parts.append(d)
            have += len(d["types"])
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    def _digit_of_label(self, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A uniformly drawn digit index of each given label: int [n] -> int64 [n]."""
        offsets = (rng.random(len(labels)) * self._label_count[labels]).astype(np.int64)
        return self._by_label[self._label_start[labels] + offsets]

    def _draw_held_out(self, n: int, rng: np.random.Generator) -> dict:
        if not self.held_out:
            raise T2IError("no compositions are held out: cannot sample which='held_out'")
        needed = {c.a for c in self.held_out} | {c.b for c in self.held_out if c.b is not None}
        absent = sorted(x for x in needed if self._label_count[x] == 0)
        if absent:
            raise T2IError(f"held-out compositions need digits {absent}, which these digits lack")
        held = np.array([c.index for c in self.held_out])
        comps = held[rng.integers(0, len(held), n)]
        phrasing = rng.integers(0, 2, n)
        corner_type = np.array([TYPE_OF_CORNER[c] for c in CORNERS])
        types = np.where(comps < 100, phrasing,
                         np.where(comps < 200, 2 + phrasing, corner_type[np.clip((comps - 200) // 10, 0, 3)]))
        a = np.where(comps < 200, (comps % 100) // 10, comps % 10)
        b = np.where(comps < 200, comps % 10, 0)
        i = self._digit_of_label(a, rng)
        j = self._digit_of_label(np.where(comps < 200, b, a), rng)  # unused for corners
        d = {"types": types, "i": i, "j": j, "a": a, "b": b}
        d.update(self._positions(types, rng))
        return d

    # --- pasting ------------------------------------------------------------------
    def _paste(self, d: dict, digit_transform=None) -> np.ndarray:
        """uint8 [n, 60, 60]: digit a pasted first, then digit b for pair types."""
        transform = digit_transform or (lambda x: x)
        n = len(d["types"])
        canvas = np.zeros((n, CANVAS_SIZE, CANVAS_SIZE), np.uint8)
        if n == 0:
            return canvas
        span = np.arange(DIGIT_SIZE)
        rows = np.arange(n)[:, None, None]
        canvas[rows, (d["ra"][:, None] + span)[:, :, None], (d["ca"][:, None] + span)[:, None, :]] = \
            transform(self.digits[d["i"]])
        pair = np.flatnonzero(d["types"] < 4)
        if len(pair):
            canvas[pair[:, None, None], (d["rb"][pair, None] + span)[:, :, None],
                   (d["cb"][pair, None] + span)[:, None, :]] = transform(self.digits[d["j"][pair]])
        return canvas
