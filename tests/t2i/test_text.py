import numpy as np
import pytest
import tensorflow as tf

from t2i.config import TextConfig
from t2i.errors import T2IError
from t2i.text import OOV_ID, PAD_ID, CaptionTokenizer, normalize


@pytest.fixture(scope="module")
def tok():
    return CaptionTokenizer(TextConfig())


def _decode(tok, ids):
    vocab = tok.vocabulary
    return [vocab[i] for i in ids if i != PAD_ID]


def test_normalisation_folds_case_and_splits_punctuation():
    out = normalize(tf.constant(["The DIGIT 3, is at the top.", "ÉCOLE!"])).numpy()
    assert out[0].split() == [b"the", b"digit", b"3", b",", b"is", b"at", b"the", b"top", b"."]
    assert out[1].decode().split() == ["école", "!"]


def test_ids_padding_and_oov(tok):
    ids = tok(tf.constant(["the digit 3 is at the top of the digit 1 .", "the zebra 7"])).numpy()
    assert ids.shape == (2, 12) and ids.dtype == np.int64
    assert _decode(tok, ids[0]) == "the digit 3 is at the top of the digit 1 .".split()
    assert list(ids[1, :3]) == [tok.vocabulary.index("the"), OOV_ID, tok.vocabulary.index("7")]
    assert np.all(ids[1, 3:] == PAD_ID)
    assert tok.vocabulary[:2] == ["", "[UNK]"]


def test_direct_call_equals_dataset_map(tok):
    captions = ["the digit 1 is on the left of the digit 2 .", "The digit 9 is at the bottom right of the image."]
    direct = tok(tf.constant(captions)).numpy()
    batched = next(iter(tf.data.Dataset.from_tensor_slices(captions).batch(2).map(tok))).numpy()
    np.testing.assert_array_equal(direct, batched)
    unbatched = [t.numpy() for t in tf.data.Dataset.from_tensor_slices(captions).map(
        lambda c: tok(tf.expand_dims(c, 0))[0])]
    for row, single in zip(direct, unbatched):
        np.testing.assert_array_equal(row[:len(single)], single)
    fixed = tok(tf.constant(captions), length=14).numpy()
    assert fixed.shape == (2, 14)
    np.testing.assert_array_equal(fixed[:, :12], direct)


def test_encode_validates(tok):
    with pytest.raises(T2IError, match="empty"):
        tok.encode(["the digit 1 .", "   "])
    with pytest.raises(T2IError, match=r"has 17 tokens \(words and punctuation marks\); this model takes at most 16"):
        tok.encode(["the digit 1 is on the left of the digit 2 and the digit 3 too ."])
    with pytest.raises(T2IError, match="no captions"):
        tok.encode([])
    assert tok.unknown_words(["the zebra and the Zebra 7"]) == ["zebra", "and"]
