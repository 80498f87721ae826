"""Scenes fidelity and flips (training/scenes_eval.py) without a trained classifier."""

import numpy as np

from t2i.data.scenes import captions as cap
from t2i.data.scenes.sampler import SceneSampler
from t2i.scene_classifier import HEADS, labels
from training import scenes_eval


def test_named_targets_agree_with_the_rendered_attributes():
    scenes = SceneSampler().sample(300, np.random.default_rng(0), "all")
    truth = labels(scenes.attributes)
    for k in range(3):
        captions = [c[k] for c in scenes.captions]
        targets, named = scenes_eval.named_targets(captions)
        assert set(targets) == set(HEADS)
        for head in HEADS:
            np.testing.assert_array_equal(targets[head][named[head]], truth[head][named[head]], err_msg=head)
        assert named["object"].all() and named["vintage"].all()


class _Oracle:
    """A 'classifier' that returns given logits, to check the bookkeeping."""

    def __init__(self, classes):
        self.classes = classes

    def predict(self, images, batch_size=None, verbose=0):
        return {h: np.eye(n)[self.classes[h]] for h, n in HEADS.items()}


def test_attribute_fidelity_counts_only_what_captions_name():
    captions = ["a red bus on a road", "a parking lot with two cats on the left",
                "a vintage photo of a dog at night"]
    targets, named = scenes_eval.named_targets(captions)
    assert named["position"].tolist() == [False, True, False]
    assert named["colour"].tolist() == [True, False, False]
    images = np.zeros((3, 32, 32, 3))
    right, per = scenes_eval.attribute_fidelity(_Oracle(targets), images, captions)
    assert right.all() and per["position"] == 1.0 and per["colour"] == 1.0
    wrong_position = {**targets, "position": (targets["position"] + 1) % 3}
    right, per = scenes_eval.attribute_fidelity(_Oracle(wrong_position), images, captions)
    assert right.tolist() == [True, False, True] and per["position"] == 0.0
    wrong_colour = {**targets, "colour": (targets["colour"] + 1) % 8}
    right, _ = scenes_eval.attribute_fidelity(_Oracle(wrong_colour), images, captions)
    assert right.tolist() == [False, True, True]  # a colour is read only where one is named


class _Logits:
    """A 'classifier' that returns given logits."""

    def __init__(self, logits):
        self.logits = logits

    def predict(self, images, batch_size=None, verbose=0):
        return self.logits


def test_a_named_colour_is_read_among_the_colours():
    """"not shown" scored highest, the named red second: read as red where a colour is named;
    a caption that names none keeps "not shown"."""
    from t2i.scene_classifier import NOT_SHOWN

    captions = ["a red bus on a road", "a vintage photo of a dog at night"]
    targets, _ = scenes_eval.named_targets(captions)
    logits = {h: np.eye(n)[targets[h]] for h, n in HEADS.items()}
    red = list(cap.COLOUR_NAMES).index("red")
    logits["colour"] = np.zeros((2, HEADS["colour"]))
    logits["colour"][:, NOT_SHOWN] = 3.0
    logits["colour"][:, red] = 2.0
    right, per = scenes_eval.attribute_fidelity(_Logits(logits), np.zeros((2, 32, 32, 3)), captions)
    assert right.tolist() == [True, True] and per["colour"] == 1.0
    logits["colour"][0, (red + 1) % NOT_SHOWN] = 2.5  # another colour above red: wrong
    right, per = scenes_eval.attribute_fidelity(_Logits(logits), np.zeros((2, 32, 32, 3)), captions)
    assert right.tolist() == [False, True] and per["colour"] == 0.0


def test_flip_pairs_differ_in_one_attribute_and_avoid_held_out():
    held = ("green bus", "stop sign in clear sky", "vintage dog")
    for kind in scenes_eval.FLIPS:
        for a, b in scenes_eval.flip_pairs(200, kind, np.random.default_rng(1), held):
            x, y = cap.parse_caption(a), cap.parse_caption(b)
            differ = [f for f in ("object", "background", "colour", "count", "position", "vintage")
                      if getattr(x, f) != getattr(y, f)]
            assert differ == [kind], (a, b)
            for s in (x, y):
                assert not (s.object == "bus" and s.colour == "green")
                assert not (s.object == "stop sign" and s.background == "clear sky")
