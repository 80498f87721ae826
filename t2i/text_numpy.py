"""Caption tokenisation in plain Python/NumPy, for backends without TensorFlow.

`NumpyCaptionTokenizer` reproduces `t2i.text.CaptionTokenizer` (the in-graph
tokenizer that the exported model uses) without importing TensorFlow, so that
`KERAS_BACKEND=jax t2i train` runs where TensorFlow is not installed:

* Unicode case folding (`str.casefold`, like tf-text's `case_fold_utf8`);
* every ASCII punctuation character spaced out into a token of its own;
* whitespace splitting (`str.split`, Unicode whitespace);
* the same ids: 0 padding, 1 out-of-vocabulary, words from 2.

`tests/t2i/test_text_numpy.py` checks that both give identical ids. The export
and serving graphs keep tokenising in TensorFlow; this class only feeds
training and evaluation inputs.
"""

from __future__ import annotations

import re

import numpy as np

from t2i.config import OOV_ID, PAD_ID, TextConfig  # noqa: F401 (re-exported)
from t2i.errors import T2IError


_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def normalize(caption: str) -> str:
    """Case-folds and spaces out punctuation (the same as `t2i.text.normalize`)."""
    return _PUNCTUATION.sub(r" \1 ", caption.casefold())


def check_caption(caption, num_words: int, limit: int) -> None:
    """The one caption check of t2i's Python entry points (`CaptionTokenizer.encode`,
    `NumpyCaptionTokenizer.encode`, the demo): a caption needs a word and at most `limit`
    tokens (words and punctuation marks). Raises `T2IError` naming the caption. The
    exported graph checks the same in TensorFlow ops (export/export_savedmodel.py)."""
    if num_words == 0:
        raise T2IError(f"caption {caption!r} is empty: it has no words")
    if num_words > limit:
        raise T2IError(f"caption {caption!r} has {num_words} tokens (words and punctuation marks); "
                       f"this model takes at most {limit}")


class NumpyCaptionTokenizer:
    """Maps caption strings to padded int64 word ids, in NumPy.

    Args:
        text_config: a `TextConfig` (vocabulary, maximum length, OOV token).

    Call arguments:
        captions: a sequence (or NumPy array) of str or UTF-8 bytes.
        length: optional length to pad (and truncate) to; by default the
            longest caption.
    """

    def __init__(self, text_config: TextConfig):
        self.text_config = text_config
        self._ids = {w: i + 2 for i, w in enumerate(text_config.vocabulary)}
        self._cache: dict[str, np.ndarray] = {}

    @property
    def vocabulary(self) -> list[str]:
        """Id -> token, including "" (padding) and the OOV token."""
        return ["", self.text_config.oov_token] + list(self.text_config.vocabulary)

    def words(self, caption) -> list[str]:
        if isinstance(caption, bytes):
            caption = caption.decode("utf-8")
        return normalize(str(caption)).split()

    def _row(self, caption) -> np.ndarray:
        row = self._cache.get(caption)
        if row is None:
            row = np.array([self._ids.get(w, OOV_ID) for w in self.words(caption)], np.int64)
            if len(self._cache) < 100_000:
                self._cache[caption] = row
        return row

    def __call__(self, captions, length: int | None = None) -> np.ndarray:
        rows = [self._row(c) for c in captions]
        width = length if length is not None else max((len(r) for r in rows), default=0)
        out = np.full((len(rows), width), PAD_ID, np.int64)
        for i, r in enumerate(rows):
            r = r[:width]
            out[i, :len(r)] = r
        return out

    def encode(self, captions: list[str]) -> np.ndarray:
        """Validates and tokenises captions, like `CaptionTokenizer.encode`."""
        if not captions:
            raise T2IError("no captions given")
        for caption in captions:
            check_caption(caption, len(self.words(caption)), self.text_config.max_caption_length)
        return self(captions)
