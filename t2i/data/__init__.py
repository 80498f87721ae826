"""Data for t2i: MNIST loading, MNIST-with-captions composites, tf.data pipelines.

* `t2i.data.mnist`: `load_mnist` (full Keras MNIST, a local `.npz`, or the
  bundled 10k subset) and `split_validation`. NumPy only.
* `t2i.data.mnist_captions`: compositions ("2 left of 9", "4 top left"),
  the 8 caption templates and placements of the original code, and
  `CompositeSampler`. NumPy only.
* `t2i.data.pipeline`: `make_datasets(config, tokenizer)`, the train /
  validation / test `tf.data` pipelines (imports TensorFlow).

The pipeline is not imported here so that `import t2i.data` stays light.
"""
