import numpy as np
import pytest
from keras import ops

from t2i.layers.caption_encoder import CaptionEncoder
from tests.harness import run_layer_test

EPS = np.finfo(np.float32).eps


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def numpy_lstm(x_seq, kernel, recurrent, bias, h0):
    """Keras gate order [i, f, c, o]; returns the state after each input."""
    h, c, out = h0.copy(), np.zeros_like(h0), []
    for x in x_seq:
        z = x @ kernel + h @ recurrent + bias
        i, f, g, o = np.split(z, 4)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.array(out)


def _encoder(rng):
    layer = CaptionEncoder(vocab_size=9, units=5, embedding_dim=0, init_stddev=0.3)
    layer.build((None, None))
    layer.initial_state.assign(rng.normal(size=(5,)).astype("float32"))
    return layer


def test_contract():
    tokens = np.array([[3, 4, 5, 0], [2, 2, 0, 0]])
    run_layer_test(CaptionEncoder, dict(vocab_size=9, units=5, embedding_dim=0, init_stddev=0.01),
                   (tokens,), [(2, 4, 10), (2, 4)], num_weights=7)
    run_layer_test(CaptionEncoder, dict(vocab_size=9, units=5, embedding_dim=3, init_stddev=0.01),
                   (tokens,), [(2, 4, 10), (2, 4)], num_weights=8)


def test_states_match_a_numpy_bidirectional_lstm(rng):
    layer = _encoder(rng)
    tokens = np.array([[3, 7, 4, 8, 0, 0]])
    words, mask = layer(tokens)
    words = ops.convert_to_numpy(words)[0]
    h0 = ops.convert_to_numpy(layer.initial_state)
    fwd, bwd = layer.bidirectional.forward_layer, layer.bidirectional.backward_layer
    onehot = np.eye(9, dtype="float32")[tokens[0, :4]]

    def weights(l):
        cell = l.cell
        return [ops.convert_to_numpy(w) for w in (cell.kernel, cell.recurrent_kernel, cell.bias)]

    ref_f = numpy_lstm(onehot, *weights(fwd), h0)
    # The backward state of word j has read words L-1 .. j: it lines up with word j.
    ref_b = numpy_lstm(onehot[::-1], *weights(bwd), h0)[::-1]
    np.testing.assert_allclose(words[:4, :5], ref_f, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(words[:4, 5:], ref_b, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(words[4:], 0.0)
    np.testing.assert_array_equal(ops.convert_to_numpy(mask)[0], [1, 1, 1, 1, 0, 0])


def test_padding_does_not_change_word_states(rng):
    layer = _encoder(rng)
    short, _ = layer(np.array([[3, 7, 4]]))
    long, _ = layer(np.array([[3, 7, 4, 0, 0, 0, 0]]))
    np.testing.assert_allclose(ops.convert_to_numpy(short)[0], ops.convert_to_numpy(long)[0, :3], rtol=1e-5, atol=1e-6)


def test_captions_in_a_batch_do_not_mix(rng):
    # The original code reversed the batch axis for the backward LSTM; here a
    # caption's states must not depend on its batch neighbours.
    layer = _encoder(rng)
    alone, _ = layer(np.array([[3, 7, 4, 2]]))
    together, _ = layer(np.array([[5, 5, 6, 0], [3, 7, 4, 2], [8, 0, 0, 0]]))
    np.testing.assert_allclose(ops.convert_to_numpy(alone)[0], ops.convert_to_numpy(together)[1], rtol=1e-5, atol=1e-6)


def test_forward_encoder_matches_a_numpy_lstm_and_sees_only_earlier_words(rng):
    layer = CaptionEncoder(vocab_size=9, units=5, init_stddev=0.3, direction="forward")
    layer.build((None, None))
    layer.initial_state.assign(rng.normal(size=(10,)).astype("float32"))
    tokens = np.array([[3, 7, 4, 8, 0], [3, 7, 2, 8, 0]])  # differ at word 2 only
    words = ops.convert_to_numpy(layer(tokens)[0])
    assert words.shape == (2, 5, 10)  # the same width as the bidirectional pair
    cell = layer.forward_lstm.cell
    ref = numpy_lstm(np.eye(9, dtype="float32")[tokens[0, :4]],
                     *[ops.convert_to_numpy(w) for w in (cell.kernel, cell.recurrent_kernel, cell.bias)],
                     ops.convert_to_numpy(layer.initial_state))
    np.testing.assert_allclose(words[0, :4], ref, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(words[:, 4], 0.0)
    # Words before the change keep their states; from it on they differ.
    # Two rows of one batch differ in rounding: 2 steps of 7-term gate sums (one-hot, 5 recurrent, bias), O(1).
    np.testing.assert_allclose(words[0, :2], words[1, :2], rtol=1e-6, atol=2 * 7 * EPS)
    assert np.abs(words[0, 2:4] - words[1, 2:4]).max() > 1e-3
    # The bidirectional encoder's earlier words do see the change (through the backward pass).
    both = ops.convert_to_numpy(_encoder(rng)(tokens)[0])
    assert np.abs(both[0, :2] - both[1, :2]).max() > 1e-4


def test_forward_encoder_contract_and_bad_direction():
    tokens = np.array([[3, 4, 5, 0], [2, 2, 0, 0]])
    run_layer_test(CaptionEncoder, dict(vocab_size=9, units=5, init_stddev=0.01, direction="forward"),
                   (tokens,), [(2, 4, 10), (2, 4)], num_weights=4)
    with pytest.raises(ValueError, match="direction"):
        CaptionEncoder(vocab_size=9, units=5, direction="backward")


def test_embedding_encoder_matches_numpy_and_has_no_recurrence(rng):
    layer = CaptionEncoder(vocab_size=9, units=16, init_stddev=0.3, direction="embedding")
    layer.build((None, None))
    layer.position_gain.assign(rng.normal(size=(4,)).astype("float32"))
    tokens = np.array([[3, 7, 4, 8, 0], [5, 7, 4, 0, 0]])
    words = ops.convert_to_numpy(layer(tokens)[0])
    assert words.shape == (2, 5, 32)
    table = ops.convert_to_numpy(layer.word_embedding.embeddings)
    gain = ops.convert_to_numpy(layer.position_gain)
    # Reference: [E x_j ; g * (sin(j w_k), cos(j w_k))], w_k = 10000^(-k/K), K = 2 here.
    j = np.arange(5.0)[:, None]
    w = 10000.0 ** (-np.arange(2) / 2)
    codes = np.concatenate([np.sin(j * w), np.cos(j * w)], -1) * gain
    for b in range(2):
        length = int((tokens[b] > 0).sum())
        ref = np.concatenate([table[tokens[b, :length]], codes[:length]], -1)
        np.testing.assert_allclose(words[b, :length], ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(words[b, length:], 0.0)
    # A word's state depends on the word and its position only, never on the others.
    np.testing.assert_array_equal(words[0, 1:3], words[1, 1:3])
    assert np.abs(words[0, 0] - words[1, 0]).max() > 1e-3


def test_embedding_encoder_contract_and_bad_arguments():
    tokens = np.array([[3, 4, 5, 0], [2, 2, 0, 0]])
    run_layer_test(CaptionEncoder, dict(vocab_size=9, units=5, init_stddev=0.01, direction="embedding"),
                   (tokens,), [(2, 4, 10), (2, 4)], num_weights=2)
    with pytest.raises(ValueError, match="embedding_dim"):
        CaptionEncoder(vocab_size=9, units=5, embedding_dim=3, direction="embedding")
