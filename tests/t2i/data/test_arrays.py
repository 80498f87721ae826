"""The NumPy (PyDataset) pipeline yields the tf.data pipeline's batches."""

import numpy as np

from t2i import config as C
from t2i.data.arrays import make_array_datasets
from t2i.data.pipeline import make_datasets
from t2i.text import CaptionTokenizer
from t2i.text_numpy import NumpyCaptionTokenizer

CFG = C.tiny().override({"data.mnist.source": "bundled", "data.examples_per_epoch": 24,
                         "data.validation_examples": 20, "data.test_examples": 12})


def _trim(tokens, width):
    tokens = np.asarray(tokens)
    assert (tokens[:, width:] == 0).all()
    return tokens[:, :width]


def test_train_stream_matches_tf_data_epoch_by_epoch_and_resumes():
    tf_data = make_datasets(CFG, CaptionTokenizer(CFG.text), initial_epoch=2)
    arrays = make_array_datasets(CFG, NumpyCaptionTokenizer(CFG.text), initial_epoch=2)
    assert arrays.steps_per_epoch == tf_data.steps_per_epoch == len(arrays.train) == 3
    stream = iter(tf_data.train)
    for epoch in (2, 3):
        assert arrays.train.current_epoch == epoch
        for step in range(3):
            want, got = next(stream), arrays.train[step]
            assert got["images"].dtype == np.float32 and got["images"].shape == (8, 60, 60, 1)
            assert got["tokens"].shape == (8, CFG.text.max_caption_length)
            np.testing.assert_array_equal(got["images"], want["images"].numpy())
            np.testing.assert_array_equal(_trim(got["tokens"], want["tokens"].shape[1]),
                                          want["tokens"].numpy())
        arrays.train.on_epoch_end()  # what Keras calls after each epoch
    # epochs differ
    assert not np.array_equal(arrays.train[0]["images"], make_array_datasets(
        CFG, NumpyCaptionTokenizer(CFG.text), initial_epoch=2).train[0]["images"])


def test_validation_and_test_match_tf_data():
    tf_data = make_datasets(CFG, CaptionTokenizer(CFG.text))
    arrays = make_array_datasets(CFG, NumpyCaptionTokenizer(CFG.text))
    for name, n in (("validation", 20), ("test", 12)):
        ours, theirs = getattr(arrays, name), list(getattr(tf_data, name))
        assert len(ours) == len(theirs) == -(-n // 8)
        for i, want in enumerate(theirs):
            got = ours[i]
            np.testing.assert_array_equal(got["images"], want["images"].numpy())
            np.testing.assert_array_equal(_trim(got["tokens"], want["tokens"].shape[1]),
                                          want["tokens"].numpy())
    np.testing.assert_array_equal(arrays.test_examples.images, tf_data.test_examples.images)
    assert arrays.held_out == tf_data.held_out
