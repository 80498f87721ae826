"""Data for t2i: MNIST loading, MNIST-with-captions composites, COCO, and input pipelines.

* `t2i.data.mnist`: `load_mnist` (full Keras MNIST, a local `.npz`, or the
  bundled 10k subset) and `split_validation`. NumPy only.
* `t2i.data.mnist_captions`: compositions ("2 left of 9", "4 top left"),
  the 8 caption templates and placements of the original code, and
  `CompositeSampler`. NumPy only.
* `t2i.data.arrays`: the examples of a run (`prepare_mnist_captions`) and
  `keras.utils.PyDataset` batches of them for any Keras backend, no TensorFlow.
* `t2i.data.pipeline`: `make_datasets(config, tokenizer)`, the same batches
  as `tf.data` pipelines (imports TensorFlow).
* `t2i.data.coco`: Microsoft COCO at 32x32 (captions JSON and JPEGs, or the
  authors' arrays), vocabulary, length bucketing, cache (imports TensorFlow).

The pipelines are not imported here so that `import t2i.data` stays light.
"""
