"""t2i: alignDRAW text-to-image generation (Mansimov et al., ICLR 2016) in Keras 3."""

__version__ = "0.1.0"
