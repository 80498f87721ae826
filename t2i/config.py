"""Frozen experiment configuration for t2i.

One `ExperimentConfig` describes a run completely: the model, the caption text
handling, the data protocol and the optimisation. It is written as
`config.json` into every run directory before the first training step and is
copied beside every exported artifact, so that anything t2i produces can be
rebuilt from its config alone.

Named presets:

* `mnist_captions`: the paper's MNIST-with-captions model (60x60x1, T=32,
  8x8 read/write grids, 300-unit inference and generator LSTMs, 150-d latent,
  2x128 caption BiLSTM, 512-d alignment, batch 100, RMSProp 1e-3).
* `mnist_captions_compose`: `mnist_captions` with named departures for
  novel compositions (`COMPOSE_DEPARTURES`).
* `coco_32`: the paper's Microsoft COCO model (32x32x3, grids 9, LSTMs 550,
  latent 275).
* `tiny`: a few units and T=3, for tests and smoke runs.

Every field can be overridden with a dotted key, e.g.
`config.override({"model.num_steps": 8, "train.epochs": 3})`, which is what
the command line's `--model.num_steps 8` flags do.
"""

from __future__ import annotations

import dataclasses
import math
import json
import typing
from typing import Any, Callable, Mapping

from t2i.data import catalog
from t2i.data.catalog import MNIST_CAPTION_WORDS  # noqa: F401 (the default vocabulary, also read from here)
from t2i.errors import T2IError

