"""The NumPy tokenizer gives the in-graph tokenizer's ids, without TensorFlow."""

import numpy as np
import pytest

from t2i import config as C
from t2i.data.mnist_captions import _CAPTION_TABLE
from t2i.errors import T2IError
from t2i.text import CaptionTokenizer
from t2i.text_numpy import NumpyCaptionTokenizer

ODD = [
    "The Digit 3 is AT the top of the digit 1.",
    "the digit 7 is on the left of the digit 1 .",
    "  the\tdigit\n5 is at the bottom right of the image!!  ",
    "a zebra (striped), grazing; near 2 giraffes: \"tall\" & 'brown'?",
    "Ünïcode ÉCOLE straße ΣΊΣΥΦΟΣ naïve café",
    "digit-9/left_of[the]{image}~`^",
    "unknownword 4 ...",
]


def test_same_ids_as_graph_tokenizer_on_every_mnist_caption_and_odd_text():
    text = C.mnist_captions().text
    captions = sorted(set(_CAPTION_TABLE.reshape(-1).tolist())) + ODD
    graph = CaptionTokenizer(text)(captions).numpy()
    numpy = NumpyCaptionTokenizer(text)(captions)
    assert graph.shape == numpy.shape and graph.shape[0] == len(captions)
    np.testing.assert_array_equal(numpy, graph)
    assert (numpy == 1).any()  # unknown words were exercised


def test_padding_and_length():
    tok = NumpyCaptionTokenizer(C.mnist_captions().text)
    ids = tok(["the digit 1", "the digit 1 is at the top left of the image ."], length=16)
    assert ids.shape == (2, 16) and ids.dtype == np.int64
    assert (ids[0, 3:] == 0).all() and (ids[1, 12:] == 0).all() and (ids[1, :12] > 1).all()
    assert tok(["the digit 1 is"], length=2).tolist() == tok(["the digit"]).tolist()  # truncation
    assert tok([b"the digit 1"]).tolist() == tok(["the digit 1"]).tolist()


def test_encode_validates_like_graph_tokenizer():
    tok = NumpyCaptionTokenizer(C.mnist_captions().text)
    with pytest.raises(T2IError, match="empty"):
        tok.encode(["  . "[:0] + "   "])
    with pytest.raises(T2IError, match="at most 16"):
        tok.encode(["the digit " * 9])
    with pytest.raises(T2IError, match="no captions"):
        tok.encode([])
    assert tok.vocabulary[:2] == ["", "[UNK]"] and tok.vocabulary[2:] == list(C.mnist_captions().text.vocabulary)
