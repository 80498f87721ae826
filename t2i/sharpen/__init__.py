"""The conditional adversarial sharpening network (docs/model.md §14).

alignDRAW's samples are blurry. The paper (Mansimov et al. 2016, sec. 4.1 and
App. B/C) sharpens its COCO samples afterwards with a conditional GAN trained
on Laplacian-pyramid-style residuals ("edges"; Denton et al. 2015, LAPGAN):
a generator g adds edges to the blurry image, a discriminator tells real from
sharpened images given the blurry image and the caption. Sharpening is not
trained end to end with alignDRAW (the paper calls that a limitation).

Here:

* `SharpenGenerator`: the original's hard-coded generator (`coco/sharpen.py`),
  with any image size and channel count.
* `SharpenDiscriminator`: the original's discriminator is not in its
  repository; this is the shape of Denton et al.'s CIFAR-10 edge-residual
  discriminator (see the class docstring).
* `Sharpener`: both, as one `keras.Model` that trains with the ordinary
  Keras `fit` / `train_on_batch` under every backend (see its docstring).
* The caption vector is t2i's own: the masked mean of the trained model's
  (frozen) bidirectional-LSTM word states, `caption_vectors`. The original
  used the caption's 4800-d skip-thought vector, which this project does not
  have.
* `sharpened_log_weights`: the lower bound with the Bernoulli mean
  sigmoid(c_T) replaced by g(sigmoid(c_T)), as in the paper's "test (after
  sharpening)" column.

A run's sharpener lives in `<run>/sharpen/` (written by `t2i sharpen train`,
`training/sharpen.py`):

    sharpen/config.json                the frozen `SharpenConfig`
    sharpen/sharpener.weights.h5       generator and discriminator weights
    sharpen/samples.png                real / blurry / sharpened, after training
    sharpen/log.csv                    losses every few steps

Modules, one concern each:

    convolutions.py   the conv / dense / caption-plane functions both players use
    generator.py      SharpenGenerator
    discriminator.py  SharpenDiscriminator
    model.py          Sharpener (both players, trained with Keras' own step)
    config.py         SharpenConfig (saved as sharpen/config.json)
    storage.py        a run's sharpen/ folder: save, load, check against the model
    captions.py       caption vectors of a trained alignDRAW; generate_sharpened
    bound.py          the lower bound after sharpening
"""

import importlib

# SharpenConfig is light (no Keras): the command line reads its defaults while parsing.
from t2i.sharpen.config import BLURRY_SOURCES, SharpenConfig

_LAZY = {  # name -> module, imported on first use (they import Keras)
    "BOUND_EPSILON": "bound", "bernoulli_nll_of_probabilities": "bound", "sharpened_log_weights": "bound",
    "caption_vector": "captions", "caption_vectors": "captions", "generate_sharpened": "captions",
    "SharpenDiscriminator": "discriminator", "SharpenGenerator": "generator", "Sharpener": "model",
    "CONFIG": "storage", "SHARPEN_DIR": "storage", "WEIGHTS": "storage", "has_sharpener": "storage",
    "load_run_sharpener": "storage", "load_sharpener": "storage", "save_sharpener": "storage",
    "sharpen_dir": "storage",
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)


__all__ = ["BLURRY_SOURCES", "BOUND_EPSILON", "CONFIG", "SHARPEN_DIR", "WEIGHTS", "SharpenConfig",
           "SharpenDiscriminator", "SharpenGenerator", "Sharpener", "bernoulli_nll_of_probabilities",
           "caption_vector", "caption_vectors", "generate_sharpened", "has_sharpener", "load_run_sharpener",
           "load_sharpener", "save_sharpener", "sharpen_dir", "sharpened_log_weights"]
