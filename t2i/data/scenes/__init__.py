"""Colour scenes with captions, from drawn art the package registries provide.

32 objects drawn in three styles (`art`), recoloured and pasted onto eight drawn
backgrounds, one or two at a time, some as vintage photos (`render`), each scene with
three COCO-like captions (`captions`) and held-out compositions such as "green bus",
"stop sign in clear sky" and "vintage dog" (`sampler`). NumPy and Pillow only.

    from t2i.data.scenes import SceneSampler
    scenes = SceneSampler().sample(100, np.random.default_rng(0))
"""

from t2i.data.scenes.sampler import (DEFAULT_HELD_OUT, Composition, SceneSampler, Scenes,  # noqa: F401
                                     parse_composition)
