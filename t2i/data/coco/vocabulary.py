"""The COCO vocabulary: the words of the training captions.

`build_vocabulary` counts the tokens of the training captions
(`t2i.text_numpy.normalize` + whitespace split, the tokens the in-graph
`CaptionTokenizer` produces); `resolve_coco_config(config)` fills an empty
`text.vocabulary` with it, and the run's config.json stores the result.
"""

from __future__ import annotations

import collections
from typing import Iterable

from t2i.config import ExperimentConfig
from t2i.errors import T2IError
from t2i.text_numpy import normalize

def caption_length(caption: str) -> int:
    """Number of tokens of a caption, as the in-graph tokenizer splits it."""
    return len(normalize(caption).split())


def build_vocabulary(captions: Iterable[str], min_count: int = 1) -> tuple[str, ...]:
    """The vocabulary of `captions`: words seen at least `min_count` times.

    Words are the tokens of `t2i.text_numpy.normalize` + whitespace split,
    i.e. the tokens the in-graph `CaptionTokenizer` looks up; rarer words map
    to the OOV token at lookup time.

    Args:
        captions: caption strings.
        min_count: the smallest number of occurrences a word needs.

    Returns:
        The words, by descending count, ties in alphabetical order.
    """
    if min_count < 1:
        raise T2IError(f"min_count must be >= 1, got {min_count}")
    counts = collections.Counter()
    for caption in captions:
        counts.update(normalize(caption).split())
    kept = [(-n, w) for w, n in counts.items() if n >= min_count]
    return tuple(w for _, w in sorted(kept))


def resolve_coco_config(config: ExperimentConfig) -> ExperimentConfig:
    """Returns `config` with `text.vocabulary` built from the training captions.

    The vocabulary counts the captions that training uses: the training
    split's first `data.coco.captions_per_image` captions per (existing)
    image, filtered to `data.coco.min_caption_length` <= tokens <
    `data.coco.max_train_caption_length`; words seen fewer than
    `data.coco.min_word_count` times are left out (they map to the OOV token).
    A config that already has a vocabulary, or whose dataset is not "coco",
    is returned unchanged, so this can be called on every config.

    Raises:
        T2IError: unreadable COCO files, or no training caption at all.
    """
    if config.data.dataset != "coco" or config.text.vocabulary:
        return config
    from t2i.data.coco.loading import load_coco
    from t2i.data.coco.splits import length_filtered

    data = load_coco(config)
    train = length_filtered(data.splits["train"], config)
    vocabulary = build_vocabulary(train.captions, config.data.coco.min_word_count)
    if not vocabulary:
        raise T2IError(f"{data.source}: no training caption has a word seen "
                       f"{config.data.coco.min_word_count} times (data.coco.min_word_count)")
    return config.override({"text.vocabulary": vocabulary})
