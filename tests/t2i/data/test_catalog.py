"""What the code around the model asks of a dataset (t2i.data.catalog)."""

import pytest

from t2i import config as C
from t2i.data import catalog
from t2i.data.scenes import captions as cap
from t2i.data.scenes.sampler import DEFAULT_HELD_OUT, parse_composition
from t2i.errors import T2IError


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


def test_every_entry_names_pieces_that_exist_and_the_config_knows_every_dataset():
    with pytest.raises(Exception, match="data.dataset must be one of") as refused:
        C.tiny().override({"data.dataset": "cifar"})  # the config checks names against the catalog
    assert all(repr(name) in str(refused.value) for name in catalog.DATASETS)
    for name, entry in catalog.DATASETS.items():
        assert entry.name == name and bool(entry.prepare) != bool(entry.pipelines), name
        for field in ("prepare", "pipelines", "held_out_captions", "seen_examples", "reader"):
            if getattr(entry, field):
                assert callable(entry.load(field)), (name, field)
            else:
                assert entry.load(field) is None
        for preset in entry.presets:
            assert C.get_preset(preset).data.dataset == name, preset


made = []  # the configs `prepare_digits_small` was given


def prepare_digits_small(config):
    """The new dataset's own preparation (its entry names it)."""
    made.append(config)
    return "prepared"


SWAP_17 = (catalog.WordGroup(("1", "7")),)


def test_a_new_dataset_is_one_entry(monkeypatch):
    """Config validation, example captions, the pipelines and the samplers' words follow the
    entry alone: no consumer names the dataset."""
    from t2i import samplers
    from t2i.data import arrays

    made.clear()
    entry = catalog.DatasetEntry(
        name="digits_small", image_shape=(60, 60, 1), presets=("tiny",), words=("7",),
        min_caption_tokens=12, prepare=f"{__name__}:prepare_digits_small",
        held_out_captions="t2i.data.mnist_captions:held_out_captions",
        seen_examples="t2i.data.mnist_captions:seen_examples", swap_groups=f"{__name__}:SWAP_17")
    monkeypatch.setitem(catalog.DATASETS, "digits_small", entry)
    config = C.tiny().override({"data.dataset": "digits_small", "data.held_out": ("7 left of 1",)})
    assert catalog.held_out_captions(config) == ["the digit 7 is on the left of the digit 1 ."]
    assert arrays.prepare(config) == "prepared" and made == [config]
    (group,) = samplers.interchangeable_for(config)
    assert group.ids.tolist() == [config.text.vocabulary.index(w) + 2 for w in ("1", "7")] and group.before is None
    assert samplers.reader_for(config) is None
    with pytest.raises(T2IError, match=r"digits_small images are 60x60x1: .*\(presets tiny\)"):
        config.override({"model.channels": 3})
    with pytest.raises(T2IError, match=r"text.max_caption_length must be >= 12 for digits_small"):
        config.override({"text.max_caption_length": 11})
