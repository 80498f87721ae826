"""What the code around the model asks of a dataset (t2i.data.catalog)."""

from t2i import config as C
from t2i.data import catalog
from t2i.data.scenes import captions as cap
from t2i.data.scenes.sampler import DEFAULT_HELD_OUT, parse_composition


def test_scenes_examples_are_captions_and_the_held_out_ones_show_their_composition():
    seen, held = catalog.example_captions(C.scenes_32())
    assert len(seen) >= 6 and len(held) == len(DEFAULT_HELD_OUT)
    for text in seen + held:
        assert cap.parse_caption(text) is not None, text
    for text, composition in zip(held, map(parse_composition, DEFAULT_HELD_OUT)):
        said = cap.parse_caption(text)
        assert said.object == composition.object
        assert {"colour": said.colour, "background": said.background, "vintage": None}[composition.kind] \
            == composition.value, text
        if composition.kind == "vintage":
            assert said.vintage
    for text in seen:
        said = cap.parse_caption(text)
        assert not any(c.object == said.object and (
            (c.kind == "colour" and said.colour == c.value) or (c.kind == "background" and said.background == c.value)
            or (c.kind == "vintage" and said.vintage)) for c in map(parse_composition, DEFAULT_HELD_OUT)), text


def test_mnist_examples_leave_out_the_held_out_compositions():
    cfg = C.get_preset("mnist_captions").override({"data.held_out": ("7 left of 1", "6 top left")})
    seen, held = catalog.example_captions(cfg)
    assert held == ["the digit 7 is on the left of the digit 1 .", "the digit 6 is at the top left of the image ."]
    assert not set(seen) & {"the digit 7 is on the left of the digit 1 .", "the digit 6 is at the top left of the image .",
                            "the digit 1 is on the right of the digit 7 ."}
    assert len(seen) == 8
    assert catalog.example_captions(C.coco_32()) == ([], [])
