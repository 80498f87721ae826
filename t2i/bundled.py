"""Weights shipped inside the package: the measuring classifiers in `t2i/data/`."""

from __future__ import annotations

from importlib import resources


def load_weights(model, bundled: str, path=None):
    """`model` with the weights at `path`, or with the package's `t2i/data/<bundled>` when
    `path` is None (also from a zipped or installed package); returns the model."""
    if path is not None:
        model.load_weights(str(path))
        return model
    with resources.as_file(resources.files("t2i.data") / bundled) as p:
        model.load_weights(str(p))
    return model