# Allowed values, one place for each: the config, the model and the layers check against these.
CONDITIONINGS = ("align", "mean")
CAPTION_ENCODERS = ("bidirectional", "forward", "embedding")
LOOPS = ("unrolled", "while")
PRECISIONS = ("float32", "mixed_bfloat16")
LIKELIHOODS = ("bernoulli", "logistic")
PRIORS = ("learned", "standard")
COCO_SOURCES = ("json", "npy")
COCO_IMAGE_FITS = ("squash", "center_crop")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of alignDRAW.

    Attributes:
        image_height: canvas height in pixels.
        image_width: canvas width in pixels.
        channels: 1 (grey) or 3 (RGB).
        num_steps: T, the number of drawing steps.
        read_size: N of the read attention grid (N x N glimpse per channel).
        write_size: N of the write attention grid.
        encoder_units: units of the inference LSTM.
        decoder_units: units of the generative LSTM.
        latent_dim: size of z_t.
        caption_units: units per direction of the caption BiLSTM.
        caption_embedding_dim: 0 feeds one-hot words straight into the
            BiLSTM gates, as the paper does; a positive value puts a learned
            embedding of that width in front (cheaper for large vocabularies).
        align_units: width of the alignment MLP.
        conditioning: "align" (alignDRAW: s_t is attention over the words,
            driven by the generator's previous state) or "mean"
            (noalignDRAW: s_t is the masked mean of the word states, the same
            fixed vector at every step).
        canvas_init: initial value of the learned canvas c_0 (logits);
            -10 (black) for MNIST, 0 (grey) for COCO, as in the original code.
        init_stddev: standard deviation of the N(0, sigma^2) weight init.
        caption_encoder: "bidirectional" (the paper's BiLSTM: every word state
            sees the whole caption) or "forward" (one forward LSTM of
            2 * caption_units: word j sees words 1..j, as the original code's
            encoder effectively did; docs/model.md §3) or "embedding" (no
            recurrence: a word's state is its own embedding next to a code of
            its position, so digit and place words stay apart; a departure
            from the paper, §3).
        loop: how the T drawing steps run in the graph: "while" (one
            `keras.ops.fori_loop` body, traced once) or "unrolled" (a Python
            loop, T copies of the step). The same values either way (tested);
            the loop starts training and generation much sooner.
        loop_unroll: with loop "while", drawing steps unrolled inside each
            loop iteration (the largest divisor of num_steps up to this
            value): fewer iterations run faster, more unrolled steps trace
            slower.
        caption_dropout: probability that a training example's caption is
            replaced by a learned null caption (a departure from the paper,
            for classifier-free guidance: `t2i generate --guidance`); 0, the
            paper: never.
        prior_reconstruction: weight w of a second reconstruction term in
            training, the image's negative log-likelihood under a canvas drawn
            with latents from the prior (z_t ~ p(z_t | ...), no inference
            network): loss = -bound + w * NLL(x | c_T^prior). Sohn, Lee and
            Yan 2015's hybrid objective (their Gaussian stochastic neural
            network term), a departure from the paper for novel compositions:
            it trains the generator to stay on its caption under prior noise.
            0, the paper: off. Validation reports the bound alone.
        prior: the prior of z_2..z_T. "learned" (the paper): N(mu, sigma^2)
            from h^gen_{t-1}, so it sees the caption through the generator.
            "standard" (a departure, for novel compositions): N(0, I) at
            every step, as in DRAW, so that every nat the latents carry costs
            KL and what the caption already says (a digit's identity) has no
            reason to be stored in them (BENCHMARKS "Novel compositions").
            The learned prior's weights are kept either way, so a run can
            start from the other's weights.
        likelihood: the pixel likelihood of the bound, p(x | c_T).
            "bernoulli" (the paper): Bernoulli(x; sigmoid(c_T)) on intensities
            in [0, 1]. "logistic" (a departure, for colour images): each
            8-bit pixel value under a discretised logistic (PixelCNN++'s)
            of mean sigmoid(c_T) and a learned scale per channel; its bound is
            the log-probability of the 8-bit image, and its reconstruction
            term is not swamped by the per-pixel entropy of mid-tone colours
            the way the Bernoulli's is (docs/model.md §9).
        precision: "float32" (every product and state in float32) or
            "mixed_bfloat16": the drawing LSTMs' matrix products take
            operands rounded to bfloat16 and sum them in float32, the same
            numbers on every CPU; everything else (gates, states, attention,
            canvas, KL, loss, weights) stays float32 (docs/model.md §7).
            It shows what bfloat16 operands do to training; it is not faster.
    """

    image_height: int = 60
    image_width: int = 60
    channels: int = 1
    num_steps: int = 32
    read_size: int = 8
    write_size: int = 8
    encoder_units: int = 300
    decoder_units: int = 300
    latent_dim: int = 150
    caption_units: int = 128
    caption_embedding_dim: int = 0
    align_units: int = 512
    conditioning: str = "align"
    canvas_init: float = -10.0
    init_stddev: float = 0.01
    caption_encoder: str = "bidirectional"
    loop: str = "while"
    loop_unroll: int = 1
    caption_dropout: float = 0.0
    prior_reconstruction: float = 0.0
    prior: str = "learned"
    likelihood: str = "bernoulli"
    precision: str = "float32"

    def __post_init__(self):
        for name in ("image_height", "image_width", "num_steps", "encoder_units",
                     "decoder_units", "latent_dim", "caption_units", "align_units"):
            _require(getattr(self, name) >= 1, f"model.{name} must be >= 1, got {getattr(self, name)}")
        _require(self.channels in (1, 3), f"model.channels must be 1 or 3, got {self.channels}")
        _require(self.read_size >= 2 and self.write_size >= 2,
                 "model.read_size and model.write_size must be >= 2")
        _require(self.caption_embedding_dim >= 0, "model.caption_embedding_dim must be >= 0")
        _require(self.conditioning in CONDITIONINGS,
                 f"model.conditioning must be one of {CONDITIONINGS}, got {self.conditioning!r}")
        _require(self.init_stddev > 0, "model.init_stddev must be > 0")
        _require(self.caption_encoder in CAPTION_ENCODERS,
                 f"model.caption_encoder must be one of {CAPTION_ENCODERS}, got {self.caption_encoder!r}")
        _require(self.precision in PRECISIONS,
                 f"model.precision must be one of {PRECISIONS}, got {self.precision!r}")
        _require(self.prior in PRIORS, f"model.prior must be one of {PRIORS}, got {self.prior!r}")
        _require(self.likelihood in LIKELIHOODS,
                 f"model.likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        _require(self.loop in LOOPS, f"model.loop must be one of {LOOPS}, got {self.loop!r}")
        _require(self.loop_unroll >= 1, f"model.loop_unroll must be >= 1, got {self.loop_unroll}")
        _require(0.0 <= self.caption_dropout < 1.0,
                 f"model.caption_dropout must be in [0, 1), got {self.caption_dropout}")
        _require(self.prior_reconstruction >= 0.0 and math.isfinite(self.prior_reconstruction),
                 f"model.prior_reconstruction must be a finite number >= 0, got {self.prior_reconstruction}")


# Word ids of every tokenizer (t2i.text, t2i.text_numpy): padding, out of
# vocabulary, then the vocabulary's words from 2.
PAD_ID = 0
OOV_ID = 1


@dataclasses.dataclass(frozen=True)
class TextConfig:
    """Caption normalisation and vocabulary.

    Attributes:
        vocabulary: the words, without the padding and OOV entries (the
            lookup adds both: id 0 is padding, id 1 is `oov_token`).
        max_caption_length: longest caption, in tokens, that the model takes;
            longer captions are rejected with an error.
        oov_token: the token that unknown words map to.
    """

    vocabulary: tuple[str, ...] = MNIST_CAPTION_WORDS
    max_caption_length: int = 16
    oov_token: str = "[UNK]"

    def __post_init__(self):
        _require(self.max_caption_length >= 1, "text.max_caption_length must be >= 1")
        _require(len(set(self.vocabulary)) == len(self.vocabulary), "text.vocabulary has duplicate words")
        _require(self.oov_token not in self.vocabulary and "" not in self.vocabulary,
                 "text.vocabulary must not contain the OOV token or the empty string")

    @property
    def vocab_size(self) -> int:
        """Size of the id space: padding + OOV + words."""
        return len(self.vocabulary) + 2


@dataclasses.dataclass(frozen=True)
class MnistConfig:
    """`data.mnist`: the MNIST-with-captions composites (`t2i.data.mnist_captions`).

    Attributes:
        source: "auto" (a cached full MNIST from Keras, else a download
            attempt, else the bundled 10k subset), "keras" (full MNIST, fail
            if it cannot be had), "bundled" (the bundled 10k subset), or a
            path to an `.npz` in Keras' `mnist.npz` layout.
        validation_fraction: fraction of the MNIST training digits kept apart
            to build validation composites.
        num_held_out: if `data.held_out` is empty, draw this many compositions
            by `held_out_seed` instead.
        held_out_seed: seed for drawing held-out compositions.
        augment_rotation, augment_scale, augment_shift, augment_elastic_alpha,
            augment_elastic_sigma: training digits are warped afresh each time
            they are pasted (`t2i.data.augment`, a departure from the paper):
            rotation up to this many degrees, scaling by up to this fraction,
            shift up to this many pixels per axis, elastic distortion of this
            many pixels smoothed over sigma pixels. All zero (the default, the
            paper's protocol): no augmentation. Validation and test digits are
            never warped.
    """

    source: str = "auto"
    validation_fraction: float = 1.0 / 6.0
    num_held_out: int = 0
    held_out_seed: int = 0
    augment_rotation: float = 0.0
    augment_scale: float = 0.0
    augment_shift: float = 0.0
    augment_elastic_alpha: float = 0.0
    augment_elastic_sigma: float = 4.0

    def __post_init__(self):
        _require(0.0 < self.validation_fraction < 1.0, "data.mnist.validation_fraction must be in (0, 1)")
        _require(self.num_held_out >= 0, "data.mnist.num_held_out must be >= 0")
        from t2i.data.augment import check_ranges  # the warp's own bounds, named as config fields

        check_ranges("data.mnist.augment_", self.augment_rotation, self.augment_scale, self.augment_shift,
                     self.augment_elastic_alpha, self.augment_elastic_sigma)


@dataclasses.dataclass(frozen=True)
class CocoConfig:
    """`data.coco`: Microsoft COCO captions (`t2i.data.coco`, which documents the file layouts).

    Attributes:
        root: the COCO directory. For `source` "json":
            `annotations/captions_{train,val}2014.json` and the image
            folders `train2014/`, `val2014/`. For "npy": the authors'
            preprocessed files (`{train,dev,test}-images-32x32.npy`, ...,
            `dictionary.pkl`).
        source: "json" (official captions JSON + JPEGs, decoded and
            resized inside tf.data) or "npy" (the authors' 32x32 arrays).
        split_file: optional Karpathy-style `dataset_coco.json` that
            assigns images to train / val / test ("restval" goes to train);
            a relative path is taken relative to `root`. Empty: train2014
            is the training split, and val2014 (sorted by image id) gives the
            first `validation_images` images to validation and the next
            `test_images` to test.
        validation_images: validation images taken from val2014 when
            there is no split file.
        test_images: test images taken from val2014 (after the
            validation ones) when there is no split file.
        captions_per_image: captions used per image, the first ones by
            annotation id (the paper uses the first 5).
        cache: directory for a uint8 image cache (one `.npy` per split,
            keyed by image list, size and fit; built on first use, reused
            while valid). Empty: no cache; the training stream then decodes
            every JPEG again each epoch.
        image_fit: "squash" (resize the whole image to the model size,
            ignoring the aspect ratio) or "center_crop" (the largest centred
            square, then resize).
        min_word_count: training-caption words seen fewer times map to the
            OOV token when the vocabulary is built (`resolve_coco_config`).
        min_caption_length: training keeps captions of at least this many
            tokens (validation and test keep all lengths).
        max_train_caption_length: training keeps captions of fewer than this
            many tokens (exclusive, as in the original code: 7 <= len < 30).
        bucketing: group training batches by exact caption length (the
            original code's homogeneous batches); False: plain shuffled
            batches, padded to the longest caption of the batch.
    """

    root: str = ""
    source: str = "json"
    split_file: str = ""
    validation_images: int = 5000
    test_images: int = 5000
    captions_per_image: int = 5
    cache: str = ""
    image_fit: str = "squash"
    min_word_count: int = 1
    min_caption_length: int = 7
    max_train_caption_length: int = 30
    bucketing: bool = True

    def __post_init__(self):
        for name in ("validation_images", "test_images", "captions_per_image", "min_word_count",
                     "min_caption_length"):
            _require(getattr(self, name) >= 1, f"data.coco.{name} must be >= 1")
        _require(self.source in COCO_SOURCES,
                 f"data.coco.source must be one of {COCO_SOURCES}, got {self.source!r}")
        _require(self.image_fit in COCO_IMAGE_FITS,
                 f"data.coco.image_fit must be one of {COCO_IMAGE_FITS}, got {self.image_fit!r}")
        _require(self.max_train_caption_length > self.min_caption_length,
                 f"data.coco.max_train_caption_length ({self.max_train_caption_length}) must be greater "
                 f"than data.coco.min_caption_length ({self.min_caption_length})")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Data protocol: which dataset, the sizes and seed every dataset reads, and one section
    per dataset with fields of its own (`mnist`, `coco`; scenes has none of its own).

    Attributes:
        dataset: "mnist_captions", "coco" or "scenes" (`t2i.data.scenes`: examples_per_epoch
            scenes rendered once and cached, held_out as "green bus", "vintage dog"...).
        examples_per_epoch: training examples generated afresh (MNIST) or rendered once (scenes)
            per epoch; a COCO epoch is every training caption.
        validation_examples: validation examples, the same set every epoch.
        test_examples: test examples.
        held_out: compositions never shown in training or validation, e.g.
            "2 left of 9", "6 above 2", "4 top left" for MNIST
            (`t2i.data.mnist_captions.parse_composition`), "green bus" for scenes.
        seed: seed of the data stream (composites, shuffling).
        mnist: `MnistConfig`, read only when `dataset` is "mnist_captions".
        coco: `CocoConfig`, read only when `dataset` is "coco".
    """

    dataset: str = "mnist_captions"
    examples_per_epoch: int = 10000
    validation_examples: int = 10000
    test_examples: int = 10000
    held_out: tuple[str, ...] = (
        "2 left of 9", "6 left of 3", "6 above 2", "2 above 4",
        "4 top left", "5 top right", "8 bottom left", "9 bottom right",
    )
    seed: int = 0
    mnist: MnistConfig = dataclasses.field(default_factory=MnistConfig)
    coco: CocoConfig = dataclasses.field(default_factory=CocoConfig)

    def __post_init__(self):
        _require(self.dataset in catalog.DATASETS,
                 f"data.dataset must be one of {tuple(catalog.DATASETS)}, got {self.dataset!r}")
        for name in ("examples_per_epoch", "validation_examples", "test_examples"):
            _require(getattr(self, name) >= 1, f"data.{name} must be >= 1")


# The flat data fields of configs written before the per-dataset sections
# (the shipped model's among them) -> their place now. Old config.json files load,
# and `--data.OLD` flags work for one more release, with a warning.
LEGACY_DATA_FIELDS = {
    "mnist_source": "mnist.source",
    "validation_fraction": "mnist.validation_fraction",
    "num_held_out": "mnist.num_held_out",
    "held_out_seed": "mnist.held_out_seed",
    **{f"augment_{k}": f"mnist.augment_{k}" for k in ("rotation", "scale", "shift", "elastic_alpha",
                                                       "elastic_sigma")},
    **{f"coco_{k}": f"coco.{k}" for k in ("root", "source", "split_file", "validation_images",
                                          "test_images", "captions_per_image", "cache", "image_fit")},
    **{k: f"coco.{k}" for k in ("min_word_count", "min_caption_length", "max_train_caption_length",
                                "bucketing")},
}


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    """How a trained run draws when a command names no sampler.

    Attributes:
        sampler: a `t2i.samplers` name: "plain" (the paper's), or a departure such
            as "best_of_k:k=4". `t2i generate`, `t2i evaluate`, `t2i slides` and the
            demo draw with it unless `--sampler` says otherwise; the exported
            SavedModel's signatures draw with plain sampling.
    """

    sampler: str = "plain"

    def __post_init__(self):
        from t2i.samplers import Sampler  # NumPy only

        try:
            Sampler.parse(self.sampler)
        except T2IError as e:
            raise T2IError(f"sample.sampler: {e}") from None


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation.

    The optimiser is the original code's RMSProp: per-tensor gradient norm
    clipping at `clipnorm`, r <- rho r + (1 - rho) g^2,
    theta <- theta - lr g / sqrt(r + epsilon). Keras' RMSprop computes exactly
    this (epsilon inside the square root) with `clipnorm` clipping each
    gradient tensor separately.

    Attributes:
        batch_size: examples per step.
        learning_rate: initial learning rate.
        rho: RMSProp decay.
        epsilon: RMSProp epsilon (inside the square root).
        clipnorm: per-tensor gradient norm clip.
        epochs: number of epochs.
        steps_per_epoch: 0 means examples_per_epoch // batch_size.
        lr_decay_epochs: epochs (0-based) from which the learning rate is
            multiplied by another `lr_decay_factor` (paper: 110 of 150 for
            MNIST).
        lr_decay_factor: the factor.
        validation_steps: 0 means all validation batches.
        seed: seed of the model's initialisation and training noise.
        jit_compile: compile the train step with XLA.
        sample_every: write a sample grid every this many epochs (0: never).
        init_from: start from the weights of this run ("pretrained": the
            shipped model; its best checkpoint) instead of the random
            initialisation, e.g. to fine-tune it with a new option such as
            `model.caption_dropout`; "" (default): train from scratch.
    """

    batch_size: int = 100
    learning_rate: float = 1e-3
    rho: float = 0.9
    epsilon: float = 1e-6
    clipnorm: float = 10.0
    epochs: int = 150
    steps_per_epoch: int = 0
    lr_decay_epochs: tuple[int, ...] = (110,)
    lr_decay_factor: float = 0.1
    validation_steps: int = 0
    seed: int = 0
    jit_compile: bool = False
    sample_every: int = 1
    init_from: str = ""

    def __post_init__(self):
        _require(self.batch_size >= 1, "train.batch_size must be >= 1")
        _require(self.learning_rate > 0, "train.learning_rate must be > 0")
        _require(0.0 <= self.rho < 1.0, "train.rho must be in [0, 1)")
        _require(self.clipnorm > 0, "train.clipnorm must be > 0")
        _require(self.epochs >= 1, "train.epochs must be >= 1")
        _require(self.steps_per_epoch >= 0, "train.steps_per_epoch must be >= 0")
        _require(self.validation_steps >= 0, "train.validation_steps must be >= 0")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """A whole run: `name`, `model`, `text`, `data`, `train` and `sample`."""

    name: str = "mnist_captions"
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    text: TextConfig = dataclasses.field(default_factory=TextConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    sample: SampleConfig = dataclasses.field(default_factory=SampleConfig)

    def __post_init__(self):
        entry = catalog.dataset_of(self)
        shape = (self.model.image_height, self.model.image_width, self.model.channels)
        if entry.image_shape is not None:
            _require(shape == entry.image_shape,
                     f"{entry.name} images are {'x'.join(map(str, entry.image_shape))}: set model.image_height, "
                     f"model.image_width and model.channels to {', '.join(map(str, entry.image_shape))} "
                     f"(presets {', '.join(entry.presets)})")
        missing = set(entry.words) - set(self.text.vocabulary)
        _require(not missing, f"text.vocabulary lacks {entry.name} caption words: {sorted(missing)}")
        _require(self.text.max_caption_length >= entry.min_caption_tokens,
                 f"text.max_caption_length must be >= {entry.min_caption_tokens} for {entry.name} captions")

    # --- serialisation -------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ExperimentConfig":
        model = d.get("model") if isinstance(d, Mapping) else None
        if isinstance(model, Mapping) and "loop" not in model:
            # Configs written before model.loop existed ran the unrolled graph:
            # they keep it, so their models generate the very same bits.
            d = {**d, "model": {**model, "loop": "unrolled"}}
        data = d.get("data") if isinstance(d, Mapping) else None
        if isinstance(data, Mapping) and set(data) & set(LEGACY_DATA_FIELDS):
            d = {**d, "data": _nest_legacy_data(data)}
        return _from_dict(cls, d, prefix="")

    @classmethod
    def from_json(cls, text: str) -> "ExperimentConfig":
        try:
            d = json.loads(text)
        except json.JSONDecodeError:
            return dataclass_from_json(cls, text)  # raises its error
        return cls.from_dict(d)  # the rule for configs older than model.loop

    def save(self, path) -> None:
        with open(path, "w") as f:
            f.write(self.to_json() + "\n")

    @classmethod
    def load(cls, path) -> "ExperimentConfig":
        try:
            with open(path) as f:
                return cls.from_json(f.read())
        except OSError as e:
            raise T2IError(f"cannot read config {path}: {e.strerror}") from None

    # --- overrides -------------------------------------------------------
    def override(self, overrides: Mapping[str, Any]) -> "ExperimentConfig":
        """Returns a copy with dotted keys replaced ("model.num_steps": 3).

        String values are parsed into the field's type, so command-line text
        can be passed directly.
        """
        d = self.to_dict()
        for key, value in overrides.items():
            key = legacy_key(key)
            path = key.split(".")
            field_type = field_types().get(key)
            if field_type is None:
                raise T2IError(f"unknown config field {key!r}; known fields: {', '.join(sorted(field_types()))}")
            node = d
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = parse_value(value, field_type, key) if isinstance(value, str) else value
        return ExperimentConfig.from_dict(d)


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise T2IError(message)


def dataclass_from_json(cls, text: str, what: str = "config"):
    """A (nested) config dataclass from JSON text, e.g. `ExperimentConfig`, `SharpenConfig`.

    Raises:
        T2IError: text that is not JSON, unknown or missing fields, a
            section that is not an object, a list field that is not a list
            (each message starts with what `what` names).
    """
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise T2IError(f"{what} is not valid JSON: {e}") from None
    return _from_dict(cls, d, prefix="", what=what)


def _from_dict(cls, d, prefix, what: str = "config"):
    if not isinstance(d, Mapping):
        raise T2IError(f"{what} section {prefix or '<root>'} must be an object")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise T2IError(f"unknown {what} field(s) {sorted(prefix + u for u in unknown)}")
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in d
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise T2IError(f"missing {what} field(s) {sorted(prefix + m for m in missing)}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in d:
            continue
        value, hint = d[f.name], hints[f.name]
        if dataclasses.is_dataclass(hint):
            kwargs[f.name] = _from_dict(hint, value, prefix + f.name + ".", what)
        elif typing.get_origin(hint) is tuple:
            if not isinstance(value, (list, tuple)):
                raise T2IError(f"{what} field {prefix + f.name} must be a list")
            kwargs[f.name] = tuple(value)
        else:
            kwargs[f.name] = value
    return cls(**kwargs)


def field_types() -> dict[str, Any]:
    """Dotted field name -> type hint, for every overridable field ("data.coco.root": str)."""
    out = {}

    def walk(cls, prefix):
        for key, hint in typing.get_type_hints(cls).items():
            if dataclasses.is_dataclass(hint):
                walk(hint, f"{prefix}{key}.")
            else:
                out[f"{prefix}{key}"] = hint

    walk(ExperimentConfig, "")
    return out


def legacy_key(key: str) -> str:
    """The dotted key a config field had before the per-dataset sections -> its key now
    ("data.coco_root" -> "data.coco.root"); any other key unchanged."""
    section, _, name = key.partition(".")
    if section == "data" and name in LEGACY_DATA_FIELDS:
        return f"data.{LEGACY_DATA_FIELDS[name]}"
    return key


def _nest_legacy_data(data: Mapping[str, Any]) -> dict:
    """A `data` section with flat fields of an older config moved into their sections."""
    out = {k: v for k, v in data.items() if k not in LEGACY_DATA_FIELDS}
    for old, value in data.items():
        if old not in LEGACY_DATA_FIELDS:
            continue
        section, name = LEGACY_DATA_FIELDS[old].split(".")
        if not isinstance(out.setdefault(section, {}), Mapping):
            raise T2IError(f"config section data.{section} must be an object")
        if name in out[section]:
            raise T2IError(f"config sets both data.{old} and data.{section}.{name}")
        out[section] = {**out[section], name: value}
    return out


def parse_value(text: str, hint, key: str = "value"):
    """Parses command-line text into a config field's type."""
    try:
        if hint is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if hint in (int, float, str):
            return hint(text)
        if typing.get_origin(hint) is tuple:
            item = typing.get_args(hint)[0]
            parts = [p.strip() for p in text.split(",") if p.strip()]
            return tuple(item(p) for p in parts)
    except ValueError:
        raise T2IError(f"cannot parse {text!r} as {getattr(hint, '__name__', hint)} for {key}") from None
    raise T2IError(f"cannot set {key} from the command line")


# --- presets -------------------------------------------------------------

def mnist_captions() -> ExperimentConfig:
    """The paper's MNIST-with-captions configuration."""
    return ExperimentConfig(name="mnist_captions")


# Departures from the paper for novel compositions (issue 14): each is a named field whose
# default is the paper's value; `mnist_captions_compose` combines the chosen ones.
COMPOSE_DEPARTURES: dict[str, Any] = {
    "model.caption_encoder": "forward",
    "data.mnist.augment_rotation": 10.0,
    "data.mnist.augment_scale": 0.1,
    "data.mnist.augment_shift": 1.0,
    "data.mnist.augment_elastic_alpha": 30.0,
    "data.mnist.augment_elastic_sigma": 4.0,
}


def mnist_captions_compose() -> ExperimentConfig:
    """The MNIST model with the departures chosen for held-out compositions.

    `mnist_captions` with `COMPOSE_DEPARTURES`: the forward caption encoder
    (the shipped model's) and augmented training digits (`t2i.data.augment`).
    BENCHMARKS.md ("Novel compositions at temperature 1") measures them.
    """
    return dataclasses.replace(mnist_captions().override(COMPOSE_DEPARTURES), name="mnist_captions_compose")


def coco_32() -> ExperimentConfig:
    """The paper's 32x32 Microsoft COCO configuration.

    Set `data.coco.root` (and ideally `data.coco.cache`). The vocabulary is
    empty here: `t2i.data.coco.resolve_coco_config` builds it from the
    training captions (words seen `data.coco.min_word_count` times or more) and
    returns the config with `text.vocabulary` filled in, which is what the
    run's config.json then stores. Training keeps captions of 7 to 29
    tokens in length buckets; validation and test keep captions up to
    `text.max_caption_length` tokens.
    """
    return ExperimentConfig(
        name="coco_32",
        model=ModelConfig(image_height=32, image_width=32, channels=3, read_size=9, write_size=9,
                          encoder_units=550, decoder_units=550, latent_dim=275, canvas_init=0.0),
        text=TextConfig(vocabulary=(), max_caption_length=64),
        data=DataConfig(dataset="coco", held_out=()),
        train=TrainConfig(epochs=18, lr_decay_epochs=(11,)),
    )


def _scenes_text() -> TextConfig:
    from t2i.data.scenes.captions import vocabulary

    return TextConfig(vocabulary=vocabulary(), max_caption_length=16)


def scenes_32() -> ExperimentConfig:
    """Colour scenes from registry art (`t2i.data.scenes`), sized to train on a 2-core CPU: 24
    steps and 9x9 read and write windows (the paper's COCO window; with 16 steps and 5x5
    windows the objects came out blurrier, BENCHMARKS "Wider windows and more steps"), 33
    epochs, drawing with best-of-4 (BENCHMARKS "Eight more epochs")."""
    return ExperimentConfig(
        name="scenes_32",
        model=ModelConfig(image_height=32, image_width=32, channels=3, num_steps=24, read_size=9,
                          write_size=9, encoder_units=256, decoder_units=256, latent_dim=64,
                          caption_units=128, align_units=256, canvas_init=0.0, caption_encoder="forward"),
        text=_scenes_text(),
        data=DataConfig(dataset="scenes", held_out=(), examples_per_epoch=40000, validation_examples=2000,
                        test_examples=3000),
        train=TrainConfig(epochs=33, lr_decay_epochs=(20,)),
        sample=SampleConfig(sampler="best_of_k:k=4"),
    )


def scenes_tiny() -> ExperimentConfig:
    """Scenes with a few units and T=3: for unit tests and smoke runs."""
    return ExperimentConfig(
        name="scenes_tiny",
        model=ModelConfig(image_height=32, image_width=32, channels=3, num_steps=3, read_size=3, write_size=3,
                          encoder_units=16, decoder_units=16, latent_dim=4, caption_units=8, align_units=16,
                          canvas_init=0.0),
        text=_scenes_text(),
        data=DataConfig(dataset="scenes", held_out=(), examples_per_epoch=64, validation_examples=32,
                        test_examples=30),
        train=TrainConfig(batch_size=8, epochs=2, lr_decay_epochs=(), sample_every=1),
    )


def tiny() -> ExperimentConfig:
    """A few units and T=3: for unit tests and smoke runs."""
    return ExperimentConfig(
        name="tiny",
        model=ModelConfig(num_steps=3, read_size=3, write_size=3, encoder_units=16,
                          decoder_units=16, latent_dim=4, caption_units=8, align_units=16),
        data=DataConfig(examples_per_epoch=64, validation_examples=32, test_examples=32),
        train=TrainConfig(batch_size=8, epochs=2, lr_decay_epochs=(), sample_every=1),
    )


PRESETS: dict[str, Callable[[], ExperimentConfig]] = {
    "mnist_captions": mnist_captions,
    "mnist_captions_compose": mnist_captions_compose,
    "coco_32": coco_32,
    "tiny": tiny,
    "scenes_32": scenes_32,
    "scenes_tiny": scenes_tiny,
}


def get_preset(name: str) -> ExperimentConfig:
    try:
        return PRESETS[name]()
    except KeyError:
        raise T2IError(f"unknown preset {name!r}; choose one of: {', '.join(sorted(PRESETS))}") from None
