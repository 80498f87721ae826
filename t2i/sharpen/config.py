"""`SharpenConfig`: how a run's sharpener was built and trained."""

from __future__ import annotations

import dataclasses
import json

from t2i.config import dataclass_from_json
from t2i.errors import T2IError

BLURRY_SOURCES = ("prior", "posterior")


@dataclasses.dataclass(frozen=True)
class SharpenConfig:
    """How a run's sharpener was built and trained (saved as `sharpen/config.json`).

    Attributes:
        image_height, image_width, channels: the run's image size.
        caption_dim: the caption vector's width (2 x model.caption_units).
        generator_filters, generator_kernel_sizes: `SharpenGenerator` widths.
        discriminator_filters, discriminator_kernel_size: `SharpenDiscriminator`.
        reconstruction_weight: weight of the L1 term (see `Sharpener`).
        blurry: the blurry training images: "prior" (samples from the
            model's prior for the real image's caption, what sharpening is
            applied to) or "posterior" (the model's reconstruction
            sigmoid(c_T) of the real image, paired with it as in LAPGAN).
        checkpoint: the run's checkpoint the sharpener was trained on.
        learning_rate, beta_1: Adam (DCGAN/LAPGAN-style defaults).
        steps, batch_size: training length.
        seed: initialisation seed; example k of the training stream is drawn
            with seed `seed + k` (so every blurry sample is reproducible).
    """

    image_height: int
    image_width: int
    channels: int
    caption_dim: int
    generator_filters: tuple[int, ...] = (128, 128)
    generator_kernel_sizes: tuple[int, ...] = (7, 7, 5)
    discriminator_filters: int = 128
    discriminator_kernel_size: int = 5
    reconstruction_weight: float = 0.0
    blurry: str = "prior"
    checkpoint: str = "last"
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    steps: int = 1000
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "generator_filters", tuple(int(f) for f in self.generator_filters))
        object.__setattr__(self, "generator_kernel_sizes", tuple(int(k) for k in self.generator_kernel_sizes))
        problems = []
        if self.blurry not in BLURRY_SOURCES:
            problems.append(f"blurry must be one of {BLURRY_SOURCES}, got {self.blurry!r}")
        if len(self.generator_kernel_sizes) != len(self.generator_filters) + 1:
            problems.append("generator_kernel_sizes needs one more entry than generator_filters")
        if self.steps < 1 or self.batch_size < 1:
            problems.append(f"steps and batch_size must be >= 1, got {self.steps}, {self.batch_size}")
        if self.learning_rate <= 0 or not 0 <= self.beta_1 < 1:
            problems.append("learning_rate must be > 0 and beta_1 in [0, 1)")
        if self.reconstruction_weight < 0:
            problems.append("reconstruction_weight must be >= 0")
        if min(self.generator_filters, default=1) < 1 or self.discriminator_filters < 1:
            problems.append("filters must be >= 1")
        if problems:
            raise T2IError("sharpen config: " + "; ".join(problems))

    def architecture(self) -> dict:
        """The `Sharpener` constructor arguments."""
        names = ("image_height", "image_width", "channels", "caption_dim", "generator_filters",
                 "generator_kernel_sizes", "discriminator_filters", "discriminator_kernel_size",
                 "reconstruction_weight")
        return {name: getattr(self, name) for name in names}

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "SharpenConfig":
        return dataclass_from_json(cls, text, "sharpen config")
