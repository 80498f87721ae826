"""Caption normalisation and tokenisation, as TensorFlow graph ops.

One implementation serves the `tf.data` training pipeline, generation and the
exported serving graph. It uses only ops that `tensorflow_model_server` links
in (docs/serving.md §1):

* `tensorflow_text.case_fold_utf8` (op `CaseFoldUTF8`): Unicode case folding;
* `tf.strings.regex_replace` (core `StaticRegexReplace`): punctuation split
  off into tokens of its own;
* `tensorflow_text.WhitespaceTokenizer` (op
  `TFText>WhitespaceTokenizeWithOffsetsV2`): whitespace tokens;
* `keras.layers.StringLookup` (core `LookupTableFindV2`): word ids with 0 for
  padding and 1 for the out-of-vocabulary token.

Example:

    tokenizer = CaptionTokenizer(config.text)
    ids = tokenizer(tf.constant(["The digit 3 is at the top of the digit 1."]))
    # ids: int64 [1, 12], padded with 0 to the longest caption in the batch.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from t2i.config import OOV_ID, PAD_ID, TextConfig  # noqa: F401 (re-exported)
from t2i.errors import T2IError
from t2i.text_numpy import check_caption


# Any ASCII punctuation character becomes a token of its own.
_PUNCTUATION = r"([!-/:-@\[-`{-~])"


def normalize(captions: tf.Tensor) -> tf.Tensor:
    """Case-folds and spaces out punctuation: string [B] -> string [B]."""
    captions = tf_text.case_fold_utf8(captions)
    return tf.strings.regex_replace(captions, _PUNCTUATION, r" \1 ")


class CaptionTokenizer(tf.Module):
    """Maps raw caption strings to padded word ids, inside the TF graph.

    Args:
        text_config: a `TextConfig` (vocabulary, maximum length, OOV token).

    Call arguments:
        captions: string tensor [B].
        length: optional static length to pad (and truncate) to; by default
            the longest caption in the batch.

    Returns:
        int64 [B, L]: 0 is padding, 1 the OOV token, words from 2.
    """

    def __init__(self, text_config: TextConfig, name: str = "caption_tokenizer"):
        super().__init__(name=name)
        import keras  # deferred: keeps `import t2i.text` light for tools

        self.text_config = text_config
        self._whitespace = tf_text.WhitespaceTokenizer()
        self.lookup = keras.layers.StringLookup(
            vocabulary=list(text_config.vocabulary),
            mask_token="",
            oov_token=text_config.oov_token,
            num_oov_indices=1,
            output_mode="int",
        )

    @property
    def vocabulary(self) -> list[str]:
        """Id -> token, including "" (padding) and the OOV token."""
        return ["", self.text_config.oov_token] + list(self.text_config.vocabulary)

    def words(self, captions: tf.Tensor) -> tf.RaggedTensor:
        """Normalised whitespace tokens: string [B] -> ragged string [B, None]."""
        return self._whitespace.tokenize(normalize(captions))

    def __call__(self, captions, length: int | None = None) -> tf.Tensor:
        return self.ids(self.words(tf.convert_to_tensor(captions, tf.string)), length)

    def ids(self, words: tf.RaggedTensor, length: int | None = None) -> tf.Tensor:
        """Padded int64 ids [B, L] of already tokenised `words` (ragged string [B, None])."""
        ids = tf.ragged.map_flat_values(self.lookup, words)
        ids = tf.cast(ids, tf.int64)
        shape = None if length is None else [None, length]
        return ids.to_tensor(default_value=PAD_ID, shape=shape)

    # --- eager helpers for command-line use ---------------------------------
    def encode(self, captions: list[str]) -> np.ndarray:
        """Validates and tokenises Python captions; raises `T2IError` on bad input.

        Empty captions and captions longer than `max_caption_length` tokens are
        errors. Unknown words map to the OOV token; `unknown_words` lists them.
        """
        if not captions:
            raise T2IError("no captions given")
        ragged = self.words(tf.constant(captions, tf.string))
        words = ragged.to_list()
        for caption, toks in zip(captions, words):
            check_caption(caption, len(toks), self.text_config.max_caption_length)
        return self.ids(ragged).numpy()

    def unknown_words(self, captions: list[str]) -> list[str]:
        """The distinct words of `captions` that are not in the vocabulary."""
        known = set(self.text_config.vocabulary)
        out: list[str] = []
        for toks in self.words(tf.constant(captions, tf.string)).to_list():
            for t in toks:
                w = t.decode("utf-8", errors="replace")
                if w not in known and w not in out:
                    out.append(w)
        return out
